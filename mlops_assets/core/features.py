"""Feature engineering: the one function training and serving both call.

Training/serving skew is a bug, so there is exactly one place that turns cleaned columns into
model inputs. Categories stay categorical (pandas `Categorical` with the spec's category order,
which XGBoost handles natively); for the model matrix they become integer codes in that same
fixed order, so no encoder needs to be pickled and stored.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.core.imputation import fill_codes, fill_numbers
from mlops_assets.spec import EVENT_YEAR, DatasetSpec, DType
from mlops_assets.spec.derived import DerivedExpression
from mlops_assets.spec.model import CalendarFeature

SECONDS_PER_YEAR = 365.2425 * 24 * 3600
SMALL_INPUT = 64  # below this many values a dict lookup beats pandas' categorical machinery
EPOCH_YEAR = 1970.0


def utc_times(timestamps: Any) -> np.ndarray:
    """A tz-aware Series (offline) or UTC `datetime64` values (a request) as `datetime64[ns]`."""
    if isinstance(timestamps, pd.Series):
        if isinstance(timestamps.dtype, pd.DatetimeTZDtype):
            timestamps = timestamps.dt.tz_convert("UTC").dt.tz_localize(None)
        timestamps = timestamps.to_numpy()
    return np.asarray(timestamps).astype("datetime64[ns]")


def event_year(timestamps: Any) -> np.ndarray:
    """Timestamps as decimal years (Gregorian mean year), vectorised."""
    seconds = utc_times(timestamps).astype("int64") / 1e9
    return EPOCH_YEAR + seconds / SECONDS_PER_YEAR


def calendar_features(timestamps: Any, spec: DatasetSpec) -> dict[str, np.ndarray]:
    """The spec's calendar features of each event time (UTC dates), as float64 arrays."""
    wanted = spec.windows.calendar
    if not wanted:
        return {}
    days = utc_times(timestamps).astype("datetime64[D]")
    years = days.astype("datetime64[Y]")
    values = {
        CalendarFeature.DAY_OF_WEEK: (days.astype("int64") + 3) % 7,  # 1970-01-01: a Thursday
        CalendarFeature.DAY_OF_YEAR: (days - years.astype("datetime64[D]")).astype("int64") + 1,
        CalendarFeature.MONTH: (
            days.astype("datetime64[M]") - years.astype("datetime64[M]")
        ).astype("int64")
        + 1,
        CalendarFeature.IS_HOLIDAY: np.isin(
            days, np.array(spec.windows.holidays, dtype="datetime64[D]")
        ),
    }
    return {str(name): values[name].astype("float64") for name in wanted}


def engineer_arrays(
    columns: Mapping[str, Any],
    timestamps: Any,
    spec: DatasetSpec,
    imputation: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Every model feature as a float64 array, categories as their spec codes (NaN: unknown).

    The single implementation of feature engineering. `engineer` (offline, DataFrames) and the
    service (online, plain arrays from a request) both call it, so the same row gets the same
    features, bit for bit, on either path. `imputation` fills missing values of the imputed
    columns (learned by `learn_imputation`) before derived columns read them.
    """
    fills = imputation or {}
    inputs: dict[str, np.ndarray] = {EVENT_YEAR: event_year(timestamps)}
    result: dict[str, np.ndarray] = {}
    for name in spec.feature_columns:
        column = spec.column(name)
        if column.dtype == DType.CATEGORY:
            categories = list(column.categories or ())
            codes = category_codes(columns[name], categories)
            result[name] = fill_codes(codes, fills.get(name), categories)
            continue
        values = columns[name]
        if isinstance(values, pd.Series):
            values = values.to_numpy(dtype="float64", na_value=np.nan)
        values = fill_numbers(np.asarray(values, dtype="float64"), fills.get(name))
        result[name] = values
        inputs[name] = values
    for derived in spec.derived:
        values = parsed_expression(derived.expr).evaluate(inputs)
        result[derived.name] = values
        inputs[derived.name] = values
    result.update(calendar_features(timestamps, spec))
    return result


@functools.lru_cache(maxsize=256)
def parsed_expression(source: str) -> DerivedExpression:
    """Parse each derived expression once per process (the serving hot path calls this)."""
    return DerivedExpression.parse(source)


def category_codes(values: Any, categories: list[Any]) -> np.ndarray:
    """Positions in the spec's category list as floats; unknown or missing values are NaN.

    Integer categories match integer values (3 and 3.0 are the category 3); the text "3" is not
    the integer 3, so the service's request model refuses it before it gets here.
    """
    if not isinstance(values, pd.Series | pd.Categorical) and len(values) <= SMALL_INPUT:
        lookup = {c: float(i) for i, c in enumerate(categories)}
        return np.array([lookup.get(v, np.nan) for v in values], dtype="float64")
    codes = pd.Categorical(np.asarray(values, dtype=object), categories=categories).codes
    result = codes.astype("float64")
    result[codes < 0] = np.nan
    return result


def label_values(values: pd.Series, spec: DatasetSpec) -> np.ndarray:
    """The target as the model learns it: a number, or a multiclass target's class code.

    Class i is the spec's i-th category, the same order the model's probabilities follow; a
    value outside the categories is NaN (cleaning quarantines such rows before they get here).
    """
    if spec.task.is_multiclass:
        return category_codes(values.astype(object), spec.classes)
    return values.to_numpy(dtype=np.float64)


def engineer(
    frame: pd.DataFrame, spec: DatasetSpec, imputation: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Entity key, event timestamp and every model feature, in the spec's fixed order."""
    arrays = engineer_arrays(
        {name: frame[name] for name in spec.feature_columns},
        frame[spec.event_timestamp],
        spec,
        imputation,
    )
    columns: dict[str, object] = {
        spec.entity_key: frame[spec.entity_key].to_numpy(),
        spec.event_timestamp: frame[spec.event_timestamp],
    }
    history = set(spec.windows.history_features)
    for name in spec.model_features:
        if name in history:
            continue  # read from the entity's earlier rows: `window_features`
        if name in spec.categorical_columns:
            codes = np.nan_to_num(arrays[name], nan=-1).astype(np.int64)
            categories = list(spec.column(name).categories or ())
            columns[name] = pd.Categorical.from_codes(codes, categories=categories)
        else:
            columns[name] = arrays[name]
    result = pd.DataFrame(columns)
    result.index = frame.index
    return result


class MissingHistoryError(ValueError):
    """A request lacks features only an entity's history gives; the message names them."""


def arrays_to_matrix(arrays: Mapping[str, np.ndarray], spec: DatasetSpec) -> np.ndarray:
    """The model matrix from `engineer_arrays` output, without a DataFrame in between.

    Features of an entity's past (lags, rolling windows) are not in a request's fields: such
    a request is refused, naming them and the by-key endpoint that reads them from the
    online store.
    """
    missing = [name for name in spec.model_features if name not in arrays]
    if missing:
        raise MissingHistoryError(
            f"this model reads features of each entity's past that a request cannot carry "
            f"({', '.join(missing)}): ask /v1/predict_by_key with the entity's "
            f"{spec.entity_key}, which reads them from the online store"
        )
    return np.column_stack([arrays[name] for name in spec.model_features]).astype(np.float32)


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
