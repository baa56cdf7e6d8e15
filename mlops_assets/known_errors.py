"""Errors a user meets from the machine, not from the platform: said as one sentence with a remedy.

A full disk, a state folder another command is writing, a folder this user may not write, a
server that does not answer: each reaches the platform as some library's exception several
layers down (sqlite3 through SQLAlchemy, OSError, a database driver). `explain` recognises them
by their text, so it works the same on a live exception (the CLI) and on the error a Dagster
run recorded (`run_failures.py`). No Dagster here: the CLI uses it before anything is loaded.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from pathlib import Path

DISK_FULL = ("no space left on device", "database or disk is full", "disk quota exceeded")
DISK_IO = ("disk i/o error",)
LOCKED = ("database is locked", "database table is locked")
READ_ONLY = ("attempt to write a readonly database", "read-only file system", "permission denied")
UNREACHABLE = (
    "connection refused",
    "could not connect to server",
    "name or service not known",
    "timed out",
)
LOW_SPACE_BYTES = 64 * 1024 * 1024  # below this, an I/O error on the state folder is a full disk


def explain(text: str, state_folder: Path | None = None) -> str | None:
    """The sentence for a known machine error in `text` (an exception's message), else None."""
    lowered = text.lower()
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    folder = f"the state folder {state_folder}" if state_folder else "the state folder"
    if any(s in lowered for s in DISK_FULL) or (
        any(s in lowered for s in DISK_IO) and _low_on_space(state_folder)
    ):
        return (
            f"the disk holding {folder} is full{_free(state_folder)}: free some space or point "
            "--home (MLOPS_HOME) at a disk with room, then run the command again"
        )
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
    for error in reversed(list(_chain(exc))):
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return explain("No space left on device", state_folder)
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


def _free_bytes(folder: Path | None) -> int | None:
    """Free space on the disk holding `folder` (or its nearest existing parent)."""
    if folder is None:
        return None
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def _low_on_space(folder: Path | None) -> bool:
    free = _free_bytes(folder)
    return free is not None and free < LOW_SPACE_BYTES


def _free(folder: Path | None) -> str:
    free = _free_bytes(folder)
    return "" if free is None else f" ({free / 1024**2:.1f} MiB free)"
