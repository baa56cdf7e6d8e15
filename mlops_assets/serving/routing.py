"""One request's predictions under the rollout in force: who answers which rows, who shadows.

`route` returns the answer and its parts (which model answered which rows, for the response,
the metrics and the prediction log), plus, in shadow mode, the challenger's work, which `shadow.py`
scores off the request's path. Everything comes from one `Traffic` read once per request (the
champion, the challenger and the setting), so a request that started before a swap finishes on
the models it started with. The champion's model matrix is built once; a challenger that
engineers features the same way scores that very matrix, otherwise it builds its own from the
request's values with its own feature code. A by-key request has no values: each model reads
the online store's rows itself (`feature_rows.py`), so a challenger with other stored fill
values scores by key too.

`log_part` queues one model's predictions of a request for the prediction log.

A challenger that cannot score a request never fails the request: in canary mode the champion
answers its rows instead, in shadow mode nothing is logged for it; either way the request is
counted (`mlops_challenger_unscored_total`, by reason: `features` when it cannot read the
online rows, `error` when it raised, `overload` when the shadow queue was full) and shown by
`mlops rollout status`; a raised error is also logged
(`mlops_challenger_prediction_failures_total`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_assets.serving.feature_rows import UnreadableRows
from mlops_assets.serving.metrics import challenger_metrics, count_challenger
from mlops_assets.serving.predictor import Predictor
from mlops_assets.serving.traffic import Traffic, canary_mask

LOG = logging.getLogger(__name__)
MIXED = "mixed"  # `model_version` of a request the two models answered between them


@dataclass(frozen=True)
class Part:
    """Rows one model answered (or scored in shadow): `rows` None means every row."""

    version: str
    role: str  # "champion" or "challenger"
    predictions: np.ndarray
    rows: list[int] | None = None
    answered: bool = True
    seconds: float = 0.0


@dataclass
class Routed:
    """The answer to one request, and what is left to do after it is sent."""

    predictions: np.ndarray
    parts: list[Part]
    canary: bool = False
    shadow: Shadow | None = None

    @property
    def version(self) -> str:
        """The version that answered every row, or `mixed`."""
        versions = {part.version for part in self.parts}
        return versions.pop() if len(versions) == 1 else MIXED

    def versions(self) -> list[str]:
        """The answering version of each row, in request order."""
        answered = [""] * len(self.predictions)
        for part in self.parts:
            for row in part.rows if part.rows is not None else range(len(answered)):
                answered[row] = part.version
        return answered


@dataclass
class Shadow:
    """The challenger's work on a request it does not answer (`shadow.py` runs it later).

    `own_matrix`: `matrix` is the challenger's input as it is; otherwise it scores `columns`.
    """

    challenger: Predictor
    own_matrix: bool
    matrix: np.ndarray
    columns: Mapping[str, list[Any]] | None
    endpoint: str

    def run(self) -> Part | None:
        """Score the request; a failure is logged and counted, never raised."""
        started = time.perf_counter()
        own = self.matrix if self.own_matrix else None
        try:
            predictions = _challenger_predict(self.challenger, own, self.columns, None)
        except Exception as error:  # the champion's answer has gone out already
            _failed("shadow", self.endpoint, self.challenger, error)
            return None
        seconds = time.perf_counter() - started
        version = self.challenger.bundle.version
        challenger_metrics()[0].labels(version, self.endpoint).inc(len(predictions))
        count_challenger(version, "scored")
        return Part(version, "challenger", predictions, answered=False, seconds=seconds)


def route(
    traffic: Traffic,
    endpoint: str,
    *,
    columns: Mapping[str, list[Any]] | None = None,
    rows: np.ndarray | None = None,
    keys: Sequence[int | str | None] | None = None,
) -> Routed:
    """Predictions for one request: `columns` of validated values, or online feature `rows`."""
    champion = traffic.champion
    if rows is not None:
        matrix = traffic.champion_rows.matrix(rows) if traffic.champion_rows else rows
    else:
        matrix = champion.matrix(columns or {})
    challenger, mode = traffic.challenger, traffic.mode
    own: np.ndarray | None = None
    if challenger is not None:
        try:
            own = _challenger_matrix(traffic, matrix, rows)
        except UnreadableRows:  # counted; the champion answers every row
            count_challenger(challenger.bundle.version, "unscored", mode, endpoint, "features")
            challenger = None
    if mode == "canary" and challenger is not None:
        return _canary(champion, challenger, traffic, matrix, own, columns, keys, endpoint)
    routed = Routed(champion.predict_matrix(matrix), [], canary=mode == "canary")
    routed.parts.append(Part(champion.bundle.version, "champion", routed.predictions))
    if mode == "shadow" and challenger is not None:
        shadowed = matrix if own is None else own
        routed.shadow = Shadow(challenger, own is not None, shadowed, columns, endpoint)
    return routed


def _challenger_matrix(
    traffic: Traffic, matrix: np.ndarray, rows: np.ndarray | None
) -> np.ndarray | None:
    """The challenger's own input when it has one without its own feature code, else None."""
    if rows is not None:
        if traffic.challenger_rows is None:
            raise UnreadableRows("the service reads no online rows for this challenger")
        return traffic.challenger_rows.matrix(rows)
    return matrix if traffic.same_matrix else None


def _canary(
    champion: Predictor,
    challenger: Predictor,
    traffic: Traffic,
    matrix: np.ndarray,
    own: np.ndarray | None,
    columns: Mapping[str, list[Any]] | None,
    keys: Sequence[int | str | None] | None,
    endpoint: str,
) -> Routed:
    mask = canary_mask(keys, len(matrix), traffic.rollout.share)
    chosen = np.flatnonzero(mask)
    parts: list[Part] = []
    classes = len(champion.spec.classes)  # a multiclass answer is a row of probabilities
    predictions = np.empty((len(matrix), classes) if classes else len(matrix), dtype=np.float64)
    if len(chosen):
        try:
            scored = _challenger_predict(challenger, own, columns, chosen)
        except Exception as error:  # the champion answers these rows instead
            _failed("canary", endpoint, challenger, error)
            chosen = chosen[:0]
        else:
            count_challenger(challenger.bundle.version, "scored")
            predictions[chosen] = scored
            rows = None if len(chosen) == len(matrix) else chosen.tolist()
            parts.append(Part(challenger.bundle.version, "challenger", scored, rows))
    if len(chosen) < len(matrix):
        rest = np.setdiff1d(np.arange(len(matrix)), chosen, assume_unique=True)
        whole = len(rest) == len(matrix)
        answered = champion.predict_matrix(matrix if whole else matrix[rest])
        predictions[rest] = answered
        rows = None if whole else rest.tolist()
        parts.insert(0, Part(champion.bundle.version, "champion", answered, rows))
    return Routed(predictions, parts, canary=True)


def _challenger_predict(
    challenger: Predictor,
    own: np.ndarray | None,
    columns: Mapping[str, list[Any]] | None,
    rows: np.ndarray | None,
) -> np.ndarray:
    """The challenger's predictions for `rows` (all when None) of the request."""
    if own is not None:
        return challenger.predict_matrix(own if rows is None else own[rows])
    if columns is None:
        raise UnreadableRows("the request has neither values nor online rows")
    if rows is not None:
        columns = {name: [values[i] for i in rows] for name, values in columns.items()}
    return challenger.predict_columns(columns)


def _failed(mode: str, endpoint: str, challenger: Predictor, error: Exception) -> None:
    LOG.warning(
        "challenger v%s failed in %s mode (the champion's answer stands): %r",
        challenger.bundle.version,
        mode,
        error,
    )
    challenger_metrics()[1].labels(mode).inc()
    count_challenger(challenger.bundle.version, "unscored", mode, endpoint, "error")


def log_part(
    log: Any,
    request_id: str,
    endpoint: str,
    inputs: Iterable[dict],
    part: Part,
    seconds: float | None = None,
) -> None:
    """Queue one model's predictions of a request for the prediction log (None: no log).

    `seconds` is the latency to record, the part's own scoring time by default.
    """
    if log is None:
        return
    record = {
        "request_id": request_id,
        "timestamp": time.time(),
        "endpoint": endpoint,
        "model_version": part.version,
        "latency_ms": round((part.seconds if seconds is None else seconds) * 1e3, 3),
        "inputs": inputs,
        "outputs": part.predictions.tolist(),
    }
    if part.role != "champion" or not part.answered or part.rows is not None:
        record.update(role=part.role, answered=part.answered)
        if part.rows is not None:
            record["rows"] = part.rows
    log.append(record)
