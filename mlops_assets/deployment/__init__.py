"""Stage `deployment`: promotion to champion, history and rollback."""
