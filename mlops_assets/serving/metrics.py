"""Prometheus metrics of predictions, per model version and endpoint.

Created on first use, not at import: BentoML workers set `PROMETHEUS_MULTIPROC_DIR` after the
service module is imported, and metrics created before that would never reach `/metrics`.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter as Tally
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


@functools.cache
def labelled_metrics(version: str, endpoint: str) -> tuple[Any, Any]:
    """The row counter and latency histogram of one model version and endpoint.

    Looked up once, not on every request: `labels()` takes a lock and builds a key each call.
    """
    rows, latency = prediction_metrics()
    return rows.labels(version, endpoint), latency.labels(version, endpoint)


@functools.cache
def model_metrics() -> tuple[Any, Any]:
    """(info gauge of the answering model, promotion time of that model), set at each swap.

    The promotion time lets an alert fire when the champion grows old; `livemax` merges the
    live workers' identical values into one series. A model swapped out is set to 0 in both.
    """
    from prometheus_client import Gauge

    info = Gauge(
        "mlops_model_info",
        "The model this service answers with (always 1), by version, name and MLflow run.",
        ["model_version", "model_name", "mlflow_run_id"],
        multiprocess_mode="livemax",
    )
    promoted = Gauge(
        "mlops_model_promoted_timestamp_seconds",
        "When the served model became champion (Unix time), by model version.",
        ["model_version"],
        multiprocess_mode="livemax",
    )
    return info, promoted


def publish_model(info: dict[str, Any]) -> None:
    """Export the served model's identity and promotion time (from its registry facts)."""
    gauge, promoted = model_metrics()
    version = str(info.get("model_version", ""))
    gauge.labels(version, str(info.get("model_name", "")), str(info.get("mlflow_run_id", ""))).set(
        1
    )
    moment = _timestamp(info.get("promoted_at"))
    if moment is not None:
        promoted.labels(version).set(moment)


def _timestamp(value: Any) -> float | None:
    """Unix time of an ISO-8601 string, or None when absent or unreadable."""
    from datetime import UTC, datetime

    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


MODES = ("champion", "shadow", "canary")


@functools.cache
def rollout_failures() -> tuple[Any, Any]:
    """(challengers that failed to load, rollout files that could not be read), per worker."""
    from prometheus_client import Counter

    load = Counter(
        "mlops_challenger_load_failures",
        "Challengers that could not be loaded (missing, corrupt or unfit); the champion "
        "answered alone meanwhile.",
    )
    invalid = Counter(
        "mlops_rollout_invalid",
        "Rollout files that could not be applied; the champion answered alone meanwhile.",
    )
    return load, invalid


@functools.cache
def rollout_gauges() -> tuple[Any, Any]:
    """(1 for the mode served, 0 for the others; the canary share), across live workers."""
    from prometheus_client import Gauge

    mode = Gauge(
        "mlops_rollout_mode",
        "The rollout mode served (1) and the others (0): champion, shadow or canary.",
        ["mode"],
        multiprocess_mode="livemax",
    )
    share = Gauge(
        "mlops_rollout_share",
        "The share of traffic the challenger answers (canary mode; 0 otherwise).",
        multiprocess_mode="livemax",
    )
    return mode, share


def publish_rollout(mode: str, share: float) -> None:
    """Export the mode and share a worker serves now."""
    gauge, share_gauge = rollout_gauges()
    for name in MODES:
        gauge.labels(name).set(1 if name == mode else 0)
    share_gauge.set(share)


@functools.cache
def challenger_metrics() -> tuple[Any, Any]:
    """(rows the challenger scored in shadow, by version; challenger prediction failures)."""
    from prometheus_client import Counter

    shadow = Counter(
        "mlops_shadow_predictions",
        "Rows a challenger scored in shadow (not answered), by model version and endpoint.",
        ["model_version", "endpoint"],
    )
    failures = Counter(
        "mlops_challenger_prediction_failures",
        "Challenger predictions that failed, by mode; the champion's answer stood.",
        ["mode"],
    )
    return shadow, failures


@functools.cache
def unscored_metric() -> Any:
    """Requests a challenger could not score, by mode, endpoint and reason."""
    from prometheus_client import Counter

    return Counter(
        "mlops_challenger_unscored",
        "Requests the challenger could not score (the champion answered them alone), by mode, "
        "endpoint and reason: features (it cannot read the online rows), error, overload.",
        ["mode", "endpoint", "reason"],
    )


_TALLY: Tally[tuple[str, str]] = Tally()  # (challenger version, outcome) -> requests
_TALLY_LOCK = threading.Lock()


def count_challenger(
    version: str, outcome: str, mode: str = "", endpoint: str = "", reason: str = "error"
) -> None:
    """Count one request the challenger scored (`scored`) or could not score (`unscored`).

    The worker keeps its own tally too, which its status file reports to `mlops rollout
    status` (`worker_status.py`); an unscored request also goes to `mlops_challenger_unscored`.
    """
    key = outcome if outcome == "scored" else f"unscored:{reason}"
    with _TALLY_LOCK:
        _TALLY[(version, key)] += 1
    if outcome != "scored":
        unscored_metric().labels(mode, endpoint, reason).inc()


def challenger_tally(version: str) -> dict[str, int]:
    """Requests per outcome for challenger `version`, counted in this worker."""
    with _TALLY_LOCK:
        return {key: n for (v, key), n in sorted(_TALLY.items()) if v == version}


@functools.cache
def champion_metrics() -> tuple[Any, Any]:
    """(champions that could not be loaded, champions swapped in), per worker."""
    from prometheus_client import Counter

    failures = Counter(
        "mlops_champion_load_failures",
        "New champions the running service could not load or verify; the previous one kept "
        "answering.",
    )
    swaps = Counter(
        "mlops_champion_swaps",
        "New champions the running service loaded, verified, warmed and now answers with.",
    )
    return failures, swaps


def retire_model(info: dict[str, Any]) -> None:
    """The model no longer answers in this worker: its gauges go to 0."""
    gauge, promoted = model_metrics()
    version = str(info.get("model_version", ""))
    labels = (version, str(info.get("model_name", "")), str(info.get("mlflow_run_id", "")))
    gauge.labels(*labels).set(0)
    promoted.labels(version).set(0)
