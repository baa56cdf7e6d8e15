"""The fast Redis write leaves exactly the bytes Feast's own write leaves, on a real server."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.features.feast_repo import build_definitions, feature_store
from mlops_assets.features.online_lookup import OnlineFeatureLookup
from mlops_assets.features.online_write import materialize_newest, newest_per_entity
from mlops_assets.features.redis_write import supports_fast_write
from mlops_assets.paths import PlatformPaths
from mlops_assets.profile import active_profile
from mlops_assets.sources import SyntheticConfig, generate_house_sales
from mlops_assets.spec import DatasetSpec
from tests.production.conftest import Servers, fresh_production_env

pytestmark = pytest.mark.server


def _snapshot(client: Any) -> dict[bytes, Any]:
    return {
        key: client.hgetall(key) if client.type(key) == b"hash" else client.get(key)
        for key in client.scan_iter(count=1000)
    }


def _redis_store(servers: Servers, tmp_path: Path, house_spec: DatasetSpec, monkeypatch):
    for name, value in fresh_production_env(servers).items():
        monkeypatch.setenv(name, value)
    paths = PlatformPaths(tmp_path / "home")
    store = feature_store(paths, active_profile())
    definitions = build_definitions(house_spec, paths)
    store.apply(definitions.in_apply_order())
    return store, definitions


def test_fast_write_matches_feast_byte_for_byte(
    servers: Servers, tmp_path: Path, house_spec: DatasetSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, definitions = _redis_store(servers, tmp_path, house_spec, monkeypatch)
    features = engineer(generate_house_sales(SyntheticConfig(rows=3000, seed=11)), house_spec)
    features.loc[features.index[:7], "lot_size"] = np.nan  # missing values: empty Value bytes
    features["event_timestamp"] += pd.to_timedelta(np.arange(len(features)) * 1234, unit="us")
    newest = newest_per_entity(features, house_spec.entity_key, house_spec.event_timestamp)
    client = servers.redis.client()

    store.write_to_online_store(definitions.view.name, newest)  # Feast's own path
    feast_wrote = _snapshot(client)
    client.flushall()
    assert supports_fast_write(store)  # so the write below is the platform's own
    written = materialize_newest(
        store,
        definitions.view,
        features,
        house_spec.entity_key,
        house_spec.event_timestamp,
        state_dir=tmp_path / "state",
    )
    ours = _snapshot(client)
    token = ours.pop(f"mlops:online_state:{store.project}:{definitions.view.name}".encode())
    assert token and written.mode == "full"
    assert ours == feast_wrote
    assert len(feast_wrote) == len(newest)

    lookup = OnlineFeatureLookup(store, house_spec).lookup(newest[house_spec.entity_key].tolist())
    assert lookup.unknown == [] and np.isnan(lookup.matrix).sum() > 0


def test_incremental_write_touches_only_changed_entities_and_removes_gone_ones(
    servers: Servers, tmp_path: Path, house_spec: DatasetSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, definitions = _redis_store(servers, tmp_path, house_spec, monkeypatch)
    key, ts = house_spec.entity_key, house_spec.event_timestamp
    features = engineer(generate_house_sales(SyntheticConfig(rows=2000, seed=3)), house_spec)
    state = tmp_path / "state"
    first = materialize_newest(store, definitions.view, features, key, ts, state_dir=state)
    assert first.mode == "full" and first.written == features[key].nunique()
    client = servers.redis.client()
    newest = newest_per_entity(features, key, ts)
    changed, gone = newest[key].iloc[:30].tolist(), newest[key].iloc[30:40].tolist()
    later = newest[newest[key].isin(changed)].copy()
    later[ts] += pd.Timedelta(days=1)
    later["sqft"] += 1.0
    updated = pd.concat([features[~features[key].isin(gone)], later], ignore_index=True)
    client.config_resetstat()
    second = materialize_newest(store, definitions.view, updated, key, ts, state_dir=state)
    assert (second.mode, second.written, second.deleted) == ("incremental", 30, 10)
    commands = client.info("commandstats")
    assert commands["cmdstat_hset"]["calls"] == 30  # one HSET an entity written
    assert commands["cmdstat_hdel"]["calls"] == 10
    lookup = OnlineFeatureLookup(store, house_spec)
    assert lookup.lookup(gone).unknown == gone
    expected = newest_per_entity(updated, key, ts)
    result = lookup.lookup(expected[key].tolist())
    np.testing.assert_array_equal(result.matrix, to_matrix(expected, house_spec))


def test_fast_write_of_text_keys_matches_feast_byte_for_byte(
    servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Companies keyed by name: Feast's STRING entity keys, written and removed by name."""
    from tests.integration.test_text_keys import COMPANIES, _spec, company_panel

    spec = _spec(tmp_path)
    store, definitions = _redis_store(servers, tmp_path, spec, monkeypatch)
    panel = company_panel(range(2015, 2019))
    panel["year_end"] = pd.to_datetime(panel["year_end"], utc=True)
    features = engineer(panel, spec).astype({"sector": "string"})
    features.loc[features.index[:5], "revenue"] = np.nan
    newest = newest_per_entity(features, "company", "year_end")
    client = servers.redis.client()

    store.write_to_online_store(definitions.view.name, newest)  # Feast's own path
    feast_wrote = _snapshot(client)
    client.flushall()
    state = tmp_path / "state"
    written = materialize_newest(
        store, definitions.view, features, "company", "year_end", state_dir=state
    )
    ours = _snapshot(client)
    ours.pop(f"mlops:online_state:{store.project}:{definitions.view.name}".encode())
    assert written.mode == "full" and ours == feast_wrote
    assert len(feast_wrote) == len(COMPANIES)

    gone = COMPANIES[:3]
    kept = features[~features["company"].isin(gone)]
    second = materialize_newest(
        store, definitions.view, kept, "company", "year_end", state_dir=state
    )
    assert (second.mode, second.written, second.deleted) == ("incremental", 0, 3)
    lookup = OnlineFeatureLookup(store, spec)
    assert lookup.lookup(gone).unknown == gone
    assert lookup.lookup(COMPANIES[3:]).keys == COMPANIES[3:]
