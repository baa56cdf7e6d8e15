"""Publishing the four files of a batch together: raw, quarantine, cleaned, then the manifest.

A batch is one set of files that must always describe the same delivery. A run writes its new
files whole under a staging folder of its own (`data/staging/<batch>/<run>/`), so a run that is
blocked or killed before publishing leaves the previous set exactly as it was. Publishing then:

1. writes a journal (`data/publishing/<batch>.<token>.json`) naming every rename, in one atomic
   step: from here on the publication is decided;
2. renames each staged file over its published name, the manifest last;
3. deletes the journal.

A process killed between 1 and 3 leaves a journal behind. Whoever next touches the batch (its
ingestion assets, or the stages reading cleaned tables) rolls the publication forward from the
journal: a rename whose staged file is gone was already done, so finishing is safe to repeat.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.core.storage import write_json_atomic
from mlops_assets.paths import PlatformPaths

STALE_STAGING_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class StagedSet:
    """The new files of one batch written by one run, not yet visible to readers."""

    folder: Path

    @property
    def raw(self) -> Path:
        """The delivery, typed (written by `raw_data`)."""
        return self.folder / "raw.parquet"

    @property
    def quarantine(self) -> Path:
        """Rows cleaning set aside (written by `cleaned_data`)."""
        return self.folder / "quarantine.parquet"

    @property
    def cleaned(self) -> Path:
        """The cleaned table (written by `cleaned_data`)."""
        return self.folder / "cleaned.parquet"

    @property
    def manifest(self) -> Path:
        """The manifest that commits the set."""
        return self.folder / "manifest.json"

    def discard(self) -> None:
        """Forget this run's new files (blocked: nothing is published)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.folder.parent.rmdir()  # the batch's staging folder, once no run uses it


def staged_set(paths: PlatformPaths, batch: str, run: str) -> StagedSet:
    """The staging folder of `run` for `batch` (not created until something is written)."""
    return StagedSet(paths.staging(batch, run))


def publish(paths: PlatformPaths, batch: str, staged: StagedSet) -> None:
    """Make the staged files the batch's published set, all of them or (if killed) none yet."""
    targets = {
        staged.raw: paths.raw(batch),
        staged.quarantine: paths.quarantine(batch),
        staged.cleaned: paths.cleaned(batch),
        staged.manifest: paths.manifest(batch),
    }
    moves = [(source, target) for source, target in targets.items() if source.exists()]
    for _, target in moves:
        target.parent.mkdir(parents=True, exist_ok=True)
    journal = paths.publish_journals / f"{batch}.{uuid.uuid4().hex}.json"
    relative = [[_relative(paths, s), _relative(paths, t)] for s, t in moves]
    write_json_atomic({"batch": batch, "moves": relative}, journal)
    _finish(paths, journal)
    staged.discard()


def recover(paths: PlatformPaths, batch: str | None = None) -> list[str]:
    """Finish publications a killed process left half done; returns the batches finished."""
    folder = paths.publish_journals
    if not folder.is_dir():
        return []
    pattern = f"{batch}.*.json" if batch else "*.json"
    finished = []
    for journal in sorted(folder.glob(pattern)):
        if journal.name.startswith("."):
            continue  # a journal still being written: not decided yet
        finished.append(_finish(paths, journal))
    return finished


def sweep_stale_staging(paths: PlatformPaths, batch: str, keep: str) -> None:
    """Remove staging folders of `batch` left by runs killed long ago (never `keep`'s)."""
    root = paths.data / "staging" / batch
    if not root.is_dir():
        return
    cutoff = time.time() - STALE_STAGING_SECONDS
    for folder in root.iterdir():
        if folder.name != keep and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def _finish(paths: PlatformPaths, journal: Path) -> str:
    try:
        entry = json.loads(journal.read_text())
    except FileNotFoundError:
        return ""  # another process finished it meanwhile
    for source, target in entry["moves"]:
        try:
            os.replace(paths.data / source, paths.data / target)
        except FileNotFoundError:
            continue  # renamed already, by the killed process or by another reader
    journal.unlink(missing_ok=True)
    return str(entry["batch"])


def _relative(paths: PlatformPaths, path: Path) -> str:
    """Journal paths relative to the data folder, so a moved state folder still recovers."""
    return str(path.relative_to(paths.data))
