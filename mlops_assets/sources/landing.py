"""The landing folder where new batches arrive as files, one batch per file.

A file is ready once it has its final name: writers (the CLI included) write a hidden temporary
name first and rename it, so half-written files are never picked up.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlops_assets.sources.base import SourceError
from mlops_assets.sources.files import FileSource

BATCH_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
LANDING_SUFFIXES = (".csv", ".parquet")


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


def ready_files(landing_dir: Path) -> list[Path]:
    """Landed files ready to ingest (hidden and temporary names are skipped), oldest first."""
    if not landing_dir.is_dir():
        return []
    files = [
        p
        for p in landing_dir.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix in LANDING_SUFFIXES
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


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
    """The landed file of one batch, found by its key."""

    landing_dir: Path
    batch_key: str

    def describe(self) -> str:
        """Name the landed file for metadata and errors."""
        return f"landing:{self.landing_dir / self.batch_key}"

    def path(self) -> Path:
        """The one landed file for this batch key."""
        matches = [self.landing_dir / f"{self.batch_key}{s}" for s in LANDING_SUFFIXES]
        found = [p for p in matches if p.exists()]
        if not found:
            raise SourceError(
                f"no landed file for batch {self.batch_key!r} in {self.landing_dir} "
                f"(looked for {', '.join(p.name for p in matches)})"
            )
        if len(found) > 1:
            raise SourceError(f"batch {self.batch_key!r} has several landed files: {found}")
        return found[0]

    def load(self) -> pd.DataFrame:
        """Read the landed file."""
        return FileSource(str(self.path())).load()


def archive_landed(path: Path, *, succeeded: bool, error: str = "") -> Path:
    """Move an ingested file to `processed/` or `failed/` (with the error beside it)."""
    target_dir = path.parent / ("processed" if succeeded else "failed")
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    os.replace(path, target)
    if not succeeded:
        (target_dir / f"{path.name}.error.txt").write_text(error or "ingestion failed")
    return target
