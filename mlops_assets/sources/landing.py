"""The landing folder where new batches arrive as files, one batch per file.

A file is ready once it has its final name: writers (the CLI included) write a hidden temporary
name first and rename it, so half-written files are never picked up. The folder is a drop zone
others write into, so only regular files are read: a symbolic link, a pipe or a device is
refused and moved to `failed/` as it is (the link itself, never what it points to), and so is a
file whose name is not a valid batch key, before any partition is registered for it.
"""

from __future__ import annotations

import os
import re
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlops_assets.sources.base import SourceError
from mlops_assets.sources.files import read_frame

BATCH_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
LANDING_SUFFIXES = (".csv", ".parquet")
ARCHIVE_FOLDERS = ("processed", "failed")


def validate_batch_key(key: str) -> str:
    """Batch keys become file names and partition keys: keep them to a safe alphabet."""
    if not BATCH_KEY.match(key):
        raise ValueError(
            f"batch key {key!r} must start with a letter or digit and use only letters, "
            "digits, '.', '_' and '-' (at most 128 characters)"
        )
    return key


def batch_key_for(path: Path) -> str:
    """The batch key of a landed file: its name without the suffix."""
    return path.name.rsplit(".", 1)[0]


@dataclass(frozen=True)
class LandingScan:
    """What the landing folder holds: files ready to ingest, and entries refused with why."""

    ready: list[Path] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)


def scan_landing(landing_dir: Path) -> LandingScan:
    """Sort every entry of the landing folder, without following links or reading anything.

    Hidden names (writers' temporaries) and the `processed/` and `failed/` folders are skipped.
    """
    if not landing_dir.is_dir():
        return LandingScan()
    ready, refused = [], []
    for entry in os.scandir(landing_dir):
        path = Path(entry.path)
        if entry.name.startswith(".") or (
            entry.name in ARCHIVE_FOLDERS and entry.is_dir(follow_symlinks=False)
        ):
            continue
        problem = _landing_problem(entry)
        if problem:
            refused.append((path, problem))
        else:
            ready.append(path)
    ready.sort(key=lambda p: (p.lstat().st_mtime, p.name))
    return LandingScan(ready=ready, refused=sorted(refused))


def _landing_problem(entry: os.DirEntry) -> str:
    """Why a landing-folder entry cannot be ingested ('' when it can)."""
    if entry.is_symlink():
        return (
            f"{entry.name} is a symbolic link: the landing folder takes regular files only "
            "(copy the file in; links are not followed)"
        )
    if not entry.is_file(follow_symlinks=False):
        return f"{entry.name} is not a regular file: the landing folder takes regular files only"
    if not entry.name.endswith(LANDING_SUFFIXES):
        return f"{entry.name}: unsupported file type (land a .csv or .parquet file)"
    try:
        validate_batch_key(batch_key_for(Path(entry.name)))
    except ValueError as exc:
        return f"{entry.name}: {exc}; rename the file and land it again"
    return ""


def ready_files(landing_dir: Path) -> list[Path]:
    """Landed files ready to ingest, oldest first (see `scan_landing` for what is refused)."""
    return scan_landing(landing_dir).ready


def drop_batch(
    frame: pd.DataFrame, landing_dir: Path, key: str, file_format: str = "parquet"
) -> Path:
    """Write a batch into the landing folder atomically (temporary name, then rename)."""
    validate_batch_key(key)
    if file_format not in ("csv", "parquet"):
        raise ValueError(f"file_format must be 'csv' or 'parquet', got {file_format!r}")
    landing_dir.mkdir(parents=True, exist_ok=True)
    final = landing_dir / f"{key}.{file_format}"
    temporary = landing_dir / f".{key}.{uuid.uuid4().hex}.tmp"
    if file_format == "csv":
        frame.to_csv(temporary, index=False)
    else:
        frame.to_parquet(temporary, index=False)
    os.replace(temporary, final)
    return final


@dataclass(frozen=True)
class LandingSource:
    """The landed file of one batch, found by its key: waiting in the folder, else archived.

    A re-run of a batch ingested from the landing folder reads its file from `processed/`,
    where the file went once ingested.
    """

    landing_dir: Path
    batch_key: str
    text_columns: tuple[str, ...] = ()  # read from CSV as written (see `read_frame`)

    def describe(self) -> str:
        """Name the landed file for metadata and errors."""
        return f"landing:{self.landing_dir / self.batch_key}"

    def has_file(self) -> bool:
        """Whether a file of this batch is waiting in the landing folder."""
        return bool(self._entries(self.landing_dir))

    def path(self) -> Path:
        """The one landed file for this batch key (waiting first, else in `processed/`)."""
        for folder in (self.landing_dir, self.landing_dir / "processed"):
            found = self._entries(folder)
            if len(found) > 1:
                raise SourceError(f"batch {self.batch_key!r} has several landed files: {found}")
            if found:
                return found[0]
        names = ", ".join(f"{self.batch_key}{s}" for s in LANDING_SUFFIXES)
        raise SourceError(
            f"no landed file for batch {self.batch_key!r} in {self.landing_dir} "
            f"or its processed/ folder (looked for {names})"
        )

    def load(self) -> pd.DataFrame:
        """Read the landed file, refusing anything that is not a regular file."""
        path = self.path()
        fmt = "csv" if path.suffix == ".csv" else "parquet"
        with open_regular_file(path) as handle:
            return read_frame(handle, str(path), fmt, self.text_columns)

    def _entries(self, folder: Path) -> list[Path]:
        candidates = [folder / f"{self.batch_key}{s}" for s in LANDING_SUFFIXES]
        return [p for p in candidates if os.path.lexists(p)]


def open_regular_file(path: Path):
    """Open `path` for reading only if it is a regular file; a link is never followed."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        kind = "a symbolic link" if os.path.islink(path) else "not readable"
        raise SourceError(f"landed file {path} is {kind}: not read ({exc.strerror})") from exc
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        os.close(descriptor)
        raise SourceError(f"landed file {path} is not a regular file: not read")
    if info.st_size == 0:
        os.close(descriptor)
        raise SourceError(f"source file {path} is empty")
    return os.fdopen(descriptor, "rb")


def archive_landed(path: Path, *, succeeded: bool, error: str = "") -> Path:
    """Move a landed entry to `processed/` or `failed/` (with the error beside it).

    The entry itself moves (a link stays a link, unread); the error file is written under a
    temporary name and renamed, so a link planted under its name is replaced, not followed.
    """
    target_dir = path.parent / ("processed" if succeeded else "failed")
    if target_dir.is_symlink():
        raise SourceError(f"{target_dir} is a symbolic link: archive folders must be real folders")
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    if target.is_dir() and not target.is_symlink():
        target = target_dir / f"{path.name}.{uuid.uuid4().hex[:8]}"
    os.replace(path, target)
    if not succeeded:
        note = target_dir / f"{target.name}.error.txt"
        temporary = target_dir / f".{target.name}.{uuid.uuid4().hex}.tmp"
        temporary.write_text(error or "ingestion failed")
        os.replace(temporary, note)
    return target
