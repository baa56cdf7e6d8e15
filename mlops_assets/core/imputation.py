"""Imputation learned once from the data and then applied, unchanged, everywhere.

A column the spec lets impute (`impute: median | mean | mode | constant`) keeps its missing
values through cleaning. The feature stage learns one fill value per column from every cleaned
row (the rows the training set is built from), fills with it before the derived columns are
computed, and stores it with the feature table; the model's manifest carries it on, and the
service fills a missing or null request field with that very value. So a row the training set
imputed and a request that leaves the field out get the same features, bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.spec import DatasetSpec, Imputation

ATTRS_KEY = "imputation"  # where the feature table's Parquet metadata keeps the values


def learn_imputation(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    """The fill value of every imputed feature column (None where nothing can be learned)."""
    values: dict[str, Any] = {}
    for name in spec.imputed_columns:
        column = spec.column(name)
        present = frame[name].dropna()
        if column.impute == Imputation.CONSTANT:
            values[name] = _plain(column.impute_value)
        elif present.empty:
            values[name] = None
        elif column.impute == Imputation.MEDIAN:
            values[name] = float(present.astype("float64").median())
        elif column.impute == Imputation.MEAN:
            values[name] = float(present.astype("float64").mean())
        else:  # mode; ties go to the smallest value, so the choice never depends on row order
            counts = present.astype("object").value_counts(sort=False)
            best = counts[counts == counts.max()].index
            values[name] = _plain(sorted(best)[0])
    return values


def fill_numbers(values: np.ndarray, fill: Any) -> np.ndarray:
    """Missing (NaN) numbers replaced by `fill`; a None fill leaves them missing."""
    if fill is None:
        return values
    return np.where(np.isnan(values), float(fill), values)


def fill_codes(codes: np.ndarray, fill: Any, categories: list[Any]) -> np.ndarray:
    """Missing category codes replaced by the code of the `fill` category."""
    if fill is None or fill not in categories:
        return codes
    return np.where(np.isnan(codes), float(categories.index(fill)), codes)


def _plain(value: Any) -> Any:
    """A JSON-ready Python scalar (numpy scalars become int, float or str)."""
    return value.item() if isinstance(value, np.generic) else value
