"""An independent point-in-time join, used to verify the feature store's training sets.

For each label row it finds the newest feature row of the same entity at or before the
label's timestamp (`merge_asof`, backward). The training-set asset compares Feast's answer
with this one on every row, so a leak of future values cannot pass unnoticed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def as_of_join(
    labels: pd.DataFrame, features: pd.DataFrame, key: str, timestamp: str
) -> pd.DataFrame:
    """Labels with the as-of feature values appended, in the labels' original order."""
    left = labels.assign(_row=np.arange(len(labels))).sort_values(timestamp, kind="stable")
    right = features.sort_values(timestamp, kind="stable")
    right = right.astype({key: left[key].dtype})  # text keys: "string" and object alike
    joined = pd.merge_asof(
        left, right, on=timestamp, by=key, direction="backward", allow_exact_matches=True
    )
    return joined.sort_values("_row").drop(columns="_row").reset_index(drop=True)


def mismatched_rows(
    actual: pd.DataFrame, expected: pd.DataFrame, columns: list[str]
) -> dict[str, int]:
    """Per column, how many rows differ (NaN equals NaN; floats to 1e-9 relative)."""
    differences: dict[str, int] = {}
    for name in columns:
        a, b = actual[name], expected[name]
        if (
            isinstance(a.dtype, pd.CategoricalDtype)
            or a.dtype == object
            or pd.api.types.is_string_dtype(a)
        ):
            same = (a.astype("object").to_numpy() == b.astype("object").to_numpy()) | (
                a.isna().to_numpy() & b.isna().to_numpy()
            )
        else:
            same = np.isclose(
                a.to_numpy(dtype="float64", na_value=np.nan),
                b.to_numpy(dtype="float64", na_value=np.nan),
                rtol=1e-9,
                atol=0.0,
                equal_nan=True,
            )
        if (~same).any():
            differences[name] = int((~same).sum())
    return differences
