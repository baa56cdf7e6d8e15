"""Buffered prediction log: JSON lines under `MLOPS_HOME/predictions/`, read in bulk later.

Requests only append one small object per request to an in-memory list (no I/O, no encoding on
the hot path); a background thread expands it to one line per predicted row (request id, row,
timestamp, endpoint, model version, role, latency, inputs, output) and writes it every
`flush_seconds` or once `max_buffer` requests are queued, one file per process and day, so
several workers never interleave partial lines. The drift monitor reads the files with
`pandas.read_json(lines=True)`.

While a challenger is rolled out, each line also says whose prediction it is: `role` is
`champion` or `challenger`, and `answered` is false for a shadow prediction (scored, never
returned). Lines written before rollouts existed have neither field: they are the champion's,
answered. A request split between the two models (a canary batch) is logged as two requests
whose `rows` give each record's place in the original request.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


class PredictionLog:
    """Appends prediction records to JSON-lines files from a background thread."""

    def __init__(self, folder: Path, flush_seconds: float = 1.0, max_buffer: int = 5_000) -> None:
        self.folder = folder
        self.flush_seconds, self.max_buffer = flush_seconds, max_buffer
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, request: dict[str, Any]) -> None:
        """Queue one request; `inputs` and `outputs` are parallel lists. Cheap on purpose."""
        with self._lock:
            self._buffer.append(request)
            full = len(self._buffer) >= self.max_buffer
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write what is queued now; returns how many records were written."""
        with self._lock:
            requests, self._buffer = self._buffer, []
        if not requests:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        day = datetime.now(UTC).strftime("%Y%m%d")
        path = self.folder / f"predictions-{day}-{os.getpid()}.jsonl"
        lines = [orjson.dumps(row, default=str) for request in requests for row in _rows(request)]
        with path.open("ab") as handle:
            handle.write(b"\n".join(lines) + b"\n")
        return len(lines)

    def close(self) -> None:
        """Flush and stop the background thread."""
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:  # background thread
        while not self._stopped:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except OSError:
                time.sleep(self.flush_seconds)  # a full disk must not kill the service


def _rows(request: dict[str, Any]) -> list[dict[str, Any]]:
    moment = datetime.fromtimestamp(request["timestamp"], UTC).isoformat()
    common = {k: request[k] for k in ("request_id", "endpoint", "model_version", "latency_ms")}
    common["role"] = request.get("role", "champion")
    common["answered"] = request.get("answered", True)
    inputs, rows = request["inputs"], request.get("rows")
    if rows is None:
        rows = range(len(request["outputs"]))
    else:  # a part of the request: its records, picked from the whole request's inputs
        every = list(inputs)
        inputs = [every[i] for i in rows]
    return [
        {**common, "row": i, "timestamp": moment, "inputs": record, "output": output}
        for i, record, output in zip(rows, inputs, request["outputs"], strict=True)
    ]
