"""Reference statistics of the training features, the yardstick for drift detection later.

Numeric columns keep 101 quantiles (percentiles): their deciles are the PSI bin edges, and
the whole quantile function gives the Wasserstein distance without storing the data.
Categorical columns keep their category shares.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.spec import DatasetSpec

QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)


def feature_statistics(features: pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    """Per-column quantiles, moments and null rates, and category shares."""
    numeric: dict[str, Any] = {}
    categorical: dict[str, Any] = {}
    for name in spec.model_features:
        values = features[name]
        if name in spec.categorical_columns:
            counts = values.value_counts(dropna=True)
            total = max(int(counts.sum()), 1)
            categories = list(spec.column(name).categories or ())
            categorical[name] = {
                "shares": {str(c): float(counts.get(c, 0)) / total for c in categories},
                "null_rate": float(values.isna().mean()) if len(values) else 0.0,
            }
            continue
        array = values.to_numpy(dtype="float64", na_value=np.nan)
        finite = array[np.isfinite(array)]
        numeric[name] = _numeric_summary(finite, len(array))
    return {"rows": len(features), "numeric": numeric, "categorical": categorical}


def _numeric_summary(finite: np.ndarray, total: int) -> dict[str, Any]:
    if finite.size == 0:
        return {"quantiles": [], "mean": None, "std": None, "null_rate": 1.0}
    return {
        "quantiles": np.quantile(finite, QUANTILE_LEVELS).tolist(),
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "null_rate": 1.0 - finite.size / total,
    }
