"""How sure an estimate is: fold spread and bootstrap intervals, single and paired.

A metric on a few hundred rows moves by whole points from one sample to the next. The report
gives every estimate an interval, and the promotion gate on small data asks whether the
challenger's improvement over the champion on the same rows stays above zero across resamples
(a paired bootstrap: both models are scored on each resample, so the rows' own difficulty
cancels out), not merely whether one number is larger than another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_assets.core.evaluation import (
    LOWER_IS_BETTER,
    compute_metrics,
    multiclass_log_loss,
    ovr_roc_auc,
)
from mlops_assets.spec import TaskType

EPS = 1e-7


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(p, EPS, 1 - EPS)


# Single-metric functions for resampling (computing every metric each time would be slow).
FAST: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "rmse": lambda y, p: float(np.sqrt(np.mean((y - p) ** 2))),
    "mae": lambda y, p: float(np.mean(np.abs(y - p))),
    "r2": lambda y, p: float(1 - np.sum((y - p) ** 2) / max(np.sum((y - y.mean()) ** 2), EPS)),
    "log_loss": lambda y, p: float(-np.mean(y * np.log(_clip(p)) + (1 - y) * np.log(1 - _clip(p)))),
    "brier": lambda y, p: float(np.mean((p - y) ** 2)),
    "wape": lambda y, p: float(np.sum(np.abs(y - p)) / max(np.sum(np.abs(y)), 1e-12)),
    "roc_auc": lambda y, p: float(_skm().roc_auc_score(y, p)) if 0 < y.sum() < len(y) else np.nan,
    "pr_auc": lambda y, p: float(_skm().average_precision_score(y, p)) if y.sum() > 0 else np.nan,
}


# The same for an (n, k) probability matrix against class codes.
MULTICLASS_FAST: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "log_loss": lambda y, p: multiclass_log_loss(y.astype(np.int64), p),
    "accuracy": lambda y, p: float(np.mean(p.argmax(axis=1) == y)),
    "roc_auc_ovr": lambda y, p: ovr_roc_auc(y.astype(np.int64), p),
}


def metric(
    y: np.ndarray, predicted: np.ndarray, name: str, task: TaskType, threshold: float = 0.5
) -> float:
    """One metric, fast where a formula is known, else through `compute_metrics`."""
    if task == TaskType.MULTICLASS_CLASSIFICATION:
        if name in MULTICLASS_FAST:
            return MULTICLASS_FAST[name](y, predicted)
        return float(compute_metrics(y, predicted, task, threshold).get(name, np.nan))
    if name in FAST:
        return FAST[name](y, predicted)
    return float(compute_metrics(y, predicted, task, threshold).get(name, np.nan))


def better_sign(name: str) -> float:
    """+1 when a larger value is better, -1 when a smaller one is."""
    return -1.0 if name in LOWER_IS_BETTER else 1.0


@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap interval at `level`."""

    value: float
    low: float
    high: float
    level: float

    def describe(self, digits: int = 4) -> str:
        """`0.9512 (95% interval 0.94 to 0.96)`."""
        return (
            f"{self.value:.{digits}g} ({self.level:.0%} interval {self.low:.{digits}g} "
            f"to {self.high:.{digits}g})"
        )


def bootstrap_interval(
    y: np.ndarray,
    predicted: np.ndarray,
    name: str,
    task: TaskType,
    resamples: int,
    level: float,
    seed: int,
    threshold: float = 0.5,
) -> Interval:
    """Percentile interval of a metric over row resamples."""
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            metric(y[i], predicted[i], name, task, threshold)
            for i in _resamples(rng, len(y), resamples)
        ]
    )
    return _interval(metric(y, predicted, name, task, threshold), values, level)


def paired_improvement(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    name: str,
    task: TaskType,
    resamples: int,
    level: float,
    seed: int,
    threshold: float = 0.5,
) -> Interval:
    """How much better the challenger is on the same rows (positive: better), with interval."""
    sign = better_sign(name)
    rng = np.random.default_rng(seed)

    def gain(rows: np.ndarray | slice) -> float:
        mine = metric(y[rows], challenger[rows], name, task, threshold)
        return sign * (mine - metric(y[rows], champion[rows], name, task, threshold))

    differences = np.array([gain(i) for i in _resamples(rng, len(y), resamples)])
    point = gain(slice(None))
    return _interval(point, differences, level)


def fold_spread(
    y: np.ndarray,
    predicted: np.ndarray,
    folds: np.ndarray,
    name: str,
    task: TaskType,
    threshold: float = 0.5,
) -> tuple[float, float]:
    """Mean and standard deviation of the metric across folds."""
    values = [
        metric(y[folds == f], predicted[folds == f], name, task, threshold)
        for f in np.unique(folds)
    ]
    return float(np.nanmean(values)), float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0


def _resamples(rng: np.random.Generator, rows: int, count: int):
    for _ in range(count):
        yield rng.integers(0, rows, rows)


def _interval(point: float, values: np.ndarray, level: float) -> Interval:
    values = values[np.isfinite(values)]
    tail = (1 - level) / 2 * 100
    if values.size == 0:
        return Interval(point, np.nan, np.nan, level)
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(point) + 0.0, float(low) + 0.0, float(high) + 0.0, level)  # no -0


def _skm() -> Any:
    """scikit-learn's metrics, imported when a metric needs them (it takes seconds)."""
    from sklearn import metrics

    return metrics
