"""The fast Redis write leaves exactly the bytes Feast's own write leaves, on a real server."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.features import engineer
from mlops_assets.features.feast_repo import build_definitions, feature_store
from mlops_assets.features.online_lookup import OnlineFeatureLookup
from mlops_assets.features.online_write import materialize_newest, newest_per_entity
from mlops_assets.features.redis_write import supports_fast_write
from mlops_assets.paths import PlatformPaths
from mlops_assets.profile import active_profile
from mlops_assets.sources import SyntheticConfig, generate_house_sales
from mlops_assets.spec import DatasetSpec
from tests.production.conftest import Servers, fresh_production_env


def _snapshot(client: Any) -> dict[bytes, dict[bytes, bytes]]:
    return {key: client.hgetall(key) for key in client.scan_iter(count=1000)}


def test_fast_write_matches_feast_byte_for_byte(
    servers: Servers, tmp_path: Path, house_spec: DatasetSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = fresh_production_env(servers)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    paths = PlatformPaths(tmp_path / "home")
    store = feature_store(paths, active_profile())
    definitions = build_definitions(house_spec, paths)
    store.apply(definitions.in_apply_order())
    features = engineer(generate_house_sales(SyntheticConfig(rows=3000, seed=11)), house_spec)
    features.loc[features.index[:7], "lot_size"] = np.nan  # missing values: empty Value bytes
    features["event_timestamp"] += pd.to_timedelta(np.arange(len(features)) * 1234, unit="us")
    newest = newest_per_entity(features, house_spec.entity_key, house_spec.event_timestamp)
    client = servers.redis.client()

    store.write_to_online_store(definitions.view.name, newest)  # Feast's own path
    feast_wrote = _snapshot(client)
    client.flushall()
    assert supports_fast_write(store)  # so the write below is the platform's own
    materialize_newest(
        store, definitions.view, features, house_spec.entity_key, house_spec.event_timestamp
    )
    assert _snapshot(client) == feast_wrote
    assert len(feast_wrote) == len(newest)

    lookup = OnlineFeatureLookup(store, house_spec).lookup(newest[house_spec.entity_key].tolist())
    assert lookup.unknown == [] and np.isnan(lookup.matrix).sum() > 0
