"""Statistics every site contributes to without showing its rows: sums through `allreduce`.

Inside a federated run these are the only values, besides XGBoost's own gradient histograms,
that leave a site: counts, sums, minima and maxima, and fixed-bin histograms (for a median and
for the quantiles the drift monitor compares new data against).
Outside a run (one process, no communicator) `allreduce` returns its input, so the same code
computes the central values, which is how the tests compare the two.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from xgboost import collective

from mlops_assets.core.statistics import QUANTILE_LEVELS
from mlops_assets.spec import DatasetSpec, Imputation

MEDIAN_BINS = 10_000  # the federated median is exact to (max - min) / 10,000
QUANTILE_BINS = 10_000  # and so are the drift reference's quantiles


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


def global_feature_statistics(features: pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    """`feature_statistics` of every site's rows together, from sums and shared histograms.

    The same document the central training set's statistics are (quantiles, mean, standard
    deviation, null rate; category shares), so the drift monitor compares new batches against
    a federated model exactly as against any other. Counts, means and shares are exact; each
    quantile is interpolated as `np.quantile` does between order statistics that are each
    located to within half of one of 10,000 bins between the global minimum and maximum.
    """
    total = float(global_sum(np.array([len(features)]))[0])
    numeric: dict[str, Any] = {}
    categorical: dict[str, Any] = {}
    for name in spec.model_features:
        values = features[name]
        if name in spec.categorical_columns:
            categories = list(spec.column(name).categories or ())
            local = values.value_counts(dropna=True)
            counts = global_sum(
                np.array([local.get(c, 0) for c in categories] + [values.isna().sum()])
            )
            present = max(float(counts[:-1].sum()), 1.0)
            categorical[name] = {
                "shares": {
                    str(c): float(n) / present for c, n in zip(categories, counts[:-1], strict=True)
                },
                "null_rate": float(counts[-1]) / total if total else 0.0,
            }
            continue
        array = values.to_numpy(dtype="float64", na_value=np.nan)
        numeric[name] = _global_numeric(array[np.isfinite(array)], total)
    return {"rows": int(total), "numeric": numeric, "categorical": categorical}


def _global_numeric(finite: np.ndarray, total: float) -> dict[str, Any]:
    count, added, squares = global_sum(
        np.array([finite.size, finite.sum(), np.square(finite).sum()])
    )
    low = float(
        collective.allreduce(
            np.array([finite.min() if finite.size else np.inf]), collective.Op.MIN
        )[0]
    )
    high = float(
        collective.allreduce(
            np.array([finite.max() if finite.size else -np.inf]), collective.Op.MAX
        )[0]
    )
    if count == 0:
        return {"quantiles": [], "mean": None, "std": None, "null_rate": 1.0}
    mean = added / count
    summary = {
        "mean": float(mean),
        "std": float(np.sqrt(max(squares / count - mean**2, 0.0))),
        "null_rate": 1.0 - count / total,
    }
    if high == low:
        return {"quantiles": [low] * len(QUANTILE_LEVELS), **summary}
    counts, edges = np.histogram(finite, bins=QUANTILE_BINS, range=(low, high))
    cumulative = np.cumsum(global_sum(counts))
    centres = (edges[:-1] + edges[1:]) / 2.0

    def order_statistic(rank: np.ndarray) -> np.ndarray:  # the rank-th smallest value's bin
        return centres[
            np.minimum(np.searchsorted(cumulative, rank, side="right"), QUANTILE_BINS - 1)
        ]

    # As np.quantile does: interpolate between the order statistics around q * (n - 1).
    position = QUANTILE_LEVELS * (count - 1)
    below = np.floor(position)
    lower, upper = order_statistic(below), order_statistic(np.minimum(below + 1, count - 1))
    quantiles = lower + (position - below) * (upper - lower)
    quantiles[0], quantiles[-1] = low, high  # the ends are known exactly
    return {"quantiles": quantiles.tolist(), **summary}
