"""Errors a user meets from the machine, not from the platform: said as one sentence with a remedy.

A full disk, a state folder another command is writing, a folder this user may not write, a
server that does not answer: each reaches the platform as some library's exception several
layers down (sqlite3 through SQLAlchemy, OSError, a database driver). `explain` recognises them
by their text, so it works the same on a live exception (the CLI) and on the error a Dagster
run recorded (`run_failures.py`). No Dagster here: the CLI uses it before anything is loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mlops_assets.disk_space import disk_full_sentence, is_disk_full, names_full_disk

DISK_IO = ("disk i/o error",)
LOCKED = ("database is locked", "database table is locked")
READ_ONLY = ("attempt to write a readonly database", "read-only file system", "permission denied")
UNREACHABLE = (
    "connection refused",
    "could not connect to server",
    "name or service not known",
    "timed out",
)


def explain(text: str, state_folder: Path | None = None) -> str | None:
    """The sentence for a known machine error in `text` (an exception's message), else None."""
    lowered = text.lower()
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    folder = f"the state folder {state_folder}" if state_folder else "the state folder"
    home = state_folder or Path.cwd()
    if names_full_disk(text, home):  # one rule and one sentence for a full disk: disk_space
        return disk_full_sentence(home)
    if any(s in lowered for s in DISK_IO):
        return (
            f"a write to {folder} failed ({first}): check that its disk is healthy and has "
            "room, then run the command again"
        )
    if any(s in lowered for s in LOCKED):
        return (
            f"another command is writing to {folder} at the same time (SQLite: database is "
            "locked): let it finish, then run this command again"
        )
    if any(s in lowered for s in READ_ONLY):
        return (
            f"this user cannot write where the platform keeps its state ({first}): give it "
            "write access to that folder, or choose another one with --home (MLOPS_HOME)"
        )
    if any(s in lowered for s in UNREACHABLE):
        return (
            f"a server the platform needs did not answer ({first}): start it, or correct its "
            "address in the profile's settings, then run the command again"
        )
    return None


def explain_exception(exc: BaseException, state_folder: Path | None = None) -> str | None:
    """`explain` for an exception or any exception it was raised from (innermost first)."""
    home = state_folder or Path.cwd()
    if is_disk_full(exc, home):
        return disk_full_sentence(home)
    for error in reversed(list(_chain(exc))):
        sentence = explain(f"{type(error).__name__}: {error}", state_folder)
        if sentence:
            return sentence
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__
