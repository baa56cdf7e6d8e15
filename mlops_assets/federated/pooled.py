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
    """Pooled metrics of `which` ("metrics" or "baseline_metrics") over every site."""
    sums = {key: sum(s["sums"][key] for s in summaries.values()) for key in _SUM_KEYS}
    n = sums["n"]
    errors = "squared_error" if which == "metrics" else "baseline_squared_error"
    weights = {site: s["sums"]["n"] / n for site, s in summaries.items()}
    pooled = {
        name: float(sum(weights[site] * s[which][name] for site, s in summaries.items()))
        for name in WEIGHTED
        if all(name in s[which] for s in summaries.values())
    }
    if task == TaskType.REGRESSION:
        total = sums["y2"] - sums["y"] ** 2 / n
        pooled["rmse"] = float(np.sqrt(sums[errors] / n))
        pooled["r2"] = float(1.0 - sums[errors] / total)
        if which == "metrics":
            pooled["mae"] = float(sums["absolute_error"] / n)
    elif which == "metrics":
        pooled["log_loss"] = float(sums["log_loss"] / n)
    return pooled


_SUM_KEYS = (
    "n",
    "y",
    "y2",
    "squared_error",
    "absolute_error",
    "baseline_squared_error",
    "log_loss",
)
