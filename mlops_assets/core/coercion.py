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
    numbers = _to_number(values)
    return numbers.where(np.floor(numbers) == numbers)


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
