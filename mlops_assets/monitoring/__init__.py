"""Stage `monitoring`: drift of new batches and of live traffic against the champion's data."""
