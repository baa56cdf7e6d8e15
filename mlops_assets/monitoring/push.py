"""Drift verdicts pushed to a Prometheus Pushgateway, where the alert rules can see them.

Drift is decided by a Dagster run that ends, not by a server Prometheus could scrape, which is
the case the Pushgateway is made for. One group per dataset (`job="mlops_drift"`,
`dataset=<name>`) holds the newest verdict only, so a clean report clears the alert.
"""

from __future__ import annotations

from typing import Any

from mlops_assets.core.drift import DriftResult

PUSH_JOB = "mlops_drift"
PUSH_TIMEOUT_S = 5.0


def drift_registry(dataset: str, batch: DriftResult, live: DriftResult | None) -> Any:
    """A fresh registry holding the drift gauges of one report (live only when judged)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    detected = Gauge(
        "mlops_drift_detected",
        "1 when the newest drift report found the data drifted, else 0.",
        ["dataset", "scope"],
        registry=registry,
    )
    share = Gauge(
        "mlops_drift_drifted_share",
        "Share of monitored columns that drifted in the newest drift report.",
        ["dataset", "scope"],
        registry=registry,
    )
    for scope, result in (("batch", batch), ("live", live)):
        if result is not None:
            detected.labels(dataset, scope).set(int(result.drifted))
            share.labels(dataset, scope).set(result.drifted_share)
    return registry


def push_drift(url: str, dataset: str, batch: DriftResult, live: DriftResult | None) -> None:
    """Replace the dataset's drift group on the Pushgateway at `url`; raises when unreachable."""
    from prometheus_client import push_to_gateway

    push_to_gateway(
        url,
        job=PUSH_JOB,
        grouping_key={"dataset": dataset},
        registry=drift_registry(dataset, batch, live),
        timeout=PUSH_TIMEOUT_S,
    )
