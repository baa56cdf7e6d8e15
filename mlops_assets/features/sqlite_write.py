"""Bulk writes into Feast's SQLite online store, in the rows Feast itself writes.

One transaction, many rows per prepared statement, rows in primary-key order, a large page
cache, write-ahead logging and no fsync: Feast's own path upserts one statement per value. The
store is rebuilt from the offline data by a full rewrite, so durability against a power cut is
not worth an fsync per commit; write-ahead logging keeps the file consistent if the process
dies, and lets the service keep reading while a write is under way. The table and the
connection are Feast's (reached through `feast_internals.py`), so Feast's reads see exactly
what this wrote. The token of the write (`online_state.py`) is a row of the same table, under
a key no entity serialises to, committed with the data.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops_assets.core.entity_keys import column_keys, is_text
from mlops_assets.features import feast_internals
from mlops_assets.features.value_encoding import (
    epoch_seconds,
    serialize_doubles,
    serialize_keys,
    serialize_strings,
)

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

BULK_CACHE_KIB = 256 * 1024  # SQLite page cache during a bulk write (the default is 2 MiB)
ROWS_PER_STATEMENT = 64  # 384 parameters a statement, far below SQLite's limit
ENTITIES_PER_BLOCK = 65_536  # bounds the memory of the parameter lists
# Serialised entity keys start with their key count as a little-endian int (b"\x01\0\0\0"),
# so this key never collides with an entity's; Feast reads only the keys it is asked for.
TOKEN_KEY = b"mlops:online_state"
TOKEN_FEATURE = "token"
COLUMNS = "entity_key, feature_name, value, value_text, event_ts, created_ts"


def table_exists(store: FeatureStore, view: FeatureView) -> bool:
    """Whether `feast apply` created the view's table in this online store."""
    import sqlite3

    connection = feast_internals.sqlite_connection(store)
    try:
        connection.execute(f"SELECT 1 FROM {feast_internals.sqlite_table(store, view)} LIMIT 1")
    except sqlite3.OperationalError:
        return False
    return True


def read_token(store: FeatureStore, view: FeatureView) -> str | None:
    """The token of the last write recorded in the view's table (None: none, or no table)."""
    import sqlite3

    connection = feast_internals.sqlite_connection(store)
    table = feast_internals.sqlite_table(store, view)
    try:
        row = connection.execute(
            f"SELECT value FROM {table} WHERE entity_key = ? AND feature_name = ?",
            (TOKEN_KEY, TOKEN_FEATURE),
        ).fetchone()
    except sqlite3.OperationalError:  # no table yet: nothing was ever written
        return None
    return bytes(row[0]).decode() if row else None


def write(
    store: FeatureStore,
    view: FeatureView,
    rows: pd.DataFrame,
    key: str,
    timestamp: str,
    *,
    deleted: np.ndarray,
    token: str,
    replace_all: bool,
) -> None:
    """Upsert `rows` (one per entity), remove `deleted` entities, record `token`: one commit.

    `replace_all` empties the table first, so entities nobody recorded are gone too.
    """
    connection = feast_internals.sqlite_connection(store)
    table = feast_internals.sqlite_table(store, view)
    _fast_pragmas(connection)
    connection.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    with connection:
        if replace_all:
            connection.execute(f"DELETE FROM {table}")
        elif len(deleted):
            gone = serialize_keys(key, deleted)
            delete = f"DELETE FROM {table} WHERE entity_key = ?"
            connection.executemany(delete, ((k,) for k in gone))
        _upsert(connection, table, view, rows, key, timestamp, plain_insert=replace_all)
        connection.execute(
            f"INSERT INTO {table} ({COLUMNS}) VALUES (?, ?, ?, NULL, NULL, NULL) "
            "ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value",
            (TOKEN_KEY, TOKEN_FEATURE, token.encode()),
        )


def _fast_pragmas(connection: Any) -> None:
    """Write-ahead logging (kept by the file) and no fsync (this connection only).

    Switching to WAL needs a moment with no other connection mid-transaction; if a reader is,
    the write goes ahead in the file's current mode and the switch happens on a later write.
    """
    import sqlite3

    with contextlib.suppress(sqlite3.OperationalError):
        connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = OFF")


def _upsert(
    connection: Any,
    table: str,
    view: FeatureView,
    rows: pd.DataFrame,
    key: str,
    timestamp: str,
    *,
    plain_insert: bool,
) -> None:
    if rows.empty:
        return
    rows, keys = _in_key_order(rows, key)
    features = sorted(view.features, key=lambda f: f.name)
    sql = _statement(table, ROWS_PER_STATEMENT, plain_insert)
    for start in range(0, len(rows), ENTITIES_PER_BLOCK):
        block = slice(start, start + ENTITIES_PER_BLOCK)
        parameters = _block_parameters(rows.iloc[block], keys[block], features, timestamp)
        _execute_multirow(connection, table, sql, parameters, plain_insert)


def _in_key_order(rows: pd.DataFrame, key: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows in primary-key order (entity key bytes), with their serialised keys.

    Rows in primary-key order (then feature name) turn SQLite's B-tree inserts into appends;
    random order is several times slower on large tables. An integer key's bytes end with its
    little-endian value, so byte order is the byte-swapped value's order; text keys are sorted
    by their bytes.
    """
    values = column_keys(rows[key])
    if not is_text(values):
        order = np.argsort(values.astype("<i8").view("<u8").byteswap(), kind="stable")
        return rows.iloc[order], np.array(serialize_keys(key, values[order]), dtype=object)
    keys = np.array(serialize_keys(key, values), dtype=object)
    order = np.argsort(keys, kind="stable")
    return rows.iloc[order], keys[order]


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


def _execute_multirow(
    connection: Any, table: str, sql: str, parameters: list[Any], plain_insert: bool
) -> None:
    """Many rows per statement: SQLite's per-statement cost dominates otherwise."""
    width = 6 * ROWS_PER_STATEMENT
    full = len(parameters) // width * width
    if full:
        connection.executemany(sql, (parameters[i : i + width] for i in range(0, full, width)))
    rest = parameters[full:]
    if rest:
        connection.execute(_statement(table, len(rest) // 6, plain_insert), rest)


def _statement(table: str, rows: int, plain_insert: bool) -> str:
    placeholders = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    insert = f"INSERT INTO {table} ({COLUMNS}) VALUES {placeholders}"
    if plain_insert:  # the table was just emptied: nothing to conflict with
        return insert
    return (
        f"{insert} ON CONFLICT(entity_key, feature_name) DO UPDATE SET value = excluded.value, "
        "value_text = excluded.value_text, event_ts = excluded.event_ts, "
        "created_ts = excluded.created_ts"
    )
