"""Batch scoring: a delivered file of unlabelled rows in, one answer or one reason per row out.

The rows go through the spec's per-row rules (`validate_rows`) and the one feature function
(`engineer_arrays`) with the model's stored imputation values, exactly as a request to the
service does, so a row scored here and the same row sent to `/predict` get the same number.
Nothing is dropped: scored + rejected = delivered, and each rejected row carries its reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.core.cleaning import SOURCE_ROW_COLUMN, validate_rows
from mlops_assets.core.families import Model
from mlops_assets.core.features import arrays_to_matrix, engineer_arrays
from mlops_assets.spec import DatasetSpec

PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"
VERSION_COLUMN = "model_version"
REJECT_COLUMN = "reject_reason"


class ScoringError(ValueError):
    """A delivery that cannot be scored at all; the message names what is missing."""


@dataclass(frozen=True)
class ScoredBatch:
    """The scored rows (with their prediction and model version) and the rejected ones."""

    scored: pd.DataFrame
    rejected: pd.DataFrame
    delivered: int

    def accounting(self) -> dict[str, int]:
        """Delivered, scored and rejected row counts (scored + rejected = delivered)."""
        return {
            "delivered": self.delivered,
            "scored": len(self.scored),
            "rejected": len(self.rejected),
        }


def scoring_columns(spec: DatasetSpec, present: list[str]) -> tuple[list[str], list[str]]:
    """(columns to check, required columns missing from the file).

    Every feature column is required and the target never is. The entity key and the event
    time are checked when the file has them: the key is carried to the output to identify rows,
    and without a time column rows are scored as of now, as the service does.
    """
    optional = [c for c in (spec.entity_key_column, spec.event_timestamp_column) if c]
    required = list(spec.feature_columns)
    missing = [c for c in required if c not in present]
    return [c for c in optional if c in present] + required, missing


def check_columns(frame: pd.DataFrame, spec: DatasetSpec) -> list[str]:
    """The columns to check; raises naming the feature columns the file lacks."""
    columns, missing = scoring_columns(spec, [str(c) for c in frame.columns])
    if missing:
        raise ScoringError(
            f"the file to score lacks feature columns {missing}: add them (the target "
            f"'{spec.target}' may be left out; the key and time columns are optional)"
        )
    return columns


def score_frame(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    model: Model,
    imputation: Mapping[str, Any],
    model_version: str,
    now: datetime,
) -> ScoredBatch:
    """Score every valid row; reject the others with reasons. Raises on missing columns."""
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    columns = check_columns(frame, spec)
    checked = validate_rows(frame, spec, columns)
    good = np.flatnonzero(~checked.bad)
    scored = frame.iloc[good].copy()
    scored.insert(0, SOURCE_ROW_COLUMN, good)
    predicted = _predict(checked.typed.iloc[good], spec, model, imputation, now)
    for name, values in prediction_columns(predicted, spec).items():
        scored[name] = values
    scored[VERSION_COLUMN] = model_version
    bad = np.flatnonzero(checked.bad)
    rejected = frame.iloc[bad].astype("string")
    rejected.insert(0, SOURCE_ROW_COLUMN, bad)
    rejected[REJECT_COLUMN] = checked.reasons[bad].astype(str)
    return ScoredBatch(
        scored.reset_index(drop=True), rejected.reset_index(drop=True), delivered=len(frame)
    )


def prediction_columns(predicted: np.ndarray, spec: DatasetSpec) -> dict[str, Any]:
    """The output columns: `prediction`, and for a multiclass model each class's probability.

    A multiclass `prediction` is the most probable class; `probability_<class>` columns hold
    the probabilities, the service's very numbers.
    """
    if not spec.task.is_multiclass:
        return {PREDICTION_COLUMN: predicted}
    classes = spec.classes
    if len(predicted) == 0:
        predicted = np.empty((0, len(classes)))
    labels = pd.Series(np.asarray(classes, dtype=object)[predicted.argmax(axis=1)])
    columns: dict[str, Any] = {PREDICTION_COLUMN: labels.to_numpy()}
    for k, name in enumerate(classes):
        columns[f"{PROBABILITY_PREFIX}{name}"] = predicted[:, k]
    return columns


def _predict(
    typed: pd.DataFrame,
    spec: DatasetSpec,
    model: Model,
    imputation: Mapping[str, Any],
    now: datetime,
) -> np.ndarray:
    if typed.empty:
        return np.empty(0, dtype=np.float64)
    if spec.event_timestamp_column in typed:
        times = typed[spec.event_timestamp_column]
    else:
        times = pd.Series(pd.Timestamp(now), index=typed.index)
    arrays = engineer_arrays(
        {name: typed[name] for name in spec.feature_columns}, times, spec, imputation
    )
    return model.predict(arrays_to_matrix(arrays, spec))
