"""Monitoring: drift of data and traffic, live performance from later labels, live decision."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from mlops_assets.asset_checks import check_specs, to_check_result
from mlops_assets.core.drift import (
    ClassMixDrift,
    DriftResult,
    DriftThresholds,
    class_mix_drift,
    detect_drift,
)
from mlops_assets.core.live_evidence import LiveEvidence, gather_evidence
from mlops_assets.core.live_performance import join_labels, live_metrics, live_verdict
from mlops_assets.core.markdown_images import image_markdown
from mlops_assets.core.quality import CheckOutcome, Severity
from mlops_assets.handoff import upstream_metadata
from mlops_assets.model_registry.audit import acting_as
from mlops_assets.model_registry.champion import ChampionInfo, ChampionRegistry
from mlops_assets.model_registry.rollout import RolloutError, read_rollout
from mlops_assets.model_registry.tracking import MlflowTracking
from mlops_assets.monitoring.decision import decide_live
from mlops_assets.monitoring.inputs import (
    logged_classes,
    logged_inputs,
    monitored_columns,
    newest_batch,
    reference_classes,
    reference_statistics,
)
from mlops_assets.monitoring.live import keyed_predictions, known_labels
from mlops_assets.monitoring.push import push_drift
from mlops_assets.paths import PlatformPaths
from mlops_assets.resources import DatasetSpecResource, MetricsPush, MlopsHome
from mlops_assets.spec import DatasetSpec

DRIFT_CHECKS = {
    "drift_below_threshold": "The newest batch has not drifted from the champion's data."
}


class DriftConfig(dg.Config):
    """Thresholds (see `mlops_assets/core/drift.py` for the conventions behind them)."""

    batch: str = Field(default="", description="Batch to check (default: the newest).")
    psi: float = Field(default=0.2, gt=0, description="PSI above which a column drifted.")
    wasserstein: float = Field(default=0.25, gt=0, description="Normalised W1 for a column.")
    drifted_share: float = Field(default=0.3, gt=0, le=1, description="Share of drifted columns.")
    min_live_rows: int = Field(default=200, ge=1, description="Live traffic needed to judge it.")


@dg.asset(
    group_name="monitoring",
    deps=["cleaned_data", "promoted_model"],
    kinds={"pandas", "markdown"},
    check_specs=check_specs("drift_report", DRIFT_CHECKS, set()),
)
def drift_report(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    dataset: DatasetSpecResource,
    home: MlopsHome,
    metrics_push: MetricsPush,
    mlflow_tracking: MlflowTracking,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """PSI and Wasserstein drift of the newest batch and of live traffic, per column."""
    spec, paths = dataset.load(), home.paths()
    thresholds = DriftThresholds(config.psi, config.wasserstein, config.drifted_share)
    champion = ChampionRegistry(mlflow_tracking.client(), spec.name, paths).reconcile()
    try:
        reference, source = reference_statistics(paths, champion.run_id if champion else None)
        batch, frame = newest_batch(paths, config.batch)
    except FileNotFoundError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    batch_drift = detect_drift(reference, monitored_columns(frame, spec), thresholds)
    live = logged_inputs(paths, spec)
    live_drift = (
        detect_drift(reference, monitored_columns(live, spec), thresholds)
        if len(live) >= config.min_live_rows
        else None
    )
    mix = _class_mix(paths, spec, champion.run_id if champion else None, config)
    folder = paths.drift_reports
    plot = _plot(folder / f"drift-{batch}.png", batch_drift, live_drift)
    markdown = _markdown(batch, source, batch_drift, live_drift, len(live)) + _mix_markdown(mix)
    (folder / f"drift-{batch}.md").write_text(
        markdown + "\n## Plot\n\n" + image_markdown(plot, embed=False) + "\n"
    )
    drifted = [c.column for c in batch_drift.columns if c.drifted]
    reason = (
        f"batch {batch}: {len(drifted)} of {len(batch_drift.columns)} columns drifted {drifted}"
    )
    outcome = CheckOutcome(
        "drift_below_threshold",
        not batch_drift.drifted,
        Severity.WARN,
        reason,
        {"drifted_share": round(batch_drift.drifted_share, 4)},
    )
    pushed = _push(context, metrics_push.url(), spec.name, batch_drift, live_drift)
    yield dg.MaterializeResult(
        metadata={
            "pushed_to": pushed,
            "report": dg.MetadataValue.md(
                markdown + "\n## Plot\n\n" + image_markdown(plot, embed=True) + "\n"
            ),
            "batch": batch,
            "drifted": batch_drift.drifted,
            "reason": reason,
            "drifted_share": round(batch_drift.drifted_share, 4),
            "live_rows": len(live),
            "live_drifted": bool(live_drift and live_drift.drifted),
            "predicted_class_mix": dg.MetadataValue.json(mix.to_dict() if mix else {}),
            "reference": source,
            "plot": dg.MetadataValue.path(str(plot)),
        },
        check_results=[to_check_result(outcome)],
    )


def _class_mix(
    paths: PlatformPaths, spec: DatasetSpec, champion_run_id: str | None, config: DriftConfig
) -> ClassMixDrift | None:
    """A multiclass champion's predicted class mix, live against its evaluation rows."""
    if not spec.task.is_multiclass:
        return None
    reference = reference_classes(paths, champion_run_id)
    live = logged_classes(paths)
    if reference is None or len(live) < config.min_live_rows:
        return None
    return class_mix_drift([str(c) for c in spec.classes], reference, live, config.psi)


def _mix_markdown(mix: ClassMixDrift | None) -> str:
    if mix is None:
        return ""
    rows = [
        f"| {name} | {ref:.3f} | {live:.3f} |"
        for name, ref, live in zip(mix.classes, mix.reference, mix.live, strict=True)
    ]
    verdict = "DRIFTED" if mix.drifted else "no drift"
    return "\n".join(
        [
            "",
            "## Predicted class mix (live answers against the champion's evaluation rows)",
            "",
            f"{mix.rows} answered rows: **{verdict}** (PSI {mix.psi:.3f}).",
            "",
            "| class | reference share | live share |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )


def _push(
    context: dg.AssetExecutionContext,
    url: str,
    dataset: str,
    batch: DriftResult,
    live: DriftResult | None,
) -> str:
    """Push the verdict when a Pushgateway is set; an unreachable one only warns.

    The report on disk and in Dagster is the record; the push feeds alerts, so a monitoring
    outage must not fail the report.
    """
    if not url:
        return "off (set MLOPS_PUSHGATEWAY_URL)"
    try:
        push_drift(url, dataset, batch, live)
    except OSError as exc:
        context.log.warning(f"drift verdict not pushed to {url}: {exc}")
        return f"failed: {url} ({type(exc).__name__})"
    return url


def _markdown(
    batch: str, source: str, drift: DriftResult, live: DriftResult | None, live_rows: int
) -> str:
    lines = [
        f"# Drift of batch `{batch}`",
        "",
        f"Reference: {source}. Verdict: **{'DRIFTED' if drift.drifted else 'no drift'}** "
        f"({drift.drifted_share:.0%} of columns drifted; "
        f"threshold {drift.thresholds.drifted_share:.0%}).",
        "",
        _table(drift),
        "",
        "## Live traffic (prediction log)",
        "",
    ]
    if live is None:
        lines.append(f"{live_rows} logged rows: too few to judge.")
    else:
        lines += [
            f"{live_rows} logged rows: **{'DRIFTED' if live.drifted else 'no drift'}**.",
            "",
            _table(live),
        ]
    return "\n".join(lines) + "\n"


def _table(drift: DriftResult) -> str:
    rows = ["| column | kind | PSI | Wasserstein (sd) | drifted |", "|---|---|---|---|---|"]
    for c in drift.columns:
        distance = "-" if c.wasserstein is None else f"{c.wasserstein:.3f}"
        rows.append(
            f"| {c.column} | {c.kind} | {c.psi:.3f} | {distance} | {'yes' if c.drifted else 'no'} |"
        )
    return "\n".join(rows)


def _plot(path: Path, drift: DriftResult, live: DriftResult | None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(8, 4))
    names = [c.column for c in drift.columns]
    positions = range(len(names))
    axis.bar([p - 0.2 for p in positions], [c.psi for c in drift.columns], width=0.4, label="batch")
    if live is not None:
        by_name = {c.column: c.psi for c in live.columns}
        heights = [by_name.get(name, 0.0) for name in names]
        axis.bar([p + 0.2 for p in positions], heights, width=0.4, label="live")
    axis.axhline(drift.thresholds.psi, color="red", linewidth=1, linestyle="--", label="threshold")
    axis.set_xticks(list(positions), names, rotation=30, ha="right")
    axis.set(title="PSI per column", ylabel="PSI")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


LIVE_CHECKS = {
    "live_gate_holds": "The champion meets the spec's live gate on labels that arrived later."
}


@dg.asset(
    group_name="monitoring",
    deps=["cleaned_data", "promoted_model"],
    kinds={"pandas", "markdown"},
    check_specs=check_specs("live_performance", LIVE_CHECKS, set()),
)
def live_performance(
    context: dg.AssetExecutionContext,
    dataset: DatasetSpecResource,
    home: MlopsHome,
    mlflow_tracking: MlflowTracking,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The live metric per model version and day, from predictions judged by later labels."""
    spec, paths = dataset.load(), home.paths()
    champion = ChampionRegistry(mlflow_tracking.client(), spec.name, paths).reconcile()
    logged = keyed_predictions(paths, spec)
    joined = join_labels(logged.frame, known_labels(paths, spec))
    metric = spec.gates.primary_metric
    table = live_metrics(joined.matched, spec.task, metric)
    verdict = live_verdict(table, spec, champion.version if champion else None)
    context.log.info(verdict.reason)
    evidence = _challenger_evidence(paths, joined.matched, champion, spec)
    yield dg.MaterializeResult(
        metadata={
            "judged": len(joined.matched),
            "pending_predictions": joined.pending_predictions,
            "unmatched_labels": joined.unmatched_labels,
            "predictions_without_key": logged.unkeyed,
            "unreadable_log_lines": logged.unreadable,
            "metric": metric,
            "champion_version": verdict.version or "",
            "champion_live_metric": verdict.value,
            "champion_live_rows": verdict.rows,
            "below_gate": verdict.below_gate,
            "reason": verdict.reason,
            "by_version_and_day": dg.MetadataValue.md(table.to_markdown(index=False)),
            "challenger_evidence": dg.MetadataValue.json(evidence.as_record() if evidence else {}),
        }
    )
    outcome = CheckOutcome(
        "live_gate_holds", not verdict.below_gate, Severity.WARN, verdict.reason, {}
    )
    yield to_check_result(outcome)


def _challenger_evidence(
    paths: PlatformPaths, matched: pd.DataFrame, champion: ChampionInfo | None, spec: DatasetSpec
) -> LiveEvidence | None:
    """The staged challenger against the champion on comparable labels (None: none staged)."""
    try:
        rollout = read_rollout(paths.rollout)
    except RolloutError:
        return None  # the report stands; live_decision fails with the file's problem named
    staged = rollout.challenger_version
    if rollout.mode == "champion" or not staged or champion is None:
        return None
    if staged == champion.version:
        return None
    return gather_evidence(matched, champion.version, staged, spec.task, spec.gates.primary_metric)


@dg.asset(group_name="monitoring", deps=[live_performance], kinds={"mlflow"})
def live_decision(
    context: dg.AssetExecutionContext,
    dataset: DatasetSpecResource,
    home: MlopsHome,
    mlflow_tracking: MlflowTracking,
) -> dg.MaterializeResult:
    """The staged challenger promoted, rejected or left waiting, on its live evidence."""
    spec, paths = dataset.load(), home.paths()
    registry = ChampionRegistry(mlflow_tracking.client(), spec.name, paths)
    evidence = upstream_metadata(context, "live_performance").get("challenger_evidence") or {}
    with acting_as(f"dagster run {context.run.run_id} (live_decision)"):
        outcome = decide_live(registry, paths, dataset.resolved_path(), spec, evidence)
    context.log.info(f"live decision: {outcome.action}: {outcome.reason}")
    return dg.MaterializeResult(
        metadata={
            "decision": outcome.action,
            "reason": outcome.reason,
            "challenger_version": outcome.challenger or "",
            "champion_version": outcome.champion or "",
            "evidence": dg.MetadataValue.json(evidence),
            "policy": spec.promotion.policy.value,
            "min_live_labels": spec.promotion.min_live_labels,
        }
    )
