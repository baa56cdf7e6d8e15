"""Drift statistics, vectorised: PSI and normalised Wasserstein distance per column.

Both compare a current sample with the training reference statistics saved with the training
set (101 quantiles per numeric column, shares per category), so no training data is kept around.

- PSI (population stability index) on the reference deciles for numeric columns, on category
  shares for categorical ones. The usual reading (Siddiqi, "Credit Risk Scorecards", 2006, and
  common practice since): below 0.1 no meaningful shift, 0.1 to 0.25 moderate, above 0.25
  significant. The default threshold flags a column at 0.2.
- Wasserstein-1 distance between the two quantile functions, divided by the reference standard
  deviation, so it reads as "shift in standard deviations" (0.1 = a tenth of a sigma).
- KS p-values are not used as a gate: with a million rows a 0.02-sigma shift is "significant"
  at p ~ 1e-33, which says nothing about whether the model is affected.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

EPSILON = 1e-4  # floor for empty bins, so PSI stays finite
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class DriftThresholds:
    """When a column, and the dataset, count as drifted."""

    psi: float = 0.2
    wasserstein: float = 0.25
    drifted_share: float = 0.3


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift figures."""

    column: str
    kind: str
    psi: float
    wasserstein: float | None
    drifted: bool
    rows: int


@dataclass(frozen=True)
class DriftResult:
    """All columns, the share that drifted and the verdict."""

    columns: list[ColumnDrift]
    drifted_share: float
    drifted: bool
    rows: int
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for reports, metadata and the drift state file."""
        return asdict(self)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype=float), EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=float), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(reference_quantiles: list[float], values: np.ndarray) -> float:
    """PSI on the reference deciles: reference shares come from its quantile function."""
    quantiles = np.asarray(reference_quantiles, dtype=float)
    edges = np.unique(quantiles[10:100:10])
    # Bins are (-inf, e1], (e1, e2], ..., (ek, inf). The reference share at or below an edge
    # is the last quantile level whose value is <= the edge, which keeps discrete columns
    # (bedrooms) consistent with how the current values are binned.
    levels = QUANTILE_LEVELS[np.searchsorted(quantiles, edges, side="right") - 1]
    expected = np.diff(np.concatenate([[0.0], levels, [1.0]]))
    positions = np.searchsorted(edges, values, side="left")
    actual = np.bincount(positions, minlength=len(edges) + 1) / max(len(values), 1)
    return psi(expected, actual)


def categorical_psi(reference_shares: dict[str, float], values: np.ndarray) -> float:
    """PSI on category shares (values outside the reference categories form one more bin)."""
    categories = list(reference_shares)
    codes = _category_codes(values, categories)
    counts = np.bincount(codes, minlength=len(categories) + 1)
    actual = counts / max(len(values), 1)
    expected = np.array([*reference_shares.values(), 0.0])
    return psi(expected, actual)


def normalised_wasserstein(
    reference_quantiles: list[float], reference_std: float, values: np.ndarray
) -> float:
    """W1 between the quantile functions, in reference standard deviations."""
    current = np.quantile(values, QUANTILE_LEVELS)
    distance = float(np.mean(np.abs(current - np.asarray(reference_quantiles, dtype=float))))
    return distance / reference_std if reference_std > 0 else float(distance > 0)


def detect_drift(
    reference: dict[str, Any],
    current: dict[str, np.ndarray],
    thresholds: DriftThresholds | None = None,
) -> DriftResult:
    """Compare each column of `current` with the reference statistics."""
    thresholds = thresholds or DriftThresholds()
    columns: list[ColumnDrift] = []
    for name, stats in reference.get("numeric", {}).items():
        if name not in current or not stats.get("quantiles"):
            continue
        values = np.asarray(current[name], dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        column_psi = numeric_psi(stats["quantiles"], values)
        distance = normalised_wasserstein(stats["quantiles"], stats.get("std") or 0.0, values)
        drifted = column_psi > thresholds.psi or distance > thresholds.wasserstein
        columns.append(
            ColumnDrift(name, "numeric", column_psi, distance, drifted, int(values.size))
        )
    for name, stats in reference.get("categorical", {}).items():
        if name not in current:
            continue
        values = np.asarray(current[name], dtype=object)
        values = values[~pd.isna(values)]  # reference shares exclude nulls too
        if values.size == 0:
            continue
        column_psi = categorical_psi(stats["shares"], values)
        columns.append(
            ColumnDrift(
                name, "categorical", column_psi, None, column_psi > thresholds.psi, len(values)
            )
        )
    share = sum(c.drifted for c in columns) / len(columns) if columns else 0.0
    rows = max((c.rows for c in columns), default=0)
    return DriftResult(columns, share, share >= thresholds.drifted_share, rows, thresholds)


@dataclass(frozen=True)
class ClassMixDrift:
    """How the share of each predicted class moved: a multiclass model's answers, not inputs.

    Input drift can hide in a model's blind spot; a shift in what the model answers (more of
    one class, fewer of another) is the change its users see.
    """

    classes: list[str]
    reference: list[float]  # shares of each predicted class on the model's evaluation rows
    live: list[float]  # shares among the logged answers
    psi: float
    drifted: bool
    rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for metadata."""
        return asdict(self)


def class_shares(codes: np.ndarray, classes: int) -> np.ndarray:
    """Each class's share of the codes (0..classes-1); all zero when there are none."""
    counts = np.bincount(np.asarray(codes, dtype=np.int64), minlength=classes)[:classes]
    return counts / max(len(codes), 1)


def class_mix_drift(
    classes: list[str], reference: np.ndarray, live: np.ndarray, threshold: float
) -> ClassMixDrift:
    """PSI between the reference's and the live answers' predicted classes (codes)."""
    expected, actual = class_shares(reference, len(classes)), class_shares(live, len(classes))
    value = psi(expected, actual)
    return ClassMixDrift(
        classes, expected.tolist(), actual.tolist(), value, value > threshold, len(live)
    )


def _category_codes(values: np.ndarray, categories: list[str]) -> np.ndarray:
    codes = pd.Categorical(values, categories=categories).codes.astype(np.int64)
    codes[codes < 0] = len(categories)
    return codes
