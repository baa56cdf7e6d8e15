"""Feature engineering: the one function training and serving both call.

Training/serving skew is a bug, so there is exactly one place that turns cleaned columns into
model inputs. Categories stay categorical (pandas `Categorical` with the spec's category order,
which XGBoost handles natively); for the model matrix they become integer codes in that same
fixed order, so no encoder needs to be pickled and stored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_assets.spec import EVENT_YEAR, DatasetSpec, DType
from mlops_assets.spec.derived import DerivedExpression

SECONDS_PER_YEAR = 365.2425 * 24 * 3600
EPOCH_YEAR = 1970.0


def event_year(timestamps: pd.Series) -> np.ndarray:
    """Timestamps as decimal years (Gregorian mean year), vectorised."""
    seconds = timestamps.to_numpy(dtype="datetime64[ns]").astype("int64") / 1e9
    return EPOCH_YEAR + seconds / SECONDS_PER_YEAR


def engineer(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Entity key, event timestamp and every model feature, in the spec's fixed order."""
    columns: dict[str, object] = {
        spec.entity_key: frame[spec.entity_key].to_numpy(),
        spec.event_timestamp: frame[spec.event_timestamp],
    }
    inputs: dict[str, object] = {EVENT_YEAR: event_year(frame[spec.event_timestamp])}
    for name in spec.feature_columns:
        column = spec.column(name)
        if column.dtype == DType.CATEGORY:
            columns[name] = pd.Categorical(frame[name], categories=list(column.categories or ()))
        else:
            values = frame[name].to_numpy(dtype="float64", na_value=np.nan)
            columns[name] = values
            inputs[name] = values
    for derived in spec.derived:
        values = DerivedExpression.parse(derived.expr).evaluate(inputs)
        columns[derived.name] = values
        inputs[derived.name] = values
    result = pd.DataFrame(columns)
    result.index = frame.index
    return result


def to_matrix(
    features: pd.DataFrame, spec: DatasetSpec, columns: list[str] | None = None
) -> np.ndarray:
    """The model matrix: float columns in `spec.model_features` order, categories as codes.

    Unknown or missing categories become NaN, which XGBoost routes as missing values.
    `columns` overrides the order for a model trained on an earlier version of the spec.
    """
    columns = list(spec.model_features) if columns is None else columns
    matrix = np.empty((len(features), len(columns)), dtype=np.float32)
    for position, name in enumerate(columns):
        matrix[:, position] = _column_as_float(features[name], spec, name)
    return matrix


def feature_types(spec: DatasetSpec) -> list[str]:
    """XGBoost feature types in model order: 'c' for categorical, 'q' for quantitative."""
    categorical = set(spec.categorical_columns)
    return ["c" if name in categorical else "q" for name in spec.model_features]


def _column_as_float(values: pd.Series, spec: DatasetSpec, name: str) -> np.ndarray:
    if name in spec.categorical_columns:
        categories = list(spec.column(name).categories or ())
        if (
            not isinstance(values.dtype, pd.CategoricalDtype)
            or list(values.cat.categories) != categories
        ):
            values = pd.Series(pd.Categorical(values, categories=categories))
        codes = values.cat.codes.to_numpy().astype(np.float32)
        codes[codes < 0] = np.nan
        return codes
    return values.to_numpy(dtype=np.float32, na_value=np.nan)
