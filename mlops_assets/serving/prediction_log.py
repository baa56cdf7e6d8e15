"""Buffered prediction log: JSON lines under `MLOPS_HOME/predictions/`, read in bulk later.

Requests only append to an in-memory list (no I/O on the hot path); a background thread
flushes it every `flush_seconds` or once it holds `max_buffer` entries, one file per process
and day, so several workers never interleave partial lines. The drift monitor reads the files
with `pandas.read_json(lines=True)`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


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

    def append(self, entries: list[dict[str, Any]]) -> None:
        """Queue records; cheap enough for the request path."""
        with self._lock:
            self._buffer.extend(entries)
            full = len(self._buffer) >= self.max_buffer
        if full:
            self._wake.set()

    def flush(self) -> int:
        """Write what is queued now; returns how many records were written."""
        with self._lock:
            entries, self._buffer = self._buffer, []
        if not entries:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        day = datetime.now(UTC).strftime("%Y%m%d")
        path = self.folder / f"predictions-{day}-{os.getpid()}.jsonl"
        payload = "".join(json.dumps(e, default=str, separators=(",", ":")) + "\n" for e in entries)
        with path.open("a") as handle:
            handle.write(payload)
        return len(entries)

    def close(self) -> None:
        """Flush and stop the background thread."""
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except OSError:
                time.sleep(self.flush_seconds)  # a full disk must not kill the service
