"""Batch scoring: files of unlabelled rows scored with the champion, row for row accounted."""
