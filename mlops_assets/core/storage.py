"""Atomic Parquet files and content fingerprints, so no reader ever sees a half-written table."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pandas as pd


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> Path:
    """Write to a hidden temporary file beside `path`, then rename over it in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        frame.to_parquet(temporary, index=False)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def write_json_atomic(document: Any, path: Path) -> Path:
    """Same promise as `write_parquet_atomic`, for small JSON documents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_json(path: Path) -> Any:
    """Read a JSON document written by `write_json_atomic`."""
    return json.loads(path.read_text())


def content_hash(frame: pd.DataFrame) -> str:
    """SHA-256 over column names, dtypes and every value, in order.

    Vectorised through pandas' row hashing, so a million rows take well under a second; used as
    the lineage key that every later artifact carries.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    if len(frame):
        row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        digest.update(row_hashes.tobytes())
    return digest.hexdigest()
