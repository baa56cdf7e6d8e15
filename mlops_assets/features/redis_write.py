"""Fast materialization into Feast's Redis online store, in the exact layout Feast reads.

Feast's `write_to_online_store` builds a protobuf object per value in Python and, before
writing, reads every entity's stored timestamp back in a second round trip. Here the values
are serialised once per column with numpy (the same serialisers as the SQLite path) and each
entity's hash is written with one `HSET` in large pipelines: one round trip a block.

The layout is Feast's own (`RedisOnlineStore.online_write_batch`): the key is the serialised
entity key followed by the project name; each feature is a field named by the murmur3 hash of
`view:feature` holding the `Value` bytes, and `_ts:view` holds the event time as a protobuf
`Timestamp`. The tests compare every hash with what Feast writes, byte for byte. Feast's
timestamp check is not needed: only each entity's newest row is written, from the full table.

The token of the write (`online_state.py`) is a plain string key beside the hashes, set after
the data: a run killed before it leaves the previous token, whose state then still lists every
entity this run had to write, so the next run writes them again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlops_assets.core.entity_keys import column_keys
from mlops_assets.features import feast_internals
from mlops_assets.features.value_encoding import (
    serialize_doubles,
    serialize_keys,
    serialize_strings,
    timestamps,
)

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

ENTITIES_PER_PIPELINE = 5_000
TOKEN_PREFIX = "mlops:online_state"


def supports_fast_write(store: FeatureStore) -> bool:
    """A single Redis server (not Cluster or Sentinel, whose clients route keys differently)."""
    online = store.config.online_store
    return online.type == "redis" and str(getattr(online.redis_type, "value", "")) == "redis"


def read_token(store: FeatureStore, view: FeatureView) -> str | None:
    """The token of the last write recorded in Redis (None: none, or the server was emptied)."""
    token = feast_internals.redis_client(store).get(_token_key(store, view))
    return token.decode() if token is not None else None


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
    """Upsert `rows` (one per entity), remove `deleted` entities, then record `token`.

    Redis cannot swap a whole view at once, so a full rewrite (`replace_all`) overwrites every
    entity in place and removes those the state knew of; serving never sees an empty view.
    """
    del replace_all  # the same writes either way: every given row is overwritten
    redis_upsert(store, view, rows, key, timestamp)
    client = feast_internals.redis_client(store)
    if len(deleted):
        _remove(store, view, client, key, deleted)
    client.set(_token_key(store, view), token.encode())


def _token_key(store: FeatureStore, view: FeatureView) -> str:
    name = feast_internals.redis_view_name(view, store.config)
    return f"{TOKEN_PREFIX}:{store.config.project}:{name}"


def _remove(store: FeatureStore, view: FeatureView, client, key: str, keys: np.ndarray) -> None:
    """Delete the view's fields of each entity (Redis drops a hash once it is empty)."""
    name = feast_internals.redis_view_name(view, store.config)
    fields = [f"_ts:{name}".encode()]
    fields += [feast_internals.redis_field(f"{name}:{f.name}") for f in view.features]
    project = store.config.project.encode()
    for start in range(0, len(keys), ENTITIES_PER_PIPELINE):
        block = keys[start : start + ENTITIES_PER_PIPELINE]
        with client.pipeline(transaction=False) as pipe:
            for entity in serialize_keys(key, block):
                pipe.hdel(entity + project, *fields)
            pipe.execute()


def redis_upsert(
    store: FeatureStore, view: FeatureView, newest: pd.DataFrame, key: str, timestamp: str
) -> None:
    """Write each row of `newest` (one per entity) as its entity's hash."""
    from feast.types import String

    if newest.empty:
        return
    config = store.config
    client = feast_internals.redis_client(store)
    name = feast_internals.redis_view_name(view, config)
    project = config.project.encode()
    keys = [k + project for k in serialize_keys(key, column_keys(newest[key]))]
    fields: list[tuple[bytes, list[bytes]]] = [
        (f"_ts:{name}".encode(), timestamps(newest[timestamp]))
    ]
    for feature in view.features:
        column = newest[feature.name]
        if feature.dtype == String:
            values, _ = serialize_strings(column)
        else:
            values, _ = serialize_doubles(column.to_numpy(dtype="float64", na_value=np.nan))
        fields.append((feast_internals.redis_field(f"{name}:{feature.name}"), values))
    ttl = config.online_store.key_ttl_seconds
    for start in range(0, len(keys), ENTITIES_PER_PIPELINE):
        with client.pipeline(transaction=False) as pipe:
            for row in range(start, min(start + ENTITIES_PER_PIPELINE, len(keys))):
                pipe.hset(keys[row], mapping={field: values[row] for field, values in fields})
                if ttl:
                    pipe.expire(name=keys[row], time=ttl)
            pipe.execute()
