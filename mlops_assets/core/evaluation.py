"""Metrics, per-slice metrics, promotion gates and the champion/challenger decision.

The decision is a pure function of metrics and the spec's gates, so it is tested without any
registry: a challenger is promoted only when every gate passes and its primary metric is not
worse than the champion's beyond the spec's relative tolerance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from mlops_assets.spec import DatasetSpec, TaskType
from mlops_assets.spec.model import DEFAULT_THRESHOLD

LOWER_IS_BETTER = {"rmse", "mae", "mape", "log_loss", "brier"}
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape")
CLASSIFICATION_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1")


def compute_metrics(
    y: np.ndarray, predicted: np.ndarray, task: TaskType, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """Test metrics of one model; classification takes positive-class probabilities.

    Ranking (ROC AUC, PR AUC as average precision) and probability quality (log loss, Brier
    score) need no threshold; accuracy and F1 label a row positive at `threshold` or above,
    the spec's `decision_threshold`, the same rule the service would apply.
    """
    if task == TaskType.REGRESSION:
        nonzero = np.abs(y) > 0
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(y, predicted))),
            "mae": float(skm.mean_absolute_error(y, predicted)),
            "r2": float(skm.r2_score(y, predicted)),
            "mape": float(np.mean(np.abs((y[nonzero] - predicted[nonzero]) / y[nonzero]))),
        }
    labels = (predicted >= threshold).astype(int)
    probabilities = np.clip(predicted, 1e-7, 1 - 1e-7)
    two_classes = np.unique(y).size == 2
    return {
        "roc_auc": float(skm.roc_auc_score(y, probabilities)) if two_classes else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, probabilities))
        if two_classes
        else float("nan"),
        "log_loss": float(skm.log_loss(y, probabilities, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, predicted, labels=[0, 1])),
        "accuracy": float(skm.accuracy_score(y, labels)),
        "f1": float(skm.f1_score(y, labels, zero_division=0)),
    }


def slice_metrics(
    frame: pd.DataFrame, y: np.ndarray, predicted: np.ndarray, spec: DatasetSpec
) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics per category of every categorical feature (rows and metrics per slice)."""
    result: dict[str, dict[str, dict[str, float]]] = {}
    for column in spec.categorical_columns:
        values = frame[column].astype("object").to_numpy()
        per_value: dict[str, dict[str, float]] = {}
        for category in spec.column(column).categories or ():
            mask = values == category
            if mask.sum() < 2:
                continue
            per_value[str(category)] = {
                "rows": int(mask.sum()),
                **compute_metrics(y[mask], predicted[mask], spec.task, spec.threshold),
            }
        result[column] = per_value
    return result


@dataclass(frozen=True)
class GateResult:
    """One gate evaluated on the challenger's test metrics."""

    metric: str
    value: float
    min: float | None
    max: float | None
    passed: bool


@dataclass(frozen=True)
class Decision:
    """Whether the challenger should become champion, and why."""

    promote: bool
    reason: str
    gates: list[GateResult] = field(default_factory=list)
    primary_metric: str = ""
    challenger: float | None = None
    champion: float | None = None
    champion_version: str | None = None

    @property
    def gates_passed(self) -> bool:
        """Whether every absolute gate passed (independently of the champion)."""
        return all(g.passed for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for reports, metadata and the promotion history."""
        return {**asdict(self), "gates_passed": self.gates_passed}


def evaluate_gates(metrics: dict[str, float], spec: DatasetSpec) -> list[GateResult]:
    """Each of the spec's gates against the metrics; a missing or NaN metric fails."""
    results = []
    for gate in spec.gates.rules:
        value = metrics.get(gate.metric, float("nan"))
        passed = bool(np.isfinite(value))
        if gate.min is not None:
            passed = passed and value >= gate.min
        if gate.max is not None:
            passed = passed and value <= gate.max
        results.append(GateResult(gate.metric, float(value), gate.min, gate.max, passed))
    return results


def decide(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    spec: DatasetSpec,
    champion_version: str | None = None,
) -> Decision:
    """Promote when every gate passes and the challenger is not worse beyond the tolerance."""
    gates = evaluate_gates(challenger, spec)
    primary = spec.gates.primary_metric
    mine = challenger.get(primary)
    failed = [g for g in gates if not g.passed]
    common = {
        "gates": gates,
        "primary_metric": primary,
        "challenger": mine,
        "champion_version": champion_version,
    }
    if failed:
        reasons = ", ".join(_describe_gate(g) for g in failed)
        return Decision(
            False, f"failed gates: {reasons}", champion=(champion or {}).get(primary), **common
        )
    if champion is None:
        return Decision(True, "first model to pass every gate", champion=None, **common)
    theirs = champion.get(primary)
    if mine is None or theirs is None:
        return Decision(False, f"primary metric {primary!r} missing", champion=theirs, **common)
    tolerance = spec.gates.champion_tolerance
    if primary in LOWER_IS_BETTER:
        worse = mine > theirs * (1 + tolerance)
    else:
        worse = mine < theirs * (1 - tolerance)
    verdict = (
        f"{primary} {mine:.6g} vs champion v{champion_version} {theirs:.6g} "
        f"(tolerance {tolerance:.1%})"
    )
    if worse:
        return Decision(False, f"worse than the champion: {verdict}", champion=theirs, **common)
    return Decision(
        True,
        f"passes every gate and is not worse than the champion: {verdict}",
        champion=theirs,
        **common,
    )


def _describe_gate(gate: GateResult) -> str:
    bounds = []
    if gate.min is not None:
        bounds.append(f">= {gate.min:g}")
    if gate.max is not None:
        bounds.append(f"<= {gate.max:g}")
    return f"{gate.metric} = {gate.value:.6g} (needs {' and '.join(bounds)})"
