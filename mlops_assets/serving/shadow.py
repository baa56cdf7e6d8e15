"""Shadow scoring in small batches, from a background thread, off every request's path.

A request in shadow mode only queues its model matrix (a list append under a lock); the thread
wakes every `interval_s`, stacks what is queued and lets the challenger score it in one call.
One call per batch instead of one per request matters: scoring a single row costs the model's
per-call overhead (most of a single-row prediction here), and XGBoost releases the GIL while
it predicts, so the event loop keeps answering meanwhile. A row's prediction does not depend
on the rows scored with it, so the logged values are what a request of its own would get.

The queue is bounded: under an overload the shadow is what gives way (dropped requests are
counted as shadow failures), never the answers. A challenger that engineers features
differently from the champion scores each request from its own values instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_assets.serving.metrics import challenger_metrics, count_challenger
from mlops_assets.serving.routing import Part, Shadow, log_part

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    shadow: Shadow
    request_id: str
    inputs: Iterable[dict]


class ShadowScorer:
    """Scores queued shadow requests in batches and logs the challenger's predictions."""

    def __init__(self, log: Any, interval_s: float = 0.02, max_queued: int = 20_000) -> None:
        self.log, self.interval_s, self.max_queued = log, interval_s, max_queued
        self._jobs: list[_Job] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
        self._thread.start()

    def submit(self, shadow: Shadow, request_id: str, inputs: Iterable[dict]) -> None:
        """Queue one request for the challenger (cheap: no scoring here)."""
        with self._lock:
            if len(self._jobs) < self.max_queued:
                self._jobs.append(_Job(shadow, request_id, inputs))
                return
        challenger_metrics()[1].labels("shadow").inc()  # overloaded: the shadow gives way
        version = shadow.challenger.bundle.version
        count_challenger(version, "unscored", "shadow", shadow.endpoint, "overload")

    def drain(self) -> int:
        """Score and log everything queued now; returns how many requests were scored."""
        with self._lock:
            jobs, self._jobs = self._jobs, []
        groups: dict[tuple[int, bool], list[_Job]] = {}
        for job in jobs:
            groups.setdefault((id(job.shadow.challenger), job.shadow.own_matrix), []).append(job)
        scored = 0
        for (_, own_matrix), group in groups.items():
            parts = _score_together(group) if own_matrix else [j.shadow.run() for j in group]
            for job, part in zip(group, parts, strict=True):
                if part is not None:
                    log_part(self.log, job.request_id, job.shadow.endpoint, job.inputs, part)
                    scored += 1
        return scored

    def close(self) -> None:
        """Stop the thread and score what is still queued."""
        self._stopped.set()
        self._thread.join(timeout=5)
        self.drain()

    def _run(self) -> None:  # background thread
        while not self._stopped.wait(self.interval_s):
            try:
                self.drain()
            except Exception:  # the thread must outlive any surprise; answers are unaffected
                LOG.exception("shadow scoring failed")


def _score_together(group: list[_Job]) -> list[Part | None]:
    """One challenger call for the stacked matrices of `group`, split back per request."""
    challenger = group[0].shadow.challenger
    started = time.perf_counter()
    try:
        predictions = challenger.predict_matrix(np.vstack([j.shadow.matrix for j in group]))
    except Exception as error:  # the answers went out already: count, log, move on
        LOG.warning("challenger v%s failed in shadow: %r", challenger.bundle.version, error)
        challenger_metrics()[1].labels("shadow").inc(len(group))
        for job in group:
            count_challenger(challenger.bundle.version, "unscored", "shadow", job.shadow.endpoint)
        return [None] * len(group)
    seconds = time.perf_counter() - started
    version = challenger.bundle.version
    ends = np.cumsum([len(j.shadow.matrix) for j in group])
    parts: list[Part | None] = []
    for job, values in zip(group, np.split(predictions, ends[:-1]), strict=True):
        challenger_metrics()[0].labels(version, job.shadow.endpoint).inc(len(values))
        count_challenger(version, "scored")
        parts.append(Part(version, "challenger", values, answered=False, seconds=seconds))
    return parts
