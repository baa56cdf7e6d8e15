"""Applying the Feast objects only when they changed.

`feast apply` re-validates the source and re-plans the online store's infrastructure on every
call, whatever changed. The objects are built from the dataset spec, so a hash of their
definitions (Feast's own protobuf form, without the timestamps Feast stamps on them) says
whether the registry already holds them: the feature view carries the hash as a tag, and the
apply is skipped when the registry's view carries the same one, the entity and the feature
service are there too, and the online store has the view's table.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from mlops_assets.features import sqlite_write

if TYPE_CHECKING:
    from feast import FeatureStore

    from mlops_assets.features.feast_repo import FeastDefinitions

DEFINITIONS_TAG = "definitions_hash"


def definitions_hash(definitions: FeastDefinitions) -> str:
    """SHA-256 of the objects' protobuf definitions, minus Feast's `meta` timestamps."""
    from google.protobuf.json_format import MessageToDict

    documents = [_without_meta(MessageToDict(o.to_proto())) for o in definitions.in_apply_order()]
    return hashlib.sha256(json.dumps(documents, sort_keys=True).encode()).hexdigest()


def tag_view(definitions: FeastDefinitions, digest: str) -> None:
    """Carry the hash on the feature view, so the registry records what was applied."""
    definitions.view.tags[DEFINITIONS_TAG] = digest


def already_applied(store: FeatureStore, definitions: FeastDefinitions, digest: str) -> bool:
    """Whether the registry and the online store already hold exactly these definitions."""
    from feast.errors import FeastObjectNotFoundException

    try:
        view = store.get_feature_view(definitions.view.name)
        store.get_entity(definitions.entity.name)
        store.get_feature_service(definitions.service.name)
    except FeastObjectNotFoundException:
        return False
    return view.tags.get(DEFINITIONS_TAG) == digest and _online_ready(store, view)


def _online_ready(store: FeatureStore, view: Any) -> bool:
    """The view's online table exists (SQLite); Redis needs none; other stores: unknown."""
    kind = store.config.online_store.type
    if kind == "sqlite":
        return sqlite_write.table_exists(store, view)
    return kind == "redis"


def _without_meta(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_meta(v) for k, v in node.items() if k != "meta"}
    if isinstance(node, list):
        return [_without_meta(v) for v in node]
    return node
