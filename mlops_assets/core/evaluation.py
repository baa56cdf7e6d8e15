"""Metrics, per-slice metrics, promotion gates and the champion/challenger decision.

The decision is a pure function of metrics and the spec's settings, so it is tested without
any registry: a challenger is promoted only when every gate passes, it beats the best baseline
and it is strictly better than the champion on the same rows (see `decide`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.spec import DatasetSpec, TaskType
from mlops_assets.spec.model import DEFAULT_THRESHOLD

LOWER_IS_BETTER = {"rmse", "mae", "mape", "wape", "smape", "mase", "log_loss", "brier"}
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape", "wape", "smape")
CLASSIFICATION_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1")
MULTICLASS_METRICS = ("log_loss", "accuracy", "f1_macro", "f1_weighted", "roc_auc_ovr")
PROBABILITY_FLOOR = 1e-7


def compute_metrics(
    y: np.ndarray, predicted: np.ndarray, task: TaskType, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """Test metrics of one model; classification takes positive-class probabilities.

    Ranking (ROC AUC, PR AUC as average precision) and probability quality (log loss, Brier
    score) need no threshold; accuracy and F1 label a row positive at `threshold` or above,
    the spec's `decision_threshold`, the same rule the service would apply.
    """
    if task == TaskType.MULTICLASS_CLASSIFICATION:
        return multiclass_metrics(y, predicted)
    if task == TaskType.REGRESSION:
        nonzero = np.abs(y) > 0
        errors = np.abs(y - predicted)
        scale = np.abs(y) + np.abs(predicted)
        return {
            "rmse": float(np.sqrt(_skm().mean_squared_error(y, predicted))),
            "mae": float(_skm().mean_absolute_error(y, predicted)),
            "r2": float(_skm().r2_score(y, predicted)),
            "mape": float(np.mean(np.abs((y[nonzero] - predicted[nonzero]) / y[nonzero]))),
            # Forecasting's usual pair: WAPE weighs errors by volume (zero sales are fine);
            # sMAPE counts a row where both are zero as a perfect one.
            "wape": float(errors.sum() / max(np.abs(y).sum(), 1e-12)),
            "smape": float(np.mean(np.where(scale > 0, 2 * errors / np.maximum(scale, 1e-12), 0))),
        }
    labels = (predicted >= threshold).astype(int)
    probabilities = np.clip(predicted, 1e-7, 1 - 1e-7)
    two_classes = np.unique(y).size == 2
    return {
        "roc_auc": float(_skm().roc_auc_score(y, probabilities)) if two_classes else float("nan"),
        "pr_auc": float(_skm().average_precision_score(y, probabilities))
        if two_classes
        else float("nan"),
        "log_loss": float(_skm().log_loss(y, probabilities, labels=[0, 1])),
        "brier": float(_skm().brier_score_loss(y, predicted, labels=[0, 1])),
        "accuracy": float(_skm().accuracy_score(y, labels)),
        "f1": float(_skm().f1_score(y, labels, zero_division=0)),
    }


def multiclass_metrics(y: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Metrics of an (n, k) probability matrix against class codes 0..k-1.

    The label is the most probable class (no threshold). ROC AUC is the macro mean of each
    class against the rest, over the classes present with at least one row of another class;
    per-class precision and recall follow as `precision_<i>` and `recall_<i>` (class code i).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    classes = np.arange(p.shape[1])
    codes = np.asarray(y, dtype=np.int64)
    labels = p.argmax(axis=1)
    result = {
        "log_loss": multiclass_log_loss(codes, p),
        "accuracy": float(_skm().accuracy_score(codes, labels)),
        "f1_macro": float(
            _skm().f1_score(codes, labels, labels=classes, average="macro", zero_division=0)
        ),
        "f1_weighted": float(
            _skm().f1_score(codes, labels, labels=classes, average="weighted", zero_division=0)
        ),
        "roc_auc_ovr": ovr_roc_auc(codes, p),
    }
    precision, recall, _, _ = _skm().precision_recall_fscore_support(
        codes, labels, labels=classes, zero_division=0
    )
    for k in classes:
        result[f"precision_{k}"] = float(precision[k])
        result[f"recall_{k}"] = float(recall[k])
    return result


def multiclass_log_loss(codes: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean negative log probability of the true class (floored at 1e-7, as binary's)."""
    chosen = probabilities[np.arange(len(codes)), codes]
    return float(-np.mean(np.log(np.clip(chosen, PROBABILITY_FLOOR, 1.0))))


def ovr_roc_auc(codes: np.ndarray, probabilities: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC over the classes that have rows both in and out (else NaN)."""
    values = []
    for k in range(probabilities.shape[1]):
        positive = codes == k
        if 0 < positive.sum() < len(codes):
            values.append(_skm().roc_auc_score(positive, probabilities[:, k]))
    return float(np.mean(values)) if values else float("nan")


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
    baseline: str | None = None
    baseline_value: float | None = None
    improvement: float | None = None  # relative, over the champion (positive: better)
    interval: tuple[float, float] | None = None  # paired bootstrap of the improvement

    @property
    def gates_passed(self) -> bool:
        """Whether every absolute gate passed (independently of the champion)."""
        return all(g.passed for g in self.gates)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for reports, metadata and the promotion history."""
        return {**asdict(self), "gates_passed": self.gates_passed}


@dataclass(frozen=True)
class Comparison:
    """The challenger against the champion on the same rows.

    `paired` is the bootstrap interval of the challenger's improvement in the primary metric
    (positive: better), given on small data where one number alone is mostly noise.
    """

    champion: dict[str, float]
    version: str
    paired: tuple[float, float] | None = None


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


def relative_gain(mine: float, theirs: float, primary: str) -> float:
    """How much better `mine` is than `theirs`, as a share of `theirs` (positive: better)."""
    gain = (theirs - mine) if primary in LOWER_IS_BETTER else (mine - theirs)
    return float(gain / max(abs(theirs), 1e-12))


def decide(
    challenger: dict[str, float],
    spec: DatasetSpec,
    *,
    baselines: dict[str, dict[str, float]] | None = None,
    champion: Comparison | None = None,
) -> Decision:
    """Promote only a challenger that is good enough, beats the baselines and the champion.

    Good enough: every gate passes. Beats the best baseline by more than the margin, and the
    champion on the same rows by more than the minimum improvement (and, when an interval is
    given, the improvement's lower bound too: a gain within noise keeps the champion).

    A tie keeps the champion, so no sequence of promotions can walk quality down.
    """
    primary = spec.gates.primary_metric
    mine = challenger.get(primary)
    gates = evaluate_gates(challenger, spec)
    common: dict[str, Any] = {
        "gates": gates,
        "primary_metric": primary,
        "challenger": mine,
        "champion": champion.champion.get(primary) if champion else None,
        "champion_version": champion.version if champion else None,
    }
    failed = [g for g in gates if not g.passed]
    if failed:
        reasons = ", ".join(_describe_gate(g) for g in failed)
        return Decision(False, f"failed gates: {reasons}", **common)
    if mine is None or not np.isfinite(mine):
        return Decision(False, f"primary metric {primary!r} missing", **common)
    best = _best_baseline(baselines or {}, primary)
    if best is not None:
        name, value = best
        common.update(baseline=name, baseline_value=value)
        margin = spec.training.baseline_margin
        gain = relative_gain(mine, value, primary)
        if not gain > margin:
            return Decision(
                False,
                f"does not beat the best baseline '{name}': {primary} {mine:.6g} vs {value:.6g} "
                f"(gain {gain:+.2%}, needs more than {margin:.2%}: training.baseline_margin)",
                **common,
            )
    if champion is None:
        return Decision(True, "first model to pass every gate and beat the baselines", **common)
    theirs = champion.champion.get(primary)
    if theirs is None or not np.isfinite(theirs):
        return Decision(False, f"champion's {primary!r} missing", **common)
    gain = relative_gain(mine, theirs, primary)
    needed = spec.training.min_improvement
    verdict = (
        f"{primary} {mine:.6g} vs champion v{champion.version} {theirs:.6g} on the same rows "
        f"(gain {gain:+.3%}, needs more than {needed:.2%}: training.min_improvement"
    )
    common.update(improvement=gain, interval=champion.paired)
    if champion.paired is not None:
        low, high = champion.paired
        verdict += f"; paired {spec.training.confidence:.0%} interval {low:+.4g} to {high:+.4g}"
    verdict += ")"
    if gain == 0:
        return Decision(False, f"a tie keeps the champion: {verdict}", **common)
    if not gain > needed:
        return Decision(False, f"not better than the champion: {verdict}", **common)
    if champion.paired is not None and not champion.paired[0] > needed * abs(theirs):
        return Decision(False, f"better only within noise: {verdict}", **common)
    return Decision(True, f"better than the champion: {verdict}", **common)


def _best_baseline(
    baselines: dict[str, dict[str, float]], primary: str
) -> tuple[str, float] | None:
    scored = {n: m[primary] for n, m in baselines.items() if np.isfinite(m.get(primary, np.nan))}
    if not scored:
        return None
    pick = min if primary in LOWER_IS_BETTER else max
    name = pick(scored, key=scored.__getitem__)
    return name, float(scored[name])


def _describe_gate(gate: GateResult) -> str:
    bounds = []
    if gate.min is not None:
        bounds.append(f">= {gate.min:g}")
    if gate.max is not None:
        bounds.append(f"<= {gate.max:g}")
    return f"{gate.metric} = {gate.value:.6g} (needs {' and '.join(bounds)})"


def _skm() -> Any:
    """scikit-learn's metrics, imported when a metric needs them (it takes seconds)."""
    from sklearn import metrics

    return metrics
