"""Reading every cleaned batch as one table for the stages after ingestion."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_assets.core.storage import read_json
from mlops_assets.ingestion.publication import recover
from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import DatasetSpec


class NoCleanedDataError(RuntimeError):
    """There is nothing to build features from yet."""


def cleaned_batch_paths(paths: PlatformPaths) -> list:
    """Cleaned batch tables, oldest ingestion first (a later batch corrects an earlier one).

    A publication a killed run left half done is finished first, so every batch read is one
    whole set.
    """
    recover(paths)
    files = sorted(paths.cleaned_dir().glob("*.parquet")) if paths.cleaned_dir().is_dir() else []
    files = [f for f in files if not f.name.startswith(".")]

    def ingested_at(path) -> str:
        manifest = paths.manifest(path.stem)
        return read_json(manifest).get("ingested_at", "") if manifest.exists() else ""

    return sorted(files, key=lambda p: (ingested_at(p), p.name))


def load_cleaned(paths: PlatformPaths, spec: DatasetSpec) -> tuple[pd.DataFrame, int]:
    """All cleaned batches as one table, and how many rows later batches superseded.

    Rows that share an entity key and event timestamp across batches are the same event
    delivered again; the newest batch's version wins.
    """
    files = cleaned_batch_paths(paths)
    if not files:
        raise NoCleanedDataError(
            f"no cleaned batches in {paths.cleaned_dir()}: materialize cleaned_data first"
        )
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if frame.empty:
        raise NoCleanedDataError(f"the cleaned batches in {paths.cleaned_dir()} hold no rows")
    keys = [spec.entity_key, spec.event_timestamp]
    superseded = frame.duplicated(keys, keep="last").to_numpy()
    return frame.loc[~superseded].reset_index(drop=True), int(np.count_nonzero(superseded))
