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
    Plan,
    TrainingDataError,
    assign_folds,
    check_holdout,
    check_labels,
    plan_for,
    resolve_settings,
)
from mlops_assets.core.splits import SPLIT_COLUMN
from mlops_assets.core.training import Fit, TrainParams
from mlops_assets.progress import Progress, silent
from mlops_assets.spec import DatasetSpec, Protocol
from mlops_assets.training.model_store import ModelManifest

CANDIDATE, BASELINE = "candidate:", "baseline:"  # column prefixes of the evaluation rows


class TrainingRefused(ValueError):
    """No model is trained on this data or config; the message says why and what to change."""


@dataclass(frozen=True)
class Prepared:
    """The labelled rows, the protocol in force, and each row's fold or split."""

    plan: Plan
    rows: Rows
    layout: dict[str, np.ndarray]  # {"folds": ...} for cross-validation, else {"split": ...}


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
    table: pd.DataFrame, spec: DatasetSpec, overrides: dict[str, Any], spec_path: Path
) -> Prepared:
    """Settings in force (spec, then this run's overrides), the rows, and their folds or split."""
    try:
        settings = resolve_settings(spec, overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"training.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise TrainingRefused(f"invalid run config: {problems}") from exc
    plan = plan_for(len(table), settings, spec_path)
    y = label_values(table[spec.target], spec)
    rows = Rows(to_matrix(table, spec), y, table[spec.entity_key].to_numpy())
    try:
        check_labels(y, spec, plan)
        if plan.protocol == Protocol.CROSS_VALIDATION:
            return Prepared(plan, rows, {"folds": assign_folds(y, rows.groups, spec, plan)})
        split = table[SPLIT_COLUMN].to_numpy()
        check_holdout({n: y[split == n] for n in ("train", "validation", "test")}, spec, plan)
        return Prepared(plan, rows, {"split": split})
    except TrainingDataError as exc:
        raise TrainingRefused(f"training refused: {exc}") from exc


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
    return {
        "protocol": str(plan.protocol),
        "why": plan.why,
        "folds": plan.settings.folds if plan.protocol == Protocol.CROSS_VALIDATION else None,
        "rows": len(prepared.rows.y),
        "evaluation_rows": len(competition.rows),
        "seed": plan.settings.seed,
        "winner": competition.winner,
    }


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
