"""Prometheus metrics of predictions, per model version and endpoint.

Created on first use, not at import: BentoML workers set `PROMETHEUS_MULTIPROC_DIR` after the
service module is imported, and metrics created before that would never reach `/metrics`.
"""

from __future__ import annotations

import functools
from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


@functools.cache
def prediction_metrics() -> tuple[Any, Any]:
    """(counter of predicted rows, histogram of request latency), both labelled by version."""
    from prometheus_client import Counter, Histogram

    rows = Counter(
        "mlops_predictions",
        "Rows predicted, by model version and endpoint.",
        ["model_version", "endpoint"],
    )
    latency = Histogram(
        "mlops_prediction_latency_seconds",
        "Prediction request latency inside the service, by model version and endpoint.",
        ["model_version", "endpoint"],
        buckets=LATENCY_BUCKETS,
    )
    return rows, latency
