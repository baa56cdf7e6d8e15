"""What drift is measured on.

The champion's reference statistics, the newest batch, and the inputs recorded in the
prediction log.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.core.storage import read_json
from mlops_assets.features.inputs import cleaned_batch_paths
from mlops_assets.ingestion.publication import recover
from mlops_assets.model_registry.model_store import (
    STATISTICS_FILE,
    load_evaluation,
    load_manifest,
)
from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import DatasetSpec
from mlops_assets.training.candidate import CANDIDATE, predictions_of


def reference_statistics(
    paths: PlatformPaths, champion_run_id: str | None
) -> tuple[dict[str, Any], str]:
    """The champion's training statistics (or the latest training set's, before any champion).

    The champion is the registry's (its run id passed in), never a pointer file that a crash
    could have left behind.
    """
    if champion_run_id:
        run_id = champion_run_id
        candidate = paths.model(run_id) / STATISTICS_FILE
        if candidate.exists():
            return read_json(candidate), f"champion run {run_id}"
    fallback = paths.feature_statistics
    if not fallback.exists():
        raise FileNotFoundError(f"no reference statistics yet ({fallback}): train a model first")
    return read_json(fallback), "latest training set"


def newest_batch(paths: PlatformPaths, batch: str = "") -> tuple[str, pd.DataFrame]:
    """The named cleaned batch, or the one ingested last."""
    if batch:
        recover(paths, batch)
        return batch, pd.read_parquet(paths.cleaned(batch))
    files = cleaned_batch_paths(paths)
    if not files:
        raise FileNotFoundError(f"no cleaned batch in {paths.cleaned_dir()}")
    return files[-1].stem, pd.read_parquet(files[-1])


def logged_inputs(paths: PlatformPaths, spec: DatasetSpec, max_files: int = 50) -> pd.DataFrame:
    """Inputs of logged single and batch predictions (by-key requests carry no inputs).

    A shadow prediction repeats the inputs of the answer it shadows: it is left out, so each
    request counts once in the live traffic's distribution.
    """
    folder = paths.predictions
    files = sorted(folder.glob("*.jsonl"))[-max_files:] if folder.is_dir() else []
    records: list[dict[str, Any]] = []
    for path in files:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("answered") is False:
                continue
            inputs = entry.get("inputs") or {}
            if all(name in inputs for name in spec.feature_columns):
                records.append(inputs)
    return pd.DataFrame.from_records(records, columns=spec.feature_columns)


def monitored_columns(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """The delivered feature columns as arrays.

    Time-derived features are left out on purpose: new data is always later than the training
    data, which is not drift.
    """
    columns: dict[str, np.ndarray] = {}
    for name in spec.feature_columns:
        values = frame[name]
        if name in spec.categorical_columns:
            columns[name] = category_text(values, spec.column(name).integer_categories)
        else:
            columns[name] = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    return columns


def category_text(values: pd.Series, integer: bool) -> np.ndarray:
    """Categories as the text the reference shares are keyed by (JSON keys are text).

    Integer codes become "3" whether they arrive as 3 (a cleaned batch) or 3.0 (a logged
    request column that also holds nulls); missing values stay missing.
    """
    if not integer:
        return values.astype("object").to_numpy()
    numbers = pd.to_numeric(values.astype("object"), errors="coerce")
    numbers = numbers.where(np.floor(numbers) == numbers)
    return numbers.astype("Int64").astype("string").astype("object").to_numpy()


def reference_classes(paths: PlatformPaths, champion_run_id: str | None) -> np.ndarray | None:
    """The champion's predicted class on each of its evaluation rows (None: no local copy).

    Out-of-fold or test-split answers: what the model says on data like its training data.
    """
    if not champion_run_id or not paths.model(champion_run_id).exists():
        return None
    manifest = load_manifest(paths, champion_run_id)
    evaluation = load_evaluation(paths, champion_run_id)
    return predictions_of(evaluation, CANDIDATE + manifest.family).argmax(axis=1)


def logged_classes(paths: PlatformPaths, max_files: int = 50) -> np.ndarray:
    """The class each answered, logged multiclass prediction chose (shadow answers left out)."""
    folder = paths.predictions
    files = sorted(folder.glob("*.jsonl"))[-max_files:] if folder.is_dir() else []
    chosen: list[int] = []
    for path in files:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            output = entry.get("output")
            if entry.get("answered") is False or not isinstance(output, list) or not output:
                continue
            chosen.append(int(np.argmax(output)))
    return np.asarray(chosen, dtype=np.int64)
