"""Fast, incremental materialization into the online store, keeping Feast's registry and reads.

Feast's shipped path converts every value to a protobuf object in Python and upserts it with
one SQL statement each (about 4-6k entity rows/s into SQLite here), and rewrites every entity
each time. The online store only ever serves an entity's newest row, so this path:

1. keeps only the newest row per entity (vectorised);
2. compares each newest row's hash with the state recorded at the last write
   (`online_state.py`) and writes only the entities that changed, removing those that left
   the offline table; a full rewrite on request, or when the state cannot be trusted;
3. for the SQLite store, serialises entity keys and values straight to the bytes Feast's
   `SqliteOnlineStore` itself writes (verified byte for byte against Feast in the tests) and
   writes them in one transaction through Feast's own connection (`sqlite_write.py`); for a
   Redis server the same serialisers feed pipelined `HSET`s (`redis_write.py`); any other
   online store goes through `FeatureStore.write_to_online_store`, always in full;
4. records the window in the registry (`apply_materialization`), so `feast` sees the view as
   materialized and incremental materialization continues from there.

Reads are untouched: `get_online_features` and `online_read` read what this wrote.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

# Modules, not functions: the fault tests replace a writer on its module to inject failures.
from mlops_assets.core.entity_keys import column_keys, is_text
from mlops_assets.features import online_state, redis_write, sqlite_write

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView


@dataclass(frozen=True)
class OnlineWrite:
    """What one materialization wrote."""

    entities: int  # entities in the offline table (newest rows)
    written: int  # entities upserted by this write
    deleted: int  # entities removed: the state held them, the offline table no longer does
    mode: str  # "full" or "incremental"
    reason: str
    input_rows: int
    start: datetime
    end: datetime
    seconds: float
    path: str

    @property
    def skipped(self) -> int:
        """Entities left as they were: their newest row had not changed."""
        return self.entities - self.written


def newest_per_entity(frame: pd.DataFrame, key: str, timestamp: str) -> pd.DataFrame:
    """The newest row of every entity, sorted by key (ties: the later row wins), vectorised."""
    times = frame[timestamp].to_numpy(dtype="datetime64[ns]").view(np.int64)
    codes, _ = pd.factorize(frame[key], sort=True)  # text keys too: lexsort needs numbers
    order = np.lexsort((np.arange(len(frame)), times, codes))
    ordered = frame.iloc[order]
    keys = ordered[key].to_numpy()
    last = np.r_[keys[1:] != keys[:-1], True]
    return ordered.iloc[np.flatnonzero(last)].reset_index(drop=True)


def materialize_newest(
    store: FeatureStore,
    view: FeatureView,
    frame: pd.DataFrame,
    key: str,
    timestamp: str,
    *,
    state_dir: Path,
    full: bool = False,
) -> OnlineWrite:
    """Write the entities whose newest feature row changed, and record the window.

    `full` rewrites every entity whatever the recorded state says.
    """
    if frame.empty:
        raise ValueError(f"feature table for {view.name!r} is empty: nothing to materialize")
    started = time.perf_counter()
    newest = newest_per_entity(frame, key, timestamp)
    writer = _writer(store)
    if writer is None:
        store.write_to_online_store(view.name, newest)
        kind = store.config.online_store.type
        changes = online_state.Changes(
            np.ones(len(newest), dtype=bool),
            np.empty(0, dtype=object),
            "full",
            f"the {kind} online store is always rewritten in full",
        )
    else:
        changes = _write_changes(store, view, writer, newest, key, timestamp, state_dir, full)
    start = frame[timestamp].min().to_pydatetime()
    end = frame[timestamp].max().to_pydatetime()
    store.registry.apply_materialization(view, store.project, start, end)
    return OnlineWrite(
        entities=len(newest),
        written=changes.written,
        deleted=len(changes.deleted),
        mode=changes.mode,
        reason=changes.reason,
        input_rows=len(frame),
        start=start,
        end=end,
        seconds=time.perf_counter() - started,
        path=_describe(store),
    )


def _write_changes(
    store: FeatureStore,
    view: FeatureView,
    writer: Any,
    newest: pd.DataFrame,
    key: str,
    timestamp: str,
    state_dir: Path,
    full: bool,
) -> online_state.Changes:
    """Write what changed since the recorded state, then record the new state."""
    keys = column_keys(newest[key])
    hashes = online_state.row_hashes(newest, [timestamp, *(f.name for f in view.features)])
    path = online_state.state_path(state_dir, store, view)
    fingerprint = online_state.fingerprint(store, view, text_keys=is_text(keys))
    changes = online_state.plan_changes(
        keys,
        hashes,
        online_state.load_state(path),
        store_token=writer.read_token(store, view),
        current_fingerprint=fingerprint,
        full=full,
    )
    token = online_state.new_token()
    writer.write(
        store,
        view,
        newest.loc[changes.write],
        key,
        timestamp,
        deleted=changes.deleted,
        token=token,
        replace_all=changes.mode == "full",
    )
    online_state.save_state(path, online_state.OnlineState(keys, hashes, token, fingerprint))
    return changes


def _writer(store: FeatureStore) -> Any:
    """The fast writer module of the configured online store (None: Feast's own write)."""
    if store.config.online_store.type == "sqlite":
        return sqlite_write
    if redis_write.supports_fast_write(store):
        return redis_write
    return None


def _describe(store: FeatureStore) -> str:
    online = store.config.online_store
    return str(online.path) if online.type == "sqlite" else str(online.type)
