"""Live performance: logged predictions judged by labels that arrive later.

A label judges a prediction only if it became known after the prediction was made (a label
known before would have let the prediction cheat). Each prediction is paired with the first
label of its entity known after it (`merge_asof`, forward, strictly later); predictions with no
such label yet are pending, and labels that judge no prediction are counted, never dropped
silently. The metrics are the task's (primary first), per model version and per day.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from mlops_assets.core.evaluation import compute_metrics
from mlops_assets.spec import DatasetSpec, TaskType

KEY, PREDICTED_AT, KNOWN_AT = "key", "predicted_at", "known_at"
PREDICTION, LABEL, VERSION = "prediction", "label", "model_version"


@dataclass(frozen=True)
class LiveJoin:
    """Predictions paired with the labels that judge them, and what could not be paired."""

    matched: pd.DataFrame  # key, predicted_at, model_version, prediction, label, known_at
    pending_predictions: int  # no label for the entity known after the prediction yet
    unmatched_labels: int  # labels that judge no logged prediction


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame) -> LiveJoin:
    """Pair each prediction with its entity's first label known strictly after it."""
    # One time unit on both sides (log times parse to ns, manifest times to s).
    left = predictions.astype({PREDICTED_AT: "datetime64[ns, UTC]"})
    right = labels.astype({KNOWN_AT: "datetime64[ns, UTC]"})
    left = left.sort_values(PREDICTED_AT, kind="stable").reset_index(drop=True)
    right = right.sort_values(KNOWN_AT, kind="stable").reset_index(drop=True)
    right["_label_row"] = np.arange(len(right))
    joined = pd.merge_asof(
        left,
        right,
        left_on=PREDICTED_AT,
        right_on=KNOWN_AT,
        by=KEY,
        direction="forward",
        allow_exact_matches=False,
    )
    paired = joined[LABEL].notna()
    used = set(joined.loc[paired, "_label_row"].astype(int))
    matched = joined.loc[paired].drop(columns="_label_row").reset_index(drop=True)
    return LiveJoin(matched, int((~paired).sum()), int(len(right) - len(used)))


def live_metrics(matched: pd.DataFrame, task: TaskType, metric: str) -> pd.DataFrame:
    """Rows and metrics per model version and per day of prediction, then per version.

    Every metric of the task is there (the live gate may bound another than the primary
    one); `metric`, the primary, comes first.
    """
    # Days as midnight timestamps, formatted once per group: strftime on every row of a
    # million-row log costs seconds.
    frame = matched.assign(day=matched[PREDICTED_AT].dt.normalize())
    rows = []
    for (version, day), group in frame.groupby([VERSION, "day"], sort=True):
        rows.append(_row(version, day.strftime("%Y-%m-%d"), group, task))
    for version, group in frame.groupby(VERSION, sort=True):
        rows.append(_row(version, "all", group, task))
    classes = _classes(frame, task)
    names = [metric] + [m for m in _metric_names(task, classes) if m != metric]
    return pd.DataFrame(rows, columns=[VERSION, "day", "rows", *names])


def prediction_values(values: pd.Series) -> np.ndarray:
    """Logged predictions as numbers: values, or a multiclass log's (n, k) probabilities."""
    if len(values) and not pd.api.types.is_numeric_dtype(values):
        return np.stack([np.asarray(v, dtype=np.float64) for v in values])
    return values.to_numpy(dtype=np.float64)


def _classes(frame: pd.DataFrame, task: TaskType) -> int:
    if task != TaskType.MULTICLASS_CLASSIFICATION or frame.empty:
        return 0
    return len(frame[PREDICTION].iloc[0])


@cache
def _metric_names(task: TaskType, classes: int = 0) -> list[str]:
    if task == TaskType.MULTICLASS_CLASSIFICATION:
        uniform = np.full((classes, classes), 1.0 / max(classes, 1))
        return list(compute_metrics(np.arange(classes, dtype=np.float64), uniform, task))
    return list(compute_metrics(np.array([0.0, 1.0]), np.array([0.0, 1.0]), task))


def _row(version: str, day: str, group: pd.DataFrame, task: TaskType) -> dict:
    y = group[LABEL].to_numpy(dtype=np.float64)
    predicted = prediction_values(group[PREDICTION])
    values = compute_metrics(y, predicted, task) if len(y) > 1 else {}
    names = _metric_names(task, predicted.shape[1] if predicted.ndim == 2 else 0)
    named = {name: float(values.get(name, np.nan)) for name in names}
    return {VERSION: str(version), "day": day, "rows": len(group), **named}


@dataclass(frozen=True)
class LiveVerdict:
    """The champion's live metric against the spec's live gate."""

    version: str | None
    value: float | None
    rows: int
    below_gate: bool
    reason: str


def live_verdict(table: pd.DataFrame, spec: DatasetSpec, version: str | None) -> LiveVerdict:
    """Judge the champion's live metric (all days) by `spec.monitoring.live_gate`."""
    gate, needed = spec.monitoring.live_gate, spec.monitoring.min_live_labels
    metric = spec.gates.primary_metric if gate is None else gate.metric
    row = table[(table[VERSION] == version) & (table["day"] == "all")] if version else table[:0]
    rows = int(row["rows"].iloc[0]) if len(row) else 0
    value = float(row[metric].iloc[0]) if len(row) and metric in row else None
    value = None if value is None or np.isnan(value) else value
    if gate is None:
        return LiveVerdict(version, value, rows, False, "no live gate in the spec")
    if rows < needed:
        return LiveVerdict(
            version, value, rows, False, f"v{version}: {rows} labelled predictions, {needed} needed"
        )
    if value is None:
        return LiveVerdict(version, value, rows, False, f"v{version}: live {metric} undefined")
    low = gate.min is not None and value < gate.min
    high = gate.max is not None and value > gate.max
    bound = f"min {gate.min}" if low else f"max {gate.max}" if high else "within the gate"
    state = "breaks" if low or high else "holds"
    return LiveVerdict(
        version,
        value,
        rows,
        low or high,
        f"v{version}: live {metric} {value:.4g} on {rows} labels {state} the live gate ({bound})",
    )
