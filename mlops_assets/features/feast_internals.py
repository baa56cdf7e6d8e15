"""Every use of Feast's private API, in one place.

The fast online writes and the by-key lookup need a few things Feast does not expose publicly:
its provider (for `online_read` without the public API's per-call overhead), the online store's
SQLite connection and table name, its Redis client, and the names and field hashes of Feast's
Redis layout. Feast may move any of them in a minor release, so they are reached only through
this module, and `tests/unit/test_feast_internals.py` fails naming the symbol that moved.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView
    from feast.repo_config import RepoConfig

# (module, attribute) of each private function used here; methods are checked on their class.
PRIVATE_FUNCTIONS = (
    ("feast.infra.online_stores.sqlite", "_quote_id"),
    ("feast.infra.online_stores.sqlite", "_table_id"),
    ("feast.infra.online_stores.helpers", "_mmh3"),
    ("feast.infra.online_stores.redis", "_versioned_fv_name"),
)
PRIVATE_METHODS = (
    ("feast.feature_store", "FeatureStore", "_get_provider"),
    ("feast.infra.online_stores.sqlite", "SqliteOnlineStore", "_get_conn"),
    ("feast.infra.online_stores.redis", "RedisOnlineStore", "_get_client"),
)


def missing_symbols() -> list[str]:
    """The private symbols this module relies on that the installed Feast no longer has."""
    missing = []
    for module, name in PRIVATE_FUNCTIONS:
        if not hasattr(importlib.import_module(module), name):
            missing.append(f"{module}.{name}")
    for module, cls, name in PRIVATE_METHODS:
        if not hasattr(getattr(importlib.import_module(module), cls, None), name):
            missing.append(f"{module}.{cls}.{name}")
    return missing


def provider(store: FeatureStore) -> Any:
    """The store's provider, whose `online_read` the lookup calls directly."""
    return store._get_provider()


def sqlite_connection(store: FeatureStore) -> Any:
    """Feast's own `sqlite3` connection to the SQLite online store."""
    return provider(store).online_store._get_conn(store.config)


def sqlite_table(store: FeatureStore, view: FeatureView) -> str:
    """The quoted name of a view's table in the SQLite online store."""
    from feast.infra.online_stores.sqlite import _quote_id, _table_id

    config = store.config
    versioning = config.registry.enable_online_feature_view_versioning
    return _quote_id(_table_id(config.project, view, versioning))


def redis_client(store: FeatureStore) -> Any:
    """Feast's redis-py client of the Redis online store."""
    return provider(store).online_store._get_client(store.config.online_store)


def redis_view_name(view: FeatureView, config: RepoConfig) -> str:
    """The view name Feast's Redis layout uses (versioned when versioning is on)."""
    from feast.infra.online_stores.redis import _versioned_fv_name

    return _versioned_fv_name(view, config)


def redis_field(name: str) -> bytes:
    """The hash field of `view:feature` in Feast's Redis layout (murmur3 of the name)."""
    from feast.infra.online_stores.helpers import _mmh3

    return _mmh3(name)
