"""What the online store holds, per entity, so a materialization writes only what changed.

After each write the platform keeps, beside the offline data, one row per entity: its key and
a hash of the newest offline row it wrote (event time and every feature value). The next
materialization hashes the newest rows again and writes only the entities whose hash differs
(new entities, newer rows, and rows whose values a replaced delivery changed at the same time),
and removes entities that have left the offline table.

The state is trusted only while it describes the store it was written for: each write leaves
a fresh token both in the store (in the same transaction as the data, for SQLite) and in the
state file. A store rebuilt, flushed or written by another state folder no longer carries the
state's token, and the next materialization rewrites everything. So does a change of the
feature view's definition (the fingerprint below).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlops_assets.core.entity_keys import column_keys
from mlops_assets.core.storage import write_parquet_atomic

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

STATE_FORMAT = 1  # bump when the row hash or the layout written changes
KEY, HASH = "entity", "row_hash"


@dataclass(frozen=True)
class OnlineState:
    """Entities the online store holds (sorted keys) with their rows' hashes, and its token."""

    keys: np.ndarray
    hashes: np.ndarray
    token: str
    fingerprint: str


@dataclass(frozen=True)
class Changes:
    """Which newest rows to write and which entities to remove, and why."""

    write: np.ndarray  # boolean mask over the newest rows
    deleted: np.ndarray  # entity keys the store holds that the offline table no longer has
    mode: str  # "full" or "incremental"
    reason: str

    @property
    def written(self) -> int:
        """How many entities this write upserts."""
        return int(np.count_nonzero(self.write))


def new_token() -> str:
    """A token naming one write; stored in the online store and in the state."""
    return uuid.uuid4().hex


def fingerprint(store: FeatureStore, view: FeatureView, *, text_keys: bool = False) -> str:
    """Identity of what an online row means: project, view, its typed features, the store.

    Text keys are named only when used, so integer-keyed states written before keep matching.
    """
    config = store.config
    document = {
        "format": STATE_FORMAT,
        "project": config.project,
        "view": view.name,
        "join_keys": list(view.join_keys),
        "features": sorted([f.name, str(f.dtype)] for f in view.features),
        "online_store": config.online_store.type,
        "entity_key_serialization": config.entity_key_serialization_version,
    }
    if text_keys:
        document["join_key_type"] = "string"
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def row_hashes(newest: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's event time and feature values, vectorised."""
    return pd.util.hash_pandas_object(newest[columns], index=False).to_numpy()


def state_path(folder: Path, store: FeatureStore, view: FeatureView) -> Path:
    """The state file of one view in one project."""
    return folder / f"{store.config.project}.{view.name}.parquet"


def load_state(path: Path) -> OnlineState | None:
    """The state written last time, or None (never written, or unreadable: rewrite all)."""
    if not path.exists():
        return None
    try:
        frame = pd.read_parquet(path)
        return OnlineState(
            keys=column_keys(frame[KEY]),
            hashes=frame[HASH].to_numpy(dtype=np.uint64),
            token=str(frame.attrs["token"]),
            fingerprint=str(frame.attrs["fingerprint"]),
        )
    except (OSError, KeyError, ValueError):
        return None


def save_state(path: Path, state: OnlineState) -> None:
    """Replace the state file in one step (a reader sees the old state or the new one)."""
    frame = pd.DataFrame({KEY: state.keys, HASH: state.hashes})
    frame.attrs = {"token": state.token, "fingerprint": state.fingerprint}
    write_parquet_atomic(frame, path)


def plan_changes(
    keys: np.ndarray,
    hashes: np.ndarray,
    previous: OnlineState | None,
    *,
    store_token: str | None,
    current_fingerprint: str,
    full: bool,
) -> Changes:
    """Compare the newest rows (sorted unique `keys`) with the state the store is known to hold.

    Entities the state lists and the offline table lacks are removed in every mode, so a full
    rewrite and an incremental write end in the same online state.
    """
    deleted = np.empty(0, dtype=keys.dtype)
    if previous is not None:
        deleted = previous.keys[~np.isin(previous.keys, keys, assume_unique=True)]
    reason = _full_rewrite_reason(previous, store_token, current_fingerprint, full)
    if reason or previous is None:
        return Changes(np.ones(len(keys), dtype=bool), deleted, "full", reason)
    position = np.searchsorted(previous.keys, keys)
    inside = position < len(previous.keys)
    clipped = np.minimum(position, max(len(previous.keys) - 1, 0))
    known = inside & (previous.keys[clipped] == keys) if len(previous.keys) else inside
    unchanged = known & (previous.hashes[clipped] == hashes)
    return Changes(~unchanged, deleted, "incremental", "changed entities only")


def _full_rewrite_reason(
    previous: OnlineState | None, store_token: str | None, current: str, full: bool
) -> str:
    if full:
        return "full rewrite requested"
    if previous is None:
        return "no record of an earlier write"
    if previous.fingerprint != current:
        return "the feature view's definition changed"
    if store_token != previous.token:
        return "the online store does not hold the recorded write (rebuilt or written elsewhere)"
    return ""
