"""Evaluating a candidate: its estimate and uncertainty, the baselines, the champion, the decision.

Everything is computed on the rows the candidate was evaluated on (its saved evaluation
frame), so candidate, baselines and champion are judged on the same rows. Only the champion's
predictions need more than those rows (its model, or its settings trained again on the same
folds); the rest are plain functions, so the `validation_report` asset only loads, calls these
and records the result.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.core.candidates import Rows, cross_validate, with_rounds
from mlops_assets.core.evaluation import (
    Comparison,
    Decision,
    compute_metrics,
    decide,
    slice_metrics,
)
from mlops_assets.core.families import BoosterModel, Model, load_model_file
from mlops_assets.core.features import label_values, to_matrix
from mlops_assets.core.protocols import Folds, Plan, as_event_times, backtest_folds
from mlops_assets.core.report import ReportInputs, render_markdown, render_plots
from mlops_assets.core.storage import write_json_atomic
from mlops_assets.core.training import TrainParams
from mlops_assets.core.uncertainty import bootstrap_interval, fold_spread, paired_improvement
from mlops_assets.model_registry.champion import ChampionInfo
from mlops_assets.model_registry.model_store import ModelManifest, load_manifest, load_model
from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import DatasetSpec, Family, Protocol
from mlops_assets.training.candidate import BASELINE, CANDIDATE, predictions_of
from mlops_assets.training.federated import FEDERATED

Metrics = dict[str, dict[str, float]]  # row label -> metric -> value


class ChampionNotComparable(ValueError):
    """The champion cannot be scored on the candidate's rows; the message says what is missing."""


@dataclass(frozen=True)
class Validation:
    """What the report says about one candidate."""

    metrics: Metrics  # "model", "candidate <family>", baselines, "champion v<N>"
    estimate: dict[str, Any]
    decision: Decision
    y: np.ndarray
    predicted: np.ndarray


@dataclass(frozen=True)
class ChampionSource:
    """Where the champion's predictions come from: the registry's facts and the local copies."""

    champion: ChampionInfo
    paths: PlatformPaths
    client: Any  # an MlflowClient, for a champion with no local copy


def evaluate_candidate(
    manifest: ModelManifest,
    evaluation: pd.DataFrame,
    table: pd.DataFrame,
    spec: DatasetSpec,
    champion: ChampionSource | None,
) -> Validation:
    """Metrics, estimate, champion comparison and decision of the candidate `manifest` names."""
    y, folds = evaluation["y"].to_numpy(), evaluation["fold"].to_numpy()
    predicted = predictions_of(evaluation, CANDIDATE + manifest.family)
    metrics, baselines = candidate_metrics(evaluation, manifest.family, spec)
    estimate = estimate_of(y, predicted, folds, spec, manifest)
    comparison = None
    if champion is not None and champion.champion.run_id != manifest.model_id:
        predictions = champion_predictions(champion, table, evaluation, spec, estimate)
        comparison = compare_with_champion(
            champion.champion.version, predictions, evaluation, spec, estimate
        )
        metrics[f"champion v{comparison.version}"] = comparison.champion
    decision = decide(
        metrics["model"], spec, baselines=gate_baselines(metrics, baselines), champion=comparison
    )
    return Validation(metrics, estimate, decision, y, predicted)


def is_federated(manifest: ModelManifest) -> bool:
    """Whether the sites trained and scored this model (no evaluation rows are held here)."""
    return manifest.evaluation.get("protocol") == FEDERATED


def evaluate_federated(
    manifest: ModelManifest,
    record: dict[str, Any],
    spec: DatasetSpec,
    champion: ChampionInfo | None,
) -> Validation:
    """The decision on a federated model from the sites' metrics, pooled over their test rows.

    The gates, the baseline and the champion comparison read the pooled metrics (from the
    sites' sums: RMSE, MAE, R² and log loss exactly). The champion was scored by the sites when
    the model was trained; if another champion has been promoted since, the comparison would
    not be on the same model, so the report refuses and asks for the model step again.
    """
    scored = record.get("champion")
    current = champion if champion is not None and champion.run_id != manifest.model_id else None
    if current is not None and (scored is None or scored["run_id"] != current.run_id):
        raise ChampionNotComparable(
            f"the champion is v{current.version} but the sites scored "
            f"{'no champion' if scored is None else 'v' + str(scored['version'])} when this "
            "model was trained: materialize model again so they score the current one"
        )
    metrics: Metrics = {"model": record["pooled"]}
    baselines = {record["baseline"]: record["pooled_baseline"]}
    metrics.update(baselines)
    comparison = None
    if current is not None:
        comparison = Comparison(record["pooled_champion"], current.version, None)
        metrics[f"champion v{current.version}"] = comparison.champion
    for site, facts in record["sites"].items():
        metrics[f"model at site {site}"] = facts["metrics"]
        if current is not None:
            metrics[f"champion v{current.version} at site {site}"] = facts["champion_metrics"]
    primary = spec.gates.primary_metric
    estimate = {
        **manifest.evaluation,
        "family": manifest.family,
        "primary_metric": primary,
        "value": record["pooled"].get(primary),
    }
    decision = decide(record["pooled"], spec, baselines=baselines, champion=comparison)
    return Validation(metrics, estimate, decision, np.empty(0), np.empty(0))


def save_report(
    folder: Path,
    validation: Validation,
    manifest: ModelManifest,
    rows: pd.DataFrame,
    importance: dict[str, float],
    spec: DatasetSpec,
    importance_title: str = "Feature importance (total gain)",
) -> tuple[str, list[Path]]:
    """Write the report (Markdown, plots, `decision.json`) into the model's report folder.

    Returns the Markdown for the Dagster UI, with the plots inline, and the plots' paths.

    `rows` are the training-table rows the candidate was evaluated on, for per-slice metrics.
    """
    y, predicted = validation.y, validation.predicted
    held_here = len(y) > 0  # a federated model's rows stay at the sites: no plots, no slices
    folder.mkdir(parents=True, exist_ok=True)
    plots = (
        render_plots(folder, y, predicted, importance, spec.task, spec.classes, importance_title)
        if held_here
        else []
    )
    report = ReportInputs(
        spec=spec,
        model_id=manifest.model_id,
        mlflow_run_id=manifest.mlflow_run_id,
        data_hash=manifest.data_hash,
        test_rows=len(rows),
        metrics=validation.metrics,
        decision=validation.decision,
        slices=slice_metrics(rows, y, predicted, spec) if held_here else {},
        plots=[str(p) for p in plots],
        estimate=validation.estimate,
    )
    (folder / "validation_report.md").write_text(render_markdown(report))
    record = {
        "model_id": manifest.model_id,
        "metrics": validation.metrics,
        "estimate": validation.estimate,
        "decision": validation.decision.to_dict(),
    }
    write_json_atomic(record, folder / "decision.json")
    return render_markdown(report, embed_plots=True), plots  # the UI's copy: plots inline


def candidate_metrics(
    evaluation: pd.DataFrame, family: str, spec: DatasetSpec
) -> tuple[Metrics, Metrics]:
    """(every row's metrics with the winner as "model", the baselines' alone)."""
    y = evaluation["y"].to_numpy()

    def score(column: str) -> dict[str, float]:
        return compute_metrics(y, predictions_of(evaluation, column), spec.task, spec.threshold)

    metrics = {"model": score(CANDIDATE + family)}
    for column in evaluation.columns:
        if column.startswith(CANDIDATE) and column != CANDIDATE + family:
            metrics[f"candidate {column.removeprefix(CANDIDATE)}"] = score(column)
    baselines = {
        c.removeprefix(BASELINE): score(c) for c in evaluation.columns if c.startswith(BASELINE)
    }
    naive = baselines.get("seasonal_naive", {}).get("mae")
    if naive:  # MASE: the mean absolute error as a share of seasonal naive's on the same rows
        for row in (*metrics.values(), *baselines.values()):
            row["mase"] = row["mae"] / naive
    return {**metrics, **baselines}, baselines


def gate_baselines(metrics: Metrics, baselines: Metrics) -> Metrics:
    """The baselines a challenger must beat: the constant one, and the linear model.

    A linear candidate that lost the ranking is still a baseline on the estimate's rows: on a
    holdout the ranking used the validation split, and the test split may disagree.
    """
    linear = metrics.get(f"candidate {Family.LINEAR}")
    return {**baselines, "linear": linear} if linear is not None else dict(baselines)


def estimate_of(
    y: np.ndarray,
    predicted: np.ndarray,
    folds: np.ndarray,
    spec: DatasetSpec,
    manifest: ModelManifest,
) -> dict[str, Any]:
    """How the estimate was obtained and how sure it is."""
    facts = manifest.evaluation
    settings = spec.training
    primary = spec.gates.primary_metric
    interval = bootstrap_interval(
        y,
        predicted,
        primary,
        spec.task,
        settings.bootstrap_resamples,
        settings.confidence,
        int(facts.get("seed", settings.seed)),
        spec.threshold,
    )
    result = {
        **facts,
        "family": manifest.family,
        "primary_metric": primary,
        "value": interval.value,
        "interval": [interval.low, interval.high],
        "confidence": interval.level,
        "intervals": gated_intervals(y, predicted, spec, int(facts.get("seed", settings.seed))),
    }
    if Protocol(facts.get("protocol", Protocol.HOLDOUT)).folded:
        mean, spread = fold_spread(y, predicted, folds, primary, spec.task, spec.threshold)
        result.update(fold_mean=mean, fold_std=spread)
    return result


def gated_intervals(
    y: np.ndarray, predicted: np.ndarray, spec: DatasetSpec, seed: int
) -> dict[str, list[float]]:
    """The bootstrap interval of every metric a gate reads, beside the primary one's."""
    settings = spec.training
    names = {spec.gates.primary_metric} | {rule.metric for rule in spec.gates.rules}
    result = {}
    for name in sorted(names):
        interval = bootstrap_interval(
            y,
            predicted,
            name,
            spec.task,
            settings.bootstrap_resamples,
            settings.confidence,
            seed,
            spec.threshold,
        )
        result[name] = [interval.low, interval.high]
    return result


def compare_with_champion(
    version: str,
    predictions: np.ndarray,
    evaluation: pd.DataFrame,
    spec: DatasetSpec,
    estimate: dict[str, Any],
) -> Comparison:
    """The champion's metrics on the candidate's rows, and the paired improvement on them.

    Whatever the protocol: on a holdout of a few thousand rows a gain of a percent is still
    within the noise of which rows happened to be tested.
    """
    y = evaluation["y"].to_numpy()
    metrics = compute_metrics(y, predictions, spec.task, spec.threshold)
    mine = predictions_of(evaluation, CANDIDATE + estimate["family"])
    interval = paired_improvement(
        y,
        mine,
        predictions,
        spec.gates.primary_metric,
        spec.task,
        spec.training.bootstrap_resamples,
        spec.training.confidence,
        int(estimate.get("seed", spec.training.seed)),
        spec.threshold,
    )
    return Comparison(metrics, version, (interval.low, interval.high))


def champion_predictions(
    source: ChampionSource,
    table: pd.DataFrame,
    evaluation: pd.DataFrame,
    spec: DatasetSpec,
    estimate: dict[str, Any],
) -> np.ndarray:
    """What the champion gives on the same rows.

    Cross-validation and backtest: the champion's settings trained again on the same folds,
    so both are judged out-of-fold (its served model saw these rows). Holdout and latest
    period: the champion model itself on the test rows. A champion whose settings cannot be
    re-run here (no local copy, or other features) is scored with its model, which favours
    it: it can only make promotion harder.
    """
    champion, paths = source.champion, source.paths
    local = paths.model(champion.run_id)
    manifest = load_manifest(paths, champion.run_id) if local.exists() else None
    folded = Protocol(estimate.get("protocol", Protocol.HOLDOUT)).folded
    if folded and manifest is not None and manifest.features == spec.model_features:
        return _refit_out_of_fold(manifest, table, evaluation, spec, estimate)
    features = manifest.features if manifest else list(spec.model_features)
    missing = [f for f in features if f not in table.columns]
    if missing:
        raise ChampionNotComparable(
            f"champion needs features {missing} that the training set lacks"
        )
    rows = table.iloc[evaluation["row"].to_numpy()]
    model = _champion_model(source, spec, manifest)
    return model.predict(to_matrix(rows, spec, columns=features))


def _refit_out_of_fold(
    manifest: ModelManifest,
    table: pd.DataFrame,
    evaluation: pd.DataFrame,
    spec: DatasetSpec,
    estimate: dict[str, Any],
) -> np.ndarray:
    """The champion's settings trained again on the candidate's folds, judged on its rows."""
    times = as_event_times(table[spec.event_timestamp]) if spec.has_event_time else None
    rows = Rows(
        to_matrix(table, spec),
        label_values(table[spec.target], spec),
        table[spec.entity_key].to_numpy(),
        times,
    )
    protocol = Protocol(estimate["protocol"])
    settings = spec.training.model_copy(
        update={
            "seed": int(estimate.get("seed", spec.training.seed)),
            "search_trials": 0,
            "folds": int(estimate.get("folds") or spec.training.folds),
            "horizon": estimate.get("horizon", spec.training.horizon),
            "unseen_entities": bool(estimate.get("unseen_entities", False)),
        }
    )
    plan = Plan(protocol, settings, "champion re-evaluated", "")
    folds = _same_folds(rows, evaluation, spec, plan)
    params = with_rounds(TrainParams(), manifest.params)
    refit = cross_validate(manifest.family, rows, folds, spec, plan, params, search=False)
    return refit.predictions


def _same_folds(rows: Rows, evaluation: pd.DataFrame, spec: DatasetSpec, plan: Plan) -> Folds:
    """The candidate's folds: read from its evaluation rows, or rebuilt from the event times.

    A backtest's folds also say which earlier rows each fold trained on; they are a pure
    function of the event times and settings, and must judge exactly the candidate's rows.
    """
    if plan.protocol == Protocol.CROSS_VALIDATION:
        assignment = np.full(len(rows.y), -1, dtype=np.int64)
        assignment[evaluation["row"].to_numpy()] = evaluation["fold"].to_numpy()
        return Folds(assignment)
    assert rows.times is not None
    folds = backtest_folds(rows.times, rows.y, rows.groups, spec, plan)
    if not np.array_equal(folds.judged, evaluation["row"].to_numpy()):
        raise ChampionNotComparable(
            "the backtest's folds differ from the candidate's: materialize model again"
        )
    return folds


def _champion_model(
    source: ChampionSource, spec: DatasetSpec, manifest: ModelManifest | None
) -> Model:
    champion = source.champion
    if manifest is not None:
        return load_model(source.paths, champion.run_id)
    if champion.tags.get("family") == Family.LINEAR:
        with tempfile.TemporaryDirectory() as folder:
            source.client.download_artifacts(champion.run_id, "model", folder)
            return load_model_file(Path(folder) / "model", Family.LINEAR)
    import mlflow

    return BoosterModel(mlflow.xgboost.load_model(f"models:/{spec.name}@champion"))
