"""Metrics over all sites' test rows, from the sums each site reports (no row leaves a site).

RMSE, MAE, R² and log loss pool exactly: each is a function of sums over rows. Ranking and
threshold metrics (ROC AUC, PR AUC, accuracy, F1, Brier) are given as the row-weighted mean of
the sites' values, which is what they are called in the report.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_assets.spec import TaskType

WEIGHTED = ("roc_auc", "pr_auc", "brier", "accuracy", "f1", "mape")


def pooled_metrics(
    summaries: dict[str, dict[str, Any]], task: TaskType, which: str = "metrics"
) -> dict[str, float]:
    """Pooled metrics of `which` ("metrics", "baseline_metrics", "champion_metrics")."""
    prefix = which.removesuffix("metrics")
    keys = ("n", "y", "y2", *(prefix + key for key in _ERROR_KEYS))
    sums = {key: sum(s["sums"][key] for s in summaries.values()) for key in keys}
    n = sums["n"]
    weights = {site: s["sums"]["n"] / n for site, s in summaries.items()}
    pooled: dict[str, float] = {}
    if task == TaskType.REGRESSION:
        total = sums["y2"] - sums["y"] ** 2 / n
        pooled["rmse"] = float(np.sqrt(sums[prefix + "squared_error"] / n))
        pooled["mae"] = float(sums[prefix + "absolute_error"] / n)
        pooled["r2"] = float(1.0 - sums[prefix + "squared_error"] / total)
    else:
        pooled["log_loss"] = float(sums[prefix + "log_loss"] / n)
    for name in WEIGHTED:
        if all(name in s[which] for s in summaries.values()):
            pooled[name] = float(
                sum(weights[site] * s[which][name] for site, s in summaries.items())
            )
    return pooled


_ERROR_KEYS = ("squared_error", "absolute_error", "log_loss")
