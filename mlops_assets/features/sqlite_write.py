"""Bulk upsert into Feast's SQLite online store, in the rows Feast itself writes.

One transaction, many rows per statement, rows in primary-key order, and a large page cache:
Feast's own path upserts one statement per value. The table and the connection are Feast's
(reached through `feast_internals.py`), so Feast's reads see exactly what this wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops_assets.features import feast_internals
from mlops_assets.features.value_encoding import (
    epoch_seconds,
    serialize_doubles,
    serialize_int64_keys,
    serialize_strings,
)

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

BULK_CACHE_KIB = 256 * 1024  # SQLite page cache during a bulk upsert (the default is 2 MiB)
ROWS_PER_STATEMENT = 64  # 384 parameters a statement, far below SQLite's limit
ENTITIES_PER_BLOCK = 65_536  # bounds the memory of the parameter lists


def sqlite_upsert(
    store: FeatureStore, view: FeatureView, newest: pd.DataFrame, key: str, timestamp: str
) -> None:
    """Write each row of `newest` (one per entity) as its entity's online rows."""
    connection = feast_internals.sqlite_connection(store)
    table = feast_internals.sqlite_table(store, view)
    keys = serialize_int64_keys(key, newest[key].to_numpy(dtype=np.int64))
    # Rows in primary-key order (entity key bytes, then feature name) turn SQLite's B-tree
    # inserts into appends; random order is several times slower on large tables.
    order = np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)
    newest = newest.iloc[order].reset_index(drop=True)
    keys_in_order = np.array(keys, dtype=object)[order]
    features = sorted(view.features, key=lambda f: f.name)
    connection.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    with connection:
        for start in range(0, len(newest), ENTITIES_PER_BLOCK):
            block = slice(start, start + ENTITIES_PER_BLOCK)
            parameters = _block_parameters(
                newest.iloc[block], keys_in_order[block], features, timestamp
            )
            _execute_multirow(connection, table, parameters)


def _block_parameters(
    block: pd.DataFrame, keys: np.ndarray, features: list[Any], timestamp: str
) -> list[Any]:
    """Flat statement parameters, entity-major, six per online-store row."""
    from feast.types import String

    rows = np.empty((len(block), len(features), 6), dtype=object)
    rows[:, :, 0] = keys[:, None]
    rows[:, :, 1] = np.array([f.name for f in features], dtype=object)[None, :]
    rows[:, :, 4] = np.asarray(epoch_seconds(block[timestamp]), dtype=object)[:, None]
    rows[:, :, 5] = None
    for position, feature in enumerate(features):
        column = block[feature.name]
        if feature.dtype == String:
            values, texts = serialize_strings(column)
        else:
            values, texts = serialize_doubles(column.to_numpy(dtype="float64", na_value=np.nan))
        rows[:, position, 2] = values
        rows[:, position, 3] = texts
    return rows.ravel().tolist()


def _execute_multirow(connection: Any, table: str, parameters: list[Any]) -> None:
    """Upsert with many rows per statement: SQLite's per-statement cost dominates otherwise."""
    width = 6 * ROWS_PER_STATEMENT
    full = len(parameters) // width * width
    if full:
        chunks = (parameters[i : i + width] for i in range(0, full, width))
        connection.executemany(_upsert_sql(table, ROWS_PER_STATEMENT), chunks)
    rest = parameters[full:]
    if rest:
        connection.execute(_upsert_sql(table, len(rest) // 6), rest)


def _upsert_sql(table: str, rows: int) -> str:
    placeholders = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    return (
        f"INSERT INTO {table} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
        f"VALUES {placeholders} "
        "ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, "
        "value_text = excluded.value_text, event_ts = excluded.event_ts, "
        "created_ts = excluded.created_ts"
    )
