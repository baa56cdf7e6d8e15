"""Where every piece of platform state lives: one folder, `MLOPS_HOME`.

Deleting the folder is a clean start; pointing `MLOPS_HOME` elsewhere isolates a test. The
environment is read when a path is asked for, never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.profile import active_profile, write_dagster_yaml
from mlops_assets.sources.landing import validate_batch_key

HOME_ENV = "MLOPS_HOME"
DEFAULT_HOME_NAME = ".mlops_home"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def resolve_home(explicit: str | Path | None = None) -> Path:
    """Explicit path, else `$MLOPS_HOME`, else `.mlops_home` in the project checkout."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    from_env = os.environ.get(HOME_ENV)
    if from_env:
        return Path(from_env).expanduser().resolve()
    base = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else Path.cwd()
    return (base / DEFAULT_HOME_NAME).resolve()


@dataclass(frozen=True)
class PlatformPaths:
    """Named locations under one `MLOPS_HOME`."""

    root: Path

    @property
    def dagster_home(self) -> Path:
        """The Dagster instance folder (`DAGSTER_HOME`)."""
        return self.root / "dagster"

    @property
    def saved_spec(self) -> Path:
        """The dataset spec this state folder was set up with (`mlops run --spec`)."""
        return self.root / "dataset_spec.yaml"

    @property
    def landing(self) -> Path:
        """Where new batches arrive as files."""
        return self.root / "landing"

    @property
    def landing_processed(self) -> Path:
        """Landed files that were ingested."""
        return self.landing / "processed"

    @property
    def landing_failed(self) -> Path:
        """Landed files whose ingestion failed."""
        return self.landing / "failed"

    @property
    def data(self) -> Path:
        """Parquet tables of the ingestion stage."""
        return self.root / "data"

    def raw(self, batch: str) -> Path:
        """The raw table of one batch."""
        return self.data / "raw" / f"{validate_batch_key(batch)}.parquet"

    def cleaned(self, batch: str) -> Path:
        """The cleaned table of one batch."""
        return self.data / "cleaned" / f"{validate_batch_key(batch)}.parquet"

    def cleaned_dir(self) -> Path:
        """Folder of all cleaned batches (what the feature stage reads)."""
        return self.data / "cleaned"

    def quarantine(self, batch: str, *, rejected: bool = False) -> Path:
        """Quarantined rows of one batch; `rejected` for an attempt the checks blocked."""
        suffix = ".rejected" if rejected else ""
        return self.data / "quarantine" / f"{validate_batch_key(batch)}{suffix}.parquet"

    def manifest(self, batch: str) -> Path:
        """Small JSON record of a batch: source, first ingestion time, content hash."""
        return self.data / "batches" / f"{validate_batch_key(batch)}.json"

    def staging(self, batch: str, run: str) -> Path:
        """Where one run writes a batch's new set before it is published."""
        return self.data / "staging" / validate_batch_key(batch) / run

    @property
    def publish_journals(self) -> Path:
        """Journals of publications in progress (what to finish after a crash)."""
        return self.data / "publishing"

    def ensure_dagster_home(self) -> Path:
        """Create the Dagster instance folder with the active profile's `dagster.yaml`."""
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        write_dagster_yaml(self.dagster_home, active_profile())
        return self.dagster_home
