"""The validation report: Markdown for the Dagster UI and MLflow, and its plots as PNG."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlops_assets.core.evaluation import Decision
from mlops_assets.core.markdown_images import image_markdown
from mlops_assets.spec import DatasetSpec, TaskType

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows."""

    spec: DatasetSpec
    model_id: str
    mlflow_run_id: str
    data_hash: str
    test_rows: int
    metrics: dict[str, dict[str, float]]  # model name -> metric -> value
    decision: Decision
    slices: dict[str, dict[str, dict[str, float]]]
    plots: list[str] = field(default_factory=list)
    estimate: dict[str, Any] = field(default_factory=dict)  # protocol, rows, interval, folds


def render_markdown(inputs: ReportInputs, *, embed_plots: bool = False) -> str:
    """A readable report: metrics against baselines and champion, gates, decision, slices.

    `embed_plots` puts the plots inline (for the Dagster UI); otherwise they are linked by
    file name, for the copy written beside them (see `markdown_images.py`).
    """
    spec, decision = inputs.spec, inputs.decision
    lines = [
        f"# Validation report: {spec.name} model `{inputs.model_id}`",
        "",
        f"- MLflow run: `{inputs.mlflow_run_id}`",
        f"- Training data hash: `{inputs.data_hash[:16]}…`",
        "",
        "## How the estimate was obtained",
        "",
        *_estimate_lines(inputs),
        "",
        f"## Decision: {'PROMOTE' if decision.promote else 'KEEP CHAMPION'}",
        "",
        decision.reason,
        "",
        "## Metrics (challenger, other candidates, baselines, champion; the same rows)",
        "",
        _table(inputs.metrics, "model"),
        "",
        *_threshold_note(spec),
        "## Gates",
        "",
        "| metric | value | needs | result |",
        "|---|---|---|---|",
    ]
    for gate in decision.gates:
        needs = " and ".join(
            part
            for part in (
                f">= {gate.min:g}" if gate.min is not None else "",
                f"<= {gate.max:g}" if gate.max is not None else "",
            )
            if part
        )
        lines.append(
            f"| {gate.metric} | {gate.value:.6g} | {needs} | {'pass' if gate.passed else 'FAIL'} |"
        )
    lines += [
        "",
        f"Promotion on `{decision.primary_metric}` needs a gain over the best baseline above "
        f"{spec.training.baseline_margin:.2%} (`training.baseline_margin`) and over the champion "
        f"above {spec.training.min_improvement:.2%} (`training.min_improvement`); on "
        "cross-validation also a paired interval of the gain above zero. A tie keeps the champion.",
        "",
    ]
    for column, per_value in inputs.slices.items():
        lines += [f"## Slices by `{column}`", "", _table(per_value, "value"), ""]
    if inputs.plots:
        lines += ["## Plots", ""]
        for plot in inputs.plots:
            lines += [image_markdown(Path(plot), embed=embed_plots), ""]
    return "\n".join(lines) + "\n"


def _threshold_note(spec: DatasetSpec) -> list[str]:
    if spec.task == TaskType.REGRESSION:
        return []
    return [
        f"Accuracy and F1 label a row positive at probability >= {spec.threshold:g} (the spec's "
        "`decision_threshold`); ROC AUC, PR AUC, log loss and Brier score use the probabilities.",
        "",
    ]


def _estimate_lines(inputs: ReportInputs) -> list[str]:
    """Protocol, rows, folds and the interval of the primary metric."""
    facts = inputs.estimate
    if not facts:
        return [f"- Evaluation rows: {inputs.test_rows:,}"]
    protocol = facts.get("protocol", "")
    if protocol == "federated":
        return _federated_lines(facts)
    if protocol == "cross_validation":
        how = (
            f"{facts.get('folds')}-fold cross-validation (stratified by class, grouped by "
            f"entity) on {facts.get('rows', 0):,} rows: every row predicted by a model that "
            "never saw it; the served model is refit on all rows"
        )
    else:
        how = (
            f"holdout: entity-hash split, {facts.get('evaluation_rows', 0):,} test rows of "
            f"{facts.get('rows', 0):,}, the same rows for every model"
        )
    low, high = facts.get("interval", [float("nan")] * 2)
    lines = [
        f"- Protocol: {how} ({facts.get('why', '')}).",
        f"- Challenger: `{facts.get('family', '')}`, the best of the candidates on "
        f"`{facts.get('primary_metric', '')}`.",
        f"- Estimate: {facts.get('primary_metric', '')} {_fmt(facts.get('value'))}, "
        f"{facts.get('confidence', 0.95):.0%} bootstrap interval {_fmt(low)} to {_fmt(high)}.",
    ]
    if "fold_std" in facts:
        lines.append(
            f"- Across folds: mean {_fmt(facts['fold_mean'])}, standard deviation "
            f"{_fmt(facts['fold_std'])}."
        )
    return lines


def _federated_lines(facts: dict[str, Any]) -> list[str]:
    """Where a federated model was evaluated: at each site, pooled by the sites' sums."""
    sites = facts.get("sites", {})
    each = ", ".join(f"{site} {rows.get('test', 0):,}" for site, rows in sites.items())
    return [
        f"- Protocol: federated, {len(sites)} sites ({facts.get('why', '')}). Each site split "
        f"its own rows by entity hash and scored the model, the constant baseline and the "
        f"champion on its test rows ({each}; {facts.get('evaluation_rows', 0):,} in all). "
        "No row left a site: only metrics and sums did.",
        f"- Pooled over every site's test rows: {facts.get('primary_metric', '')} "
        f"{_fmt(facts.get('value'))} (RMSE, MAE, R² and log loss exactly from the sites' sums; "
        "ranking and threshold metrics as the row-weighted mean of the sites' values). The "
        "gates and the champion comparison use these pooled metrics; the rows below give "
        "each site's own. No bootstrap interval or slices: those need the rows.",
    ]


def _table(rows: dict[str, dict[str, float]], first: str) -> str:
    """A Markdown table: one row per key, one column per metric of the first row."""
    if not rows:
        return "(no slice with enough rows)"
    names = list(next(iter(rows.values())))
    header = f"| {first} | " + " | ".join(names) + " |"
    rule = "|---|" + "---|" * len(names)
    body = [
        f"| {key} | " + " | ".join(_fmt(values.get(n)) for n in names) + " |"
        for key, values in rows.items()
    ]
    return "\n".join([header, rule, *body])


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def render_plots(
    folder: Path,
    y: np.ndarray,
    predicted: np.ndarray,
    importance: dict[str, float],
    task: TaskType,
    importance_title: str = "Feature importance (total gain)",
) -> list[Path]:
    """The report's plots as PNG files beside it.

    Regression: predicted vs actual and residuals. Classification: ROC and precision-recall,
    and a reliability diagram. Both: feature importance.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    if task == TaskType.REGRESSION:
        _predicted_vs_actual(axes[0], y, predicted)
        _residuals(axes[1], y, predicted)
        name = "predicted_vs_actual.png"
    else:
        _roc(axes[0], y, predicted)
        _precision_recall(axes[1], y, predicted)
        name = "roc_and_precision_recall.png"
    figure.tight_layout()
    written.append(_save(figure, folder / name, plt))
    if task != TaskType.REGRESSION:
        figure, axes = plt.subplots(
            2, 1, figsize=(6, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
        _calibration(axes, y, predicted)
        figure.tight_layout()
        written.append(_save(figure, folder / "calibration.png", plt))
    figure, axis = plt.subplots(figsize=(7, 0.35 * max(len(importance), 4) + 1))
    ordered = sorted(importance.items(), key=lambda item: item[1])
    axis.barh([k for k, _ in ordered], [v for _, v in ordered], color="#4c72b0")
    axis.set_title(importance_title)
    figure.tight_layout()
    written.append(_save(figure, folder / "feature_importance.png", plt))
    return written


def _save(figure: Any, path: Path, plt: Any) -> Path:
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _predicted_vs_actual(axis: Any, y: np.ndarray, predicted: np.ndarray) -> None:
    axis.scatter(y, predicted, s=3, alpha=0.3)
    low, high = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    axis.plot([low, high], [low, high], color="black", linewidth=1)
    axis.set(title="Predicted vs actual (test)", xlabel="actual", ylabel="predicted")


def _residuals(axis: Any, y: np.ndarray, predicted: np.ndarray) -> None:
    axis.scatter(predicted, y - predicted, s=3, alpha=0.3)
    axis.axhline(0, color="black", linewidth=1)
    axis.set(title="Residuals (test)", xlabel="predicted", ylabel="actual - predicted")


def _roc(axis: Any, y: np.ndarray, predicted: np.ndarray) -> None:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, predicted)
    axis.plot(fpr, tpr)
    axis.plot([0, 1], [0, 1], color="black", linewidth=1, linestyle="--")
    axis.set(title="ROC (test)", xlabel="false positive rate", ylabel="true positive rate")


def _precision_recall(axis: Any, y: np.ndarray, predicted: np.ndarray) -> None:
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, predicted)
    axis.plot(recall, precision)
    axis.axhline(float(np.mean(y)), color="black", linewidth=1, linestyle="--")
    axis.set(title="Precision-recall (test)", xlabel="recall", ylabel="precision")


def _calibration(axes: Any, y: np.ndarray, predicted: np.ndarray) -> None:
    """Reliability diagram: observed positive share against mean predicted probability per bin.

    Points on the diagonal mean the probabilities can be read as probabilities; the histogram
    below shows how many test rows each bin holds, so a wild point on few rows is not mistaken
    for a miscalibrated model.
    """
    from sklearn.calibration import calibration_curve

    observed, mean_predicted = calibration_curve(y, predicted, n_bins=CALIBRATION_BINS)
    top, bottom = axes
    top.plot([0, 1], [0, 1], color="black", linewidth=1, linestyle="--", label="perfect")
    top.plot(mean_predicted, observed, marker="o", label="model")
    top.set(title="Calibration (test)", ylabel="observed positive share", ylim=(-0.02, 1.02))
    top.legend(loc="upper left")
    bottom.hist(predicted, bins=CALIBRATION_BINS, range=(0, 1), color="#4c72b0")
    bottom.set(xlabel="predicted probability", ylabel="rows", xlim=(0, 1))
