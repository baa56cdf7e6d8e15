"""The feature stage against a real Feast store (file offline store, SQLite online store)."""

import sqlite3

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_assets.core.features import to_matrix
from mlops_assets.features.feast_repo import FeastNames, feature_store, offline_path
from mlops_assets.features.online_lookup import OnlineFeatureLookup, UnknownEntityError
from mlops_assets.features.online_write import newest_per_entity
from mlops_assets.features.sqlite_write import TOKEN_KEY
from mlops_assets.spec import HOUSE_PRICES_SPEC
from tests.integration.conftest import check_evaluations, failure_text
from tests.materializations import metadata


@pytest.fixture
def built(ingest, materialize_features, paths, house_spec):
    """One ingested batch and the whole feature stage materialized."""
    assert ingest("b1", {"rows": 4_000, "seed": 21}).success
    result = materialize_features()
    assert result.success, failure_text(result)
    return result


def _online_rows(paths, house_spec) -> list[tuple]:
    table = f"mlops_{FeastNames.for_spec(house_spec).view}"
    with sqlite3.connect(paths.root / "feast" / "online_store.db") as connection:
        return connection.execute(
            f"SELECT entity_key, feature_name, value, value_text, event_ts FROM {table} "
            "WHERE entity_key != ? ORDER BY entity_key, feature_name",
            (TOKEN_KEY,),
        ).fetchall()


def test_training_set_is_point_in_time_correct_on_every_row(built, paths, house_spec):
    training = pd.read_parquet(paths.root / "training" / "training_set.parquet")
    cleaned = pd.read_parquet(paths.cleaned("b1"))
    assert len(training) == len(cleaned) == 4_000
    keys = [house_spec.entity_key, house_spec.event_timestamp]
    # Each sale has a feature row at its own time: the training row must carry exactly that
    # row's values, not those of any later sale of the same house.
    features = pd.read_parquet(offline_path(paths, house_spec))
    merged = training.merge(features, on=keys, suffixes=("", "_expected"), validate="one_to_one")
    for name in house_spec.model_features:
        actual, expected = merged[name], merged[f"{name}_expected"]
        if name in house_spec.categorical_columns:
            assert (actual.astype(str) == expected.astype(str)).all(), name
        else:
            np.testing.assert_allclose(actual, expected, rtol=1e-12, err_msg=name)
    evaluations = check_evaluations(built)
    assert evaluations[("training_set", "point_in_time_correct")].passed


def test_renovated_house_keeps_pre_renovation_features_for_its_first_sale(built, paths):
    training = pd.read_parquet(paths.root / "training" / "training_set.parquet")
    ordered = training.sort_values(["house_id", "event_timestamp"])
    first = ordered.groupby("house_id").nth(0).set_index("house_id")
    second = ordered.groupby("house_id").nth(1).set_index("house_id")
    pair = first.join(second, lsuffix="_1", rsuffix="_2", how="inner")
    renovated = pair[pair["sqft_2"] > pair["sqft_1"]]
    assert len(renovated) > 20
    np.testing.assert_allclose(renovated["sqft_2"], np.round(renovated["sqft_1"] * 1.2))
    assert (renovated["bathrooms_2"] >= renovated["bathrooms_1"]).all()


def test_labels_between_sales_see_only_the_earlier_sale(built, paths, house_spec):
    """Ask Feast directly for times just after each first sale of a renovated house."""
    features = pd.read_parquet(offline_path(paths, house_spec)).sort_values("event_timestamp")
    first = features.groupby("house_id").nth(0)
    later = features.groupby("house_id").nth(1).set_index("house_id")
    first = first[first["house_id"].isin(later.index)].set_index("house_id")
    renovated = first[later.loc[first.index, "sqft"] > first["sqft"]].reset_index()
    labels = renovated[["house_id", "event_timestamp"]].copy()
    labels["event_timestamp"] += pd.Timedelta(seconds=1)
    store = feature_store(paths)
    service = store.get_feature_service(FeastNames.for_spec(house_spec).service)
    joined = store.get_historical_features(entity_df=labels, features=service).to_df()
    joined = joined.set_index("house_id").loc[renovated["house_id"]]
    np.testing.assert_allclose(joined["sqft"], renovated["sqft"])


def test_materializing_twice_leaves_the_online_store_identical(
    built, materialize_features, paths, house_spec
):
    before = _online_rows(paths, house_spec)
    assert len(before) > 0
    again = materialize_features(["online_features"])
    assert again.success, failure_text(again)
    assert _online_rows(paths, house_spec) == before


def test_online_values_equal_the_newest_offline_values(built, paths, house_spec):
    features = pd.read_parquet(offline_path(paths, house_spec))
    newest = newest_per_entity(features, "house_id", "event_timestamp")
    sample = newest.sample(300, random_state=1)
    lookup = OnlineFeatureLookup(feature_store(paths), house_spec)
    result = lookup.lookup(sample["house_id"].tolist())
    assert result.unknown == [] and result.keys == sample["house_id"].tolist()
    np.testing.assert_array_equal(result.matrix, to_matrix(sample, house_spec))
    # Feast's own read path sees the same values.
    store = feature_store(paths)
    service = store.get_feature_service(FeastNames.for_spec(house_spec).service)
    rows = [{"house_id": int(k)} for k in sample["house_id"].head(20)]
    online = store.get_online_features(features=service, entity_rows=rows).to_df()
    np.testing.assert_allclose(online["sqft"], sample["sqft"].head(20))
    assert online["location"].tolist() == sample["location"].head(20).tolist()


def test_unknown_keys_are_reported_not_scored(built, paths, house_spec):
    lookup = OnlineFeatureLookup(feature_store(paths), house_spec)
    result = lookup.lookup([1, 987_654_321, 2])
    assert result.keys == [1, 2] and result.unknown == [987_654_321]
    assert result.matrix.shape == (2, len(house_spec.model_features))
    with pytest.raises(UnknownEntityError, match="987654321"):
        result.require_all()


def test_materialization_metadata(built, paths, house_spec):
    written = metadata(built, "online_features")
    features = pd.read_parquet(offline_path(paths, house_spec))
    times = features[house_spec.event_timestamp]
    houses = features[house_spec.entity_key].nunique()
    assert houses < 4_000, "the batch sells some houses twice: one online row per house"
    assert written["input_rows"] == len(features) == 4_000
    assert written["entities_written"] == written["entities"] == houses
    assert (written["mode"], written["entities_skipped"]) == ("full", 0)
    assert written["window_start"] == times.min().isoformat()
    assert written["window_end"] == times.max().isoformat()


def test_non_finite_required_feature_blocks_and_keeps_the_previous_table(
    ingest, materialize_features, paths, tmp_path, house_spec
):
    assert ingest("b1", {"rows": 1_500}).success
    assert materialize_features(["features"]).success
    good = offline_path(paths, house_spec).read_bytes()
    document = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    document["derived"].append(
        {"name": "bath_log", "expr": "log(bathrooms - 1)", "nullable": False}
    )
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(document))
    result = materialize_features(["features"], spec_path=str(spec_path))
    assert not result.success
    assert "features_finite: non-finite values in {'bath_log':" in failure_text(result)
    assert offline_path(paths, house_spec).read_bytes() == good


def test_feast_apply_error_names_the_object(ingest, materialize_features, paths):
    assert ingest("b1", {"rows": 1_500}).success
    (paths.root / "feast" / "online_store.db").mkdir(parents=True)  # not a database file
    result = materialize_features(["features", "feast_registry"])
    assert not result.success
    message = failure_text(result)
    assert "feast apply failed for Entity 'house': unable to open database file" in message


def test_no_cleaned_data_fails_clearly(materialize_features):
    result = materialize_features(["features"])
    assert not result.success
    assert "no cleaned batches" in failure_text(result)


def test_empty_feature_table_is_not_materialized(ingest, materialize_features, paths, house_spec):
    assert ingest("b1", {"rows": 1_500}).success
    assert materialize_features(["features", "feast_registry"]).success
    features = pd.read_parquet(offline_path(paths, house_spec))
    features.iloc[:0].to_parquet(offline_path(paths, house_spec))
    result = materialize_features(["online_features"])
    assert not result.success
    assert "is empty: nothing to materialize" in failure_text(result)
    assert "online store answered" not in failure_text(result)  # the data, not the store


def test_feast_apply_runs_only_when_the_definitions_or_the_store_changed(
    ingest, materialize_features, paths, tmp_path, house_spec
):
    assert ingest("b1", {"rows": 1_500}).success
    first = materialize_features(["features", "feast_registry"])
    assert metadata(first, "feast_registry")["apply"] == "applied"
    again = materialize_features(["feast_registry"])
    assert metadata(again, "feast_registry")["apply"] == "skipped: unchanged"

    document = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    document["derived"].append({"name": "sqft_log", "expr": "log(sqft)"})
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(document))
    changed = materialize_features(["features", "feast_registry"], spec_path=str(spec_path))
    assert metadata(changed, "feast_registry")["apply"] == "applied"
    view = feature_store(paths).get_feature_view(FeastNames.for_spec(house_spec).view)
    assert "sqft_log" in [f.name for f in view.features]

    (paths.root / "feast" / "online_store.db").unlink()  # the online store rebuilt from nothing
    rebuilt = materialize_features(["feast_registry", "online_features"], spec_path=str(spec_path))
    assert rebuilt.success, failure_text(rebuilt)
    assert metadata(rebuilt, "feast_registry")["apply"] == "applied"
    assert metadata(rebuilt, "online_features")["mode"] == "full"
