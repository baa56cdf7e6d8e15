"""Parsing delivered values into the spec's logical types, vectorised, with a mask of failures.

Both the raw stage (to type what parses cleanly) and the cleaning stage (to quarantine what does
not) use these functions, so the two can never disagree about what counts as unparseable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_assets.spec import ColumnSpec, DType

TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_WORDS = ("false", "f", "no", "n", "0", "0.0")


BOOLEAN_TEXT = ("true", "false")
INT64_MAX = 2**63 - 1
INT64_LOW, INT64_HIGH = -(2.0**63), 2.0**63  # as floats: [low, high) is int64's range


@dataclass(frozen=True)
class Parsed:
    """Parsed values plus which delivered values were missing, of the wrong type, or unparseable.

    `wrong_type` marks a boolean delivered where the spec wants a number: read as 0 or 1 it
    would pass as a plausible number (or be called out of range), hiding a broken delivery.
    """

    values: pd.Series
    missing: np.ndarray
    unparseable: np.ndarray
    wrong_type: np.ndarray

    @property
    def invalid(self) -> np.ndarray:
        """Values present in the delivery that cannot be used as the spec's type."""
        return self.unparseable | self.wrong_type


def missing_mask(values: pd.Series) -> np.ndarray:
    """Nulls, plus blank strings (a CSV's empty cell means 'no value', not a value)."""
    mask = values.isna().to_numpy()
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        mask = mask | (values.astype("string").str.strip() == "").fillna(False).to_numpy(bool)
    return mask


def parse_column(values: pd.Series, column: ColumnSpec) -> Parsed:
    """Parse one column by its spec dtype; values that were present but fail are flagged.

    Integer-coded categories parse as integers, so a CSV's `3`, ` 3` and `3.0` are all the
    category 3 and `3.5` is unparseable, whatever type the reader guessed for the column.
    """
    missing = missing_mask(values)
    numeric = column.dtype in (DType.INT, DType.FLOAT) or column.integer_categories
    wrong_type = _booleans_for_number(values) & ~missing if numeric else np.zeros_like(missing)
    parser = _to_int if column.integer_categories else _PARSERS[column.dtype]
    parsed = parser(values)
    if wrong_type.any():
        parsed = parsed.mask(wrong_type)
    unparseable = parsed.isna().to_numpy() & ~missing & ~wrong_type
    return Parsed(values=parsed, missing=missing, unparseable=unparseable, wrong_type=wrong_type)


def _booleans_for_number(values: pd.Series) -> np.ndarray:
    """Booleans (typed, or the text `true`/`false`) delivered where a number is expected."""
    if pd.api.types.is_bool_dtype(values):
        return np.ones(len(values), dtype=bool)
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        words = values.astype("string").str.strip().str.lower()
        return words.isin(BOOLEAN_TEXT).fillna(False).to_numpy(bool)
    return np.zeros(len(values), dtype=bool)


def _to_number(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(np.nan, index=values.index, dtype="float64")  # all of the wrong type
    numbers = pd.to_numeric(values, errors="coerce")
    numbers = numbers.astype("float64")
    return numbers.where(np.isfinite(numbers.to_numpy()))


def _to_int(values: pd.Series) -> pd.Series:
    """Whole numbers within int64 (what the service's request model accepts), as Int64.

    Parsed exactly where the delivery allows it: through float64 a key beyond 2**53 would
    round to another key, and one beyond int64 would wrap when cast; such a value is
    unparseable instead, so its row is refused with a reason rather than crashing the batch.
    """
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(pd.NA, index=values.index, dtype="Int64")  # all of the wrong type
    if pd.api.types.is_signed_integer_dtype(values):
        return values.astype("Int64")
    floats = _floats(_numeric(values))
    with np.errstate(invalid="ignore"):
        whole = np.floor(floats) == floats
        near = whole & (floats >= INT64_LOW) & (floats <= INT64_HIGH)
    # Parsed again without the values that made the column float (text, 3.5, 2**70): the
    # rest then parse as exact integers, the bounds compared on integers, not on rounded floats.
    exact = _numeric(values[near])
    if pd.api.types.is_integer_dtype(exact):
        ints = exact.where(exact <= INT64_MAX).astype("Int64")
        return ints.reindex(values.index)
    inside = whole & (floats > INT64_LOW) & (floats < INT64_HIGH)  # a bound itself: unsure
    return floats.where(inside).astype("Int64")


def _numeric(values: pd.Series) -> pd.Series:
    """Numbers with pandas' nullable types: integers stay exact when every value is one."""
    try:
        return pd.to_numeric(values, errors="coerce", dtype_backend="numpy_nullable")
    except (TypeError, ValueError):  # objects the numeric parser cannot take at all
        return _to_number(values)


def _floats(numbers: pd.Series) -> pd.Series:
    return pd.Series(numbers.to_numpy(dtype="float64", na_value=np.nan), index=numbers.index)


def _to_text(values: pd.Series) -> pd.Series:
    text = values.astype("string")
    return text.where(text.str.strip() != "")


def _to_datetime(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values):
        return values.dt.tz_localize("UTC")
    try:
        return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    except (ValueError, TypeError):
        return pd.to_datetime(values, utc=True, errors="coerce", format="mixed")


def _to_bool(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype("boolean")
    words = values.astype("string").str.strip().str.lower()
    result = pd.Series(pd.NA, index=values.index, dtype="boolean")
    result[words.isin(TRUE_WORDS).fillna(False).to_numpy(bool)] = True
    result[words.isin(FALSE_WORDS).fillna(False).to_numpy(bool)] = False
    return result


_PARSERS = {
    DType.INT: _to_int,
    DType.FLOAT: _to_number,
    DType.CATEGORY: _to_text,
    DType.STRING: _to_text,
    DType.DATETIME: _to_datetime,
    DType.BOOL: _to_bool,
}
