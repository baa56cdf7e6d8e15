"""A full disk named as such: the state folder it holds and the space left, in one sentence.

A full disk reaches the platform in many disguises: `OSError: [Errno 28]` from a file write,
SQLite's `database or disk is full`, or its bare `disk I/O error` when not even its journal
fits, each wrapped by SQLAlchemy, MLflow or Dagster. They all mean one thing to the user, who
needs the folder and the free space, not a traceback. Every write of the platform is atomic
(temporary file, then rename), so what was published before stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
FULL_TEXTS = ("database or disk is full", "no space left on device", "disk quota exceeded")
IO_ERROR_TEXT = "disk i/o error"
LOW_SPACE_BYTES = 64 * 2**20  # below this, a storage engine's bare I/O error is the full disk
RESERVE_NAME = ".disk_reserve"
RESERVE_BYTES = 2**20  # room to record why a run stopped, once the disk is full


def is_disk_full(error: BaseException, folder: Path) -> bool:
    """Whether `error`, or any error it wraps, says the disk under `folder` ran out of space."""
    return any(_says_full(e, folder) for e in _chain(error))


def names_full_disk(message: str, folder: Path) -> bool:
    """The same verdict on an error that reached us as text (a step's recorded failure)."""
    text = message.lower()
    if any(t in text for t in FULL_TEXTS) or "[errno 28]" in text:
        return True
    return IO_ERROR_TEXT in text and _low_on_space(folder)


def disk_full_sentence(folder: Path) -> str:
    """What happened and what to do, naming the folder and its free space."""
    usage = _usage(folder)
    space = f"{_size(usage[1])} free of {_size(usage[0])}" if usage else "no space left"
    return (
        f"The disk holding the state folder {folder} is full ({space}): free some space there "
        "or point MLOPS_HOME at a larger disk, then run the command again; what was published "
        "before is kept as it was."
    )


def keep_reserve(folder: Path) -> None:
    """Hold a small allocated file in `folder`, released to record a stop on a full disk.

    When the disk fills, a run cannot even write that it failed; its run would stay `STARTED`
    and later be called killed. Releasing this reserve makes room for that one record.
    """
    reserve = folder / RESERVE_NAME
    if reserve.exists() and reserve.stat().st_size >= RESERVE_BYTES:
        return
    with contextlib.suppress(OSError):  # no room for it now: the next command tries again
        with reserve.open("wb") as handle:
            try:
                os.posix_fallocate(handle.fileno(), 0, RESERVE_BYTES)
            except (AttributeError, OSError):
                handle.write(b"\0" * RESERVE_BYTES)  # file systems without fallocate
        return
    reserve.unlink(missing_ok=True)  # a partial reserve would promise room it does not hold


def release_reserve(folder: Path) -> None:
    """Free the reserve's space (see `keep_reserve`)."""
    (folder / RESERVE_NAME).unlink(missing_ok=True)


def _says_full(error: BaseException, folder: Path) -> bool:
    if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
        return True
    return names_full_disk(str(error), folder)


def _chain(error: BaseException) -> list[BaseException]:
    """The error and everything it wraps: causes, contexts, drivers' and Dagster's originals."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__]
        for attribute in ("orig", "user_exception"):  # SQLAlchemy, Dagster
            wrapped = getattr(current, attribute, None)
            if isinstance(wrapped, BaseException):
                pending.append(wrapped)
    return seen


def _low_on_space(folder: Path) -> bool:
    usage = _usage(folder)
    return usage is not None and usage[1] < LOW_SPACE_BYTES


def _usage(folder: Path) -> tuple[int, int] | None:
    """(total, free) bytes of the file system holding `folder` (or its nearest parent)."""
    for candidate in (folder, *folder.parents):
        try:
            usage = shutil.disk_usage(candidate)
        except OSError:
            continue
        return usage.total, usage.free
    return None


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"  # pragma: no cover - the loop returns at GiB
