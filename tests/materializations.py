"""What a run recorded about one asset: its materialization's metadata as plain values."""

from __future__ import annotations

from typing import Any

import dagster as dg


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    """The metadata of the one materialization of `asset` in `result`, as plain values.

    Fails (unpacking) unless the run materialized `asset` exactly once, so a test never reads
    the wrong event.
    """
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    ]
    return {key: value.value for key, value in event.materialization.metadata.items()}
