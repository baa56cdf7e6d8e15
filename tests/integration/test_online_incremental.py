"""Incremental online materialization against the real SQLite online store.

SQLite triggers installed on Feast's online table log every row the platform inserts, updates
or deletes, so the tests count the writes the store really received.
"""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.features import to_matrix
from mlops_assets.features.feast_repo import FeastNames, feature_store, offline_path
from mlops_assets.features.online_lookup import OnlineFeatureLookup
from mlops_assets.features.online_write import newest_per_entity
from mlops_assets.features.sqlite_write import TOKEN_KEY
from tests.integration.conftest import failure_text
from tests.materializations import metadata

ONLINE_ASSETS = ["features", "feast_registry", "online_features"]
FIRST = {"rows": 3_000, "seed": 21}
SECOND = {"rows": 600, "seed": 5}  # the same house ids: some sales newer, some older


def _database(paths):
    return paths.root / "feast" / "online_store.db"


def _table(house_spec) -> str:
    return f"mlops_{FeastNames.for_spec(house_spec).view}"


def _log_writes(paths, house_spec) -> None:
    """Log each entity key the online table receives a row for, or loses one of."""
    table = _table(house_spec)
    with sqlite3.connect(_database(paths)) as connection:
        connection.executescript(
            f"""
            CREATE TABLE write_log (entity_key BLOB, operation TEXT);
            CREATE TRIGGER log_insert AFTER INSERT ON {table}
                BEGIN INSERT INTO write_log VALUES (new.entity_key, 'write'); END;
            CREATE TRIGGER log_update AFTER UPDATE ON {table}
                BEGIN INSERT INTO write_log VALUES (new.entity_key, 'write'); END;
            CREATE TRIGGER log_delete AFTER DELETE ON {table}
                BEGIN INSERT INTO write_log VALUES (old.entity_key, 'delete'); END;
            """
        )


def _drain_log(paths) -> tuple[set[int], set[int]]:
    """Entity keys written and deleted since the last call (decoded from Feast's key bytes)."""
    with sqlite3.connect(_database(paths)) as connection:
        rows = connection.execute(
            "SELECT DISTINCT entity_key, operation FROM write_log WHERE entity_key != ?",
            (TOKEN_KEY,),
        ).fetchall()
        connection.execute("DELETE FROM write_log")
    decoded = [(int.from_bytes(bytes(k)[-8:], "little", signed=True), op) for k, op in rows]
    written = {k for k, op in decoded if op == "write"}
    return written, {k for k, op in decoded if op == "delete"}


def _online_rows(paths, house_spec) -> list[tuple]:
    with sqlite3.connect(_database(paths)) as connection:
        return connection.execute(
            f"SELECT entity_key, feature_name, value, value_text, event_ts "
            f"FROM {_table(house_spec)} WHERE entity_key != ? ORDER BY entity_key, feature_name",
            (TOKEN_KEY,),
        ).fetchall()


def _newest(paths, house_spec) -> pd.DataFrame:
    features = pd.read_parquet(offline_path(paths, house_spec))
    return newest_per_entity(features, house_spec.entity_key, house_spec.event_timestamp)


def _changed_entities(before: pd.DataFrame, after: pd.DataFrame, house_spec) -> set[int]:
    """Entities whose newest offline row differs (new ones included)."""
    key = house_spec.entity_key
    merged = after.merge(before, on=key, how="left", suffixes=("", "_before"), indicator=True)
    changed = merged["_merge"] == "left_only"
    for name in [house_spec.event_timestamp, *house_spec.model_features]:
        now, then = merged[name].astype(object), merged[f"{name}_before"].astype(object)
        changed |= now.ne(then) & ~(pd.isna(now) & pd.isna(then))
    return set(merged.loc[changed, key].tolist())


def _assert_online_equals_offline_newest(paths, house_spec) -> None:
    newest = _newest(paths, house_spec)
    lookup = OnlineFeatureLookup(feature_store(paths), house_spec)
    result = lookup.lookup(newest[house_spec.entity_key].tolist())
    assert result.unknown == []
    np.testing.assert_array_equal(result.matrix, to_matrix(newest, house_spec))
    assert len(_online_rows(paths, house_spec)) == len(newest) * len(house_spec.model_features)


@pytest.fixture
def first_written(ingest, materialize_features, paths, house_spec):
    """One batch materialized to the online store, then every later write logged."""
    assert ingest("b1", FIRST).success
    result = materialize_features(ONLINE_ASSETS)
    assert result.success, failure_text(result)
    written = metadata(result, "online_features")
    assert (written["mode"], written["mode_reason"]) == ("full", "no record of an earlier write")
    _log_writes(paths, house_spec)
    return _newest(paths, house_spec)


def test_second_batch_writes_only_the_entities_whose_newest_row_changed(
    first_written, ingest, materialize_features, paths, house_spec
):
    assert ingest("b2", SECOND).success
    result = materialize_features(ONLINE_ASSETS)
    assert result.success, failure_text(result)
    after = _newest(paths, house_spec)
    expected = _changed_entities(first_written, after, house_spec)
    second = set(pd.read_parquet(paths.cleaned("b2"))[house_spec.entity_key])
    # Known from the data: some of the batch's sales are newer than the house's last one.
    assert 0 < len(expected) < len(second) and expected <= second
    assert _drain_log(paths) == (expected, set())
    written = metadata(result, "online_features")
    assert written["mode"] == "incremental"
    assert written["entities_written"] == len(expected)
    assert written["entities_skipped"] == len(after) - len(expected)
    assert written["entities_deleted"] == 0
    _assert_online_equals_offline_newest(paths, house_spec)


def test_nothing_changed_writes_nothing(first_written, materialize_features, paths, house_spec):
    result = materialize_features(["online_features"])
    assert result.success, failure_text(result)
    assert _drain_log(paths) == (set(), set())
    written = metadata(result, "online_features")
    assert (written["mode"], written["entities_written"]) == ("incremental", 0)
    assert written["entities_skipped"] == len(first_written)


def test_full_rewrite_writes_every_entity_and_ends_in_the_incremental_state(
    first_written, ingest, materialize_features, paths, house_spec
):
    assert ingest("b2", SECOND).success
    assert materialize_features(ONLINE_ASSETS).success
    incremental = _online_rows(paths, house_spec)
    _drain_log(paths)
    result = materialize_features(
        ["online_features"],
        run_config={"ops": {"online_features": {"config": {"full_rewrite": True}}}},
    )
    assert result.success, failure_text(result)
    newest = _newest(paths, house_spec)
    everyone = set(newest[house_spec.entity_key])
    assert _drain_log(paths) == (everyone, everyone)  # the table is emptied, then refilled
    written = metadata(result, "online_features")
    assert (written["mode"], written["mode_reason"]) == ("full", "full rewrite requested")
    assert written["entities_written"] == len(newest) and written["entities_skipped"] == 0
    assert _online_rows(paths, house_spec) == incremental


def test_replaced_batch_rewrites_entities_whose_newest_row_it_changed(
    first_written, ingest, materialize_features, paths, house_spec
):
    assert ingest("b2", SECOND).success
    assert materialize_features(ONLINE_ASSETS).success
    before = _newest(paths, house_spec)
    _drain_log(paths)
    # The same sales (keys and times) with other values: only a hash of the values sees it.
    replaced = ingest("b1", {**FIRST, "scenario": "covariate_shift", "replace": True})
    assert replaced.success, failure_text(replaced)
    result = materialize_features(ONLINE_ASSETS)
    assert result.success, failure_text(result)
    after = _newest(paths, house_spec)
    expected = _changed_entities(before, after, house_spec)
    merged = after.merge(before, on=house_spec.entity_key, suffixes=("", "_before"))
    same_time = merged["event_timestamp"] == merged["event_timestamp_before"]
    assert expected == set(
        merged.loc[same_time & (merged["sqft"] != merged["sqft_before"]), "house_id"]
    )
    assert 0 < len(expected) < len(after)  # entities whose newest sale is in b2 stay as they were
    assert _drain_log(paths) == (expected, set())
    assert metadata(result, "online_features")["entities_written"] == len(expected)
    _assert_online_equals_offline_newest(paths, house_spec)


def test_entities_gone_from_the_offline_table_are_removed_online(
    first_written, ingest, materialize_features, paths, house_spec
):
    assert ingest("b2", {"rows": 400, "seed": 5, "first_house_id": 900_001}).success
    assert materialize_features(ONLINE_ASSETS).success
    old = set(pd.read_parquet(paths.cleaned("b2"))["house_id"])
    _drain_log(paths)
    smaller = {"rows": 200, "seed": 6, "first_house_id": 900_001, "replace": True}
    assert ingest("b2", smaller).success
    result = materialize_features(ONLINE_ASSETS)
    assert result.success, failure_text(result)
    new = set(pd.read_parquet(paths.cleaned("b2"))["house_id"])
    gone = old - new
    assert gone and new <= old
    assert _drain_log(paths) == (new, gone)  # another seed: other times and values
    assert metadata(result, "online_features")["entities_deleted"] == len(gone)
    lookup = OnlineFeatureLookup(feature_store(paths), house_spec)
    assert lookup.lookup(sorted(gone)).unknown == sorted(gone)
    _assert_online_equals_offline_newest(paths, house_spec)


def test_a_rebuilt_online_store_is_rewritten_in_full(
    first_written, materialize_features, paths, house_spec
):
    with sqlite3.connect(_database(paths)) as connection:
        connection.execute(f"DELETE FROM {_table(house_spec)}")  # as if rebuilt empty
    _drain_log(paths)
    result = materialize_features(["online_features"])
    assert result.success, failure_text(result)
    written = metadata(result, "online_features")
    assert written["mode"] == "full"
    assert "does not hold the recorded write" in written["mode_reason"]
    assert _drain_log(paths) == (set(first_written[house_spec.entity_key]), set())
    _assert_online_equals_offline_newest(paths, house_spec)
