"""Training a candidate: the rows and protocol in force, the competition, the model's manifest.

Plain functions of the training table and the spec, so the `model` asset only loads its
inputs, calls these, and records what they return. A refusal (bad run config, labels that
cannot train a model) is a `TrainingRefused` whose message names the setting to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from mlops_assets.core.candidates import Competition, Rows, compete
from mlops_assets.core.families import MODEL_FILES, family_of
from mlops_assets.core.features import feature_types, label_values, to_matrix
from mlops_assets.core.protocols import (
    Folds,
    Plan,
    TrainingDataError,
    as_event_times,
    assign_folds,
    backtest_folds,
    check_holdout,
    check_labels,
    event_day,
    plan_for,
    resolve_settings,
)
from mlops_assets.core.splits import (
    ENTITY_HASH,
    LATEST_PERIOD,
    SPLIT_COLUMN,
    SPLITS,
    entity_split,
    time_split,
)
from mlops_assets.core.training import Fit, TrainParams
from mlops_assets.model_registry.model_store import ModelManifest
from mlops_assets.progress import Progress, silent
from mlops_assets.spec import DatasetSpec, Protocol

CANDIDATE, BASELINE = "candidate:", "baseline:"  # column prefixes of the evaluation rows


class TrainingRefused(ValueError):
    """No model is trained on this data or config; the message says why and what to change."""


@dataclass(frozen=True)
class Prepared:
    """The labelled rows, the protocol in force, and each row's fold or split."""

    plan: Plan
    rows: Rows
    layout: dict[str, Any]  # {"folds": Folds} for folded protocols, else {"split": labels}


@dataclass(frozen=True)
class TrainingFacts:
    """Where a candidate came from, beyond the competition itself."""

    run_id: str  # the MLflow run, which is also the model's id
    model_uri: str
    data_hash: str
    code_version: str
    feature_service: str
    imputation: dict[str, Any]


def prepare(
    table: pd.DataFrame,
    spec: DatasetSpec,
    overrides: dict[str, Any],
    spec_path: Path,
    split_method: str = ENTITY_HASH,
) -> Prepared:
    """Settings in force (spec, then this run's overrides), the rows, and their folds or split.

    `split_method` says how the training set's stored split was made; a protocol that needs
    the other kind of split computes it here from the keys or event times (both are pure
    functions of the table).
    """
    try:
        settings = resolve_settings(spec, overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"training.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise TrainingRefused(f"invalid run config: {problems}") from exc
    event_time = spec.event_timestamp_column
    try:
        plan = plan_for(len(table), settings, spec_path, event_time)
        y = label_values(table[spec.target], spec)
        times = as_event_times(table[spec.event_timestamp]) if event_time else None
        rows = Rows(to_matrix(table, spec), y, table[spec.entity_key].to_numpy(), times)
        check_labels(y, spec, plan)
        if plan.protocol == Protocol.CROSS_VALIDATION:
            folds = Folds(assign_folds(y, rows.groups, spec, plan))
            return Prepared(plan, rows, {"folds": folds})
        if plan.protocol == Protocol.BACKTEST:
            assert times is not None
            return Prepared(
                plan, rows, {"folds": backtest_folds(times, y, rows.groups, spec, plan)}
            )
        split = _split(table, rows, plan, split_method)
        check_holdout({n: y[split == n] for n in SPLITS}, spec, plan)
        return Prepared(plan, rows, {"split": split})
    except TrainingDataError as exc:
        raise TrainingRefused(f"training refused: {exc}") from exc


def _split(table: pd.DataFrame, rows: Rows, plan: Plan, stored_method: str) -> np.ndarray:
    """The stored split when it is the kind the protocol needs, else that kind made here."""
    wanted = LATEST_PERIOD if plan.protocol == Protocol.LATEST_PERIOD else ENTITY_HASH
    if stored_method == wanted and SPLIT_COLUMN in table.columns:
        return table[SPLIT_COLUMN].to_numpy()
    fractions = plan.settings.split.as_tuple()
    if wanted == ENTITY_HASH:
        return entity_split(rows.groups, fractions)
    assert rows.times is not None
    gap = int(plan.settings.gap.total_seconds() * 1e9)
    keys = rows.groups if plan.settings.unseen_entities else None
    return time_split(rows.times, fractions, gap, keys)


def train_candidate(
    prepared: Prepared,
    spec: DatasetSpec,
    params: TrainParams,
    progress: Progress = silent,
    fit: Fit | None = None,
) -> Competition:
    """Every candidate family on the same rows; the best is the challenger."""
    return compete(
        prepared.rows, spec, prepared.plan, params, progress=progress, fit=fit, **prepared.layout
    )


def lineage_fields(spec: DatasetSpec, facts: TrainingFacts) -> dict[str, Any]:
    """The manifest fields of every model, however it was trained: its spec, inputs and lineage."""
    return {
        "model_id": facts.run_id,
        "mlflow_run_id": facts.run_id,
        "mlflow_model_uri": facts.model_uri,
        "dataset": spec.name,
        "spec_version": spec.version,
        "task": str(spec.task),
        "target": spec.target,
        "features": list(spec.model_features),
        "feature_types": feature_types(spec),
        "categories": {c: list(spec.column(c).categories or ()) for c in spec.categorical_columns},
        "feature_service": facts.feature_service,
        "data_hash": facts.data_hash,
        "code_version": facts.code_version,
    }


def build_manifest(
    spec: DatasetSpec, prepared: Prepared, competition: Competition, facts: TrainingFacts
) -> ModelManifest:
    """The challenger's lineage and facts, as saved beside it and read by every later stage."""
    challenger = competition.challenger
    return ModelManifest(
        **lineage_fields(spec, facts),
        params=challenger.settings,
        validation_score=challenger.score,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        family=str(challenger.family),
        model_file=MODEL_FILES[family_of(challenger.model)],
        evaluation=evaluation_facts(prepared, competition),
        candidates={
            n: {"score": c.score, "settings": c.settings} for n, c in competition.candidates.items()
        },
        imputation=facts.imputation,
    )


def evaluation_facts(prepared: Prepared, competition: Competition) -> dict[str, Any]:
    """How the candidate was evaluated: protocol, why, folds, rows, seed, winner."""
    plan = prepared.plan
    facts: dict[str, Any] = {
        "protocol": str(plan.protocol),
        "why": plan.why,
        "folds": plan.settings.folds if plan.protocol.folded else None,
        "rows": len(prepared.rows.y),
        "evaluation_rows": len(competition.rows),
        "seed": plan.settings.seed,
        "winner": competition.winner,
    }
    if plan.protocol.in_time:
        facts["horizon"] = plan.settings.horizon
        facts["unseen_entities"] = plan.settings.unseen_entities
        facts["periods"] = time_windows(prepared)
    return facts


def time_windows(prepared: Prepared) -> list[dict[str, str]]:
    """Each fold's (or the split's) training and judged time ranges, for the report."""
    folds = prepared.layout.get("folds")
    if folds is not None:
        return [{"fold": str(n + 1), **w} for n, w in enumerate(folds.windows)]
    times, split = prepared.rows.times, prepared.layout["split"]
    assert times is not None
    result = []
    for name in SPLITS:
        chosen = times[split == name]
        if len(chosen):
            result.append(
                {
                    "part": name,
                    "from": event_day(chosen.min()),
                    "to": event_day(chosen.max()),
                    "rows": str(len(chosen)),
                }
            )
    return result


def evaluation_frame(competition: Competition) -> pd.DataFrame:
    """One row per evaluation row: position, fold, label, each candidate's and baseline's value."""
    columns: dict[str, Any] = {
        "row": competition.rows,
        "fold": competition.folds,
        "y": competition.y,
    }
    for name, candidate in competition.candidates.items():
        columns[CANDIDATE + name] = _column(candidate.predictions)
    for name, values in competition.baselines.items():
        columns[BASELINE + name] = _column(values)
    return pd.DataFrame(columns)


def _column(predictions: np.ndarray) -> Any:
    """A column of values, or of a multiclass row's probabilities (a list per row in Parquet)."""
    return list(predictions) if predictions.ndim == 2 else predictions


def predictions_of(evaluation: pd.DataFrame, column: str) -> np.ndarray:
    """A prediction column as written by `evaluation_frame`: values, or an (n, k) matrix."""
    values = evaluation[column].to_numpy()
    if values.dtype != object:
        return values
    if not len(values):
        return np.empty((0, 0))
    return np.stack([np.asarray(v, dtype=np.float64) for v in values])
