"""Statistics every site contributes to without showing its rows: sums through `allreduce`.

Inside a federated run these are the only values, besides XGBoost's own gradient histograms,
that leave a site: counts, sums, minima and maxima, and a fixed-bin histogram for a median.
Outside a run (one process, no communicator) `allreduce` returns its input, so the same code
computes the central values, which is how the tests compare the two.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from xgboost import collective

from mlops_assets.spec import DatasetSpec, Imputation

MEDIAN_BINS = 10_000  # the federated median is exact to (max - min) / 10,000


def global_sum(values: np.ndarray) -> np.ndarray:
    """Element-wise sum over all sites."""
    return collective.allreduce(np.ascontiguousarray(values, dtype=np.float64), collective.Op.SUM)


def global_imputation(frame: pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    """Fill values learned from every site's rows, as `learn_imputation` learns them centrally.

    Means and modes are exact; a median comes from a shared 10,000-bin histogram between the
    global minimum and maximum, so it can differ from the central median by one bin width.
    """
    values: dict[str, Any] = {}
    for name in spec.imputed_columns:
        column = spec.column(name)
        present = frame[name].dropna()
        if column.impute == Imputation.CONSTANT:
            values[name] = column.impute_value
        elif column.impute == Imputation.MODE:
            values[name] = _global_mode(present, list(column.categories or ()), name)
        else:
            numbers = present.astype("float64").to_numpy()
            count = global_sum(np.array([numbers.size]))[0]
            if count == 0:
                values[name] = None
            elif column.impute == Imputation.MEAN:
                values[name] = float(global_sum(np.array([numbers.sum()]))[0] / count)
            else:
                values[name] = _global_median(numbers, count)
    return values


def _global_median(numbers: np.ndarray, count: float) -> float:
    low = np.array([numbers.min() if numbers.size else np.inf])
    high = np.array([numbers.max() if numbers.size else -np.inf])
    low = float(collective.allreduce(low, collective.Op.MIN)[0])
    high = float(collective.allreduce(high, collective.Op.MAX)[0])
    if high == low:
        return low
    counts, edges = np.histogram(numbers, bins=MEDIAN_BINS, range=(low, high))
    cumulative = np.cumsum(global_sum(counts))
    position = int(np.searchsorted(cumulative, count / 2.0))
    return float((edges[position] + edges[position + 1]) / 2.0)


def _global_mode(present: pd.Series, categories: list[Any], name: str) -> Any:
    if not categories:
        raise ValueError(
            f"column '{name}': federated training learns a mode only for categorical columns; "
            "use impute: median or mean for a number"
        )
    local = present.astype("object").value_counts()
    counts = global_sum(np.array([local.get(c, 0) for c in categories], dtype=np.float64))
    best = [c for c, n in zip(categories, counts, strict=True) if n == counts.max()]
    return sorted(best)[0] if counts.max() > 0 else None
