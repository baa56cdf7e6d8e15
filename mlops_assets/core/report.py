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
    if spec.task.is_multiclass:
        codes = ", ".join(f"{i} = `{c}`" for i, c in enumerate(spec.classes))
        return [
            "Accuracy, F1 (macro and weighted means over the classes) and each class's "
            "precision and recall label a row with its most probable class; log loss and ROC AUC "
            f"(one class against the rest, macro mean) use the probabilities. Classes: {codes}.",
            "",
        ]
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
        stratified = "" if inputs.spec.task == TaskType.REGRESSION else "stratified by class, "
        how = (
            f"{facts.get('folds')}-fold cross-validation ({stratified}grouped by entity) on "
            f"{facts.get('rows', 0):,} rows: every row predicted by a model that never saw it; "
            "the served model is refit on all rows"
        )
    elif protocol == "backtest":
        how = (
            f"{facts.get('folds')}-fold rolling-origin backtest on {facts.get('rows', 0):,} "
            f"rows ordered by event time: each fold trains on every row before its cut-off "
            f"minus the horizon ({facts.get('horizon')}) and is judged on the block after it, "
            f"{facts.get('evaluation_rows', 0):,} judged rows in all; the served model is refit "
            "on all rows"
        )
    elif protocol == "latest_period":
        how = (
            f"latest period: trained on the earliest rows by event time, judged on the latest "
            f"{facts.get('evaluation_rows', 0):,} of {facts.get('rows', 0):,} rows (horizon "
            f"{facts.get('horizon')}), the same rows for every model"
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
    others = {
        n: v for n, v in facts.get("intervals", {}).items() if n != facts.get("primary_metric")
    }
    if others:
        shown = "; ".join(f"{n} {_fmt(lo)} to {_fmt(hi)}" for n, (lo, hi) in others.items())
        lines.append(f"- Gated metrics, {facts.get('confidence', 0.95):.0%} intervals: {shown}.")
    if "fold_std" in facts:
        lines.append(
            f"- Across folds: mean {_fmt(facts['fold_mean'])}, standard deviation "
            f"{_fmt(facts['fold_std'])}."
        )
    return lines + _period_lines(facts.get("periods", []))


def _period_lines(periods: list[dict[str, str]]) -> list[str]:
    """The training and judged time range of each fold (or split): what judged what."""
    if not periods:
        return []
    if "fold" in periods[0]:
        lines = [
            "",
            "| fold | trained on | rows | judged on | rows |",
            "|---|---|---|---|---|",
        ]
        for p in periods:
            lines.append(
                f"| {p['fold']} | {p['train_from']} to {p['train_to']} | {p['train_rows']} | "
                f"{p['judged_from']} to {p['judged_to']} | {p['judged_rows']} |"
            )
        return [*lines, ""]
    lines = ["", "| part | from | to | rows |", "|---|---|---|---|"]
    lines += [f"| {p['part']} | {p['from']} | {p['to']} | {p['rows']} |" for p in periods]
    return [*lines, ""]


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
    classes: list[Any] | None = None,
    importance_title: str = "Feature importance (total gain)",
) -> list[Path]:
    """The report's plots as PNG files beside it.

    Regression: predicted vs actual and residuals. Classification: ROC and precision-recall,
    and a reliability diagram. Multiclass (`classes` named in code order): the confusion
    matrix and one reliability diagram per class. All: feature importance.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if task == TaskType.MULTICLASS_CLASSIFICATION:
        written += _multiclass_plots(folder, y, predicted, list(classes or ()), plt)
        written.append(_importance(folder, importance, plt, importance_title))
        return written
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
    written.append(_importance(folder, importance, plt, importance_title))
    return written


def _importance(folder: Path, importance: dict[str, float], plt: Any, title: str) -> Path:
    figure, axis = plt.subplots(figsize=(7, 0.35 * max(len(importance), 4) + 1))
    ordered = sorted(importance.items(), key=lambda item: item[1])
    axis.barh([k for k, _ in ordered], [v for _, v in ordered], color="#4c72b0")
    axis.set_title(title)
    figure.tight_layout()
    return _save(figure, folder / "feature_importance.png", plt)


def _multiclass_plots(
    folder: Path, y: np.ndarray, probabilities: np.ndarray, classes: list[Any], plt: Any
) -> list[Path]:
    """The confusion matrix, and each class's reliability diagram (that class against the rest)."""
    from sklearn.metrics import confusion_matrix

    codes = np.asarray(y, dtype=np.int64)
    names = [str(c) for c in classes]
    counts = confusion_matrix(codes, probabilities.argmax(axis=1), labels=range(len(names)))
    size = 1.0 + 0.8 * len(names)
    figure, axis = plt.subplots(figsize=(size + 1.5, size))
    image = axis.imshow(counts, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        dark = count > counts.max() / 2
        axis.text(
            column, row, f"{count:,}", ha="center", va="center", color="white" if dark else "black"
        )
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    axis.set(title="Confusion matrix (rows: actual)", xlabel="predicted class", ylabel="actual")
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    written = [_save(figure, folder / "confusion_matrix.png", plt)]
    figure, axes = plt.subplots(
        2,
        len(names),
        figsize=(3.6 * len(names), 5.5),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1]},
    )
    for k, name in enumerate(names):
        _calibration(axes[:, k], (codes == k).astype(int), probabilities[:, k])
        axes[0, k].set(title=f"Calibration of class {name}", ylabel=f"observed share of {name}")
    figure.tight_layout()
    written.append(_save(figure, folder / "calibration_per_class.png", plt))
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
