from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.features import engineer, event_year, feature_types, to_matrix
from mlops_assets.core.point_in_time import as_of_join, mismatched_rows
from mlops_assets.core.quality import check_features
from mlops_assets.core.splits import entity_split
from mlops_assets.core.statistics import feature_statistics
from mlops_assets.sources import SyntheticConfig, generate_house_sales


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    frame = generate_house_sales(SyntheticConfig(rows=3_000, seed=8))
    frame["location"] = pd.Categorical(frame["location"], categories=["urban", "suburban", "rural"])
    return frame


def test_event_year_is_a_decimal_year():
    stamps = pd.Series(pd.to_datetime(["2021-01-01T00:00", "2021-07-02T12:00"], utc=True))
    np.testing.assert_allclose(event_year(stamps), [2021.0, 2021.5], atol=2e-3)


def test_engineer_derives_the_spec_columns(sales, house_spec):
    features = engineer(sales, house_spec)
    assert list(features.columns) == [
        house_spec.entity_key,
        house_spec.event_timestamp,
        *house_spec.model_features,
    ]
    age = event_year(sales["event_timestamp"]) - sales["year_built"]
    np.testing.assert_allclose(features["house_age"], age)
    np.testing.assert_allclose(
        features["sqft_per_bedroom"], sales["sqft"] / np.maximum(sales["bedrooms"], 1)
    )
    np.testing.assert_allclose(features["log_lot_size"], np.log(sales["lot_size"]))
    assert features["condition"].cat.categories.tolist() == ["poor", "fair", "good", "excellent"]


def test_model_matrix_uses_spec_category_codes(house_spec, sales):
    features = engineer(sales.head(3), house_spec)
    features.loc[features.index[2], "location"] = np.nan
    matrix = to_matrix(features, house_spec)
    column = house_spec.model_features.index("location")
    expected = [["urban", "suburban", "rural"].index(v) for v in sales["location"].head(2)]
    np.testing.assert_array_equal(matrix[:2, column], expected)
    assert np.isnan(matrix[2, column]), "missing category -> NaN, never a wrong code"
    strings = features.astype({"location": "string", "condition": "string"})
    np.testing.assert_array_equal(to_matrix(strings, house_spec), matrix)
    types = feature_types(house_spec)
    assert types[column] == "c" and types.count("c") == 2


def test_entity_split_is_stable_by_key_and_near_its_fractions():
    keys = np.arange(100_000)
    split = entity_split(keys)
    np.testing.assert_array_equal(split, entity_split(keys))
    np.testing.assert_array_equal(entity_split(keys[::-1]), split[::-1])
    shares = pd.Series(split).value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.70, abs=0.01)
    assert shares["test"] == pytest.approx(0.15, abs=0.01)
    with pytest.raises(ValueError, match="sum to 1"):
        entity_split(keys, (0.5, 0.2, 0.2))


def test_feature_statistics(sales, house_spec):
    stats = feature_statistics(engineer(sales, house_spec), house_spec)
    assert stats["rows"] == 3_000
    quantiles = stats["numeric"]["sqft"]["quantiles"]
    assert len(quantiles) == 101 and quantiles == sorted(quantiles)
    assert quantiles[0] == sales["sqft"].min() and quantiles[-1] == sales["sqft"].max()
    shares = stats["categorical"]["location"]["shares"]
    assert set(shares) == {"urban", "suburban", "rural"}
    assert sum(shares.values()) == pytest.approx(1.0)


def test_as_of_join_takes_the_newest_row_at_or_before_the_label():
    t = pd.to_datetime(["2020-01-01", "2021-01-01", "2022-01-01"], utc=True)
    features = pd.DataFrame({"k": [1, 1, 1], "ts": t, "x": [10.0, 20.0, 30.0]})
    labels = pd.DataFrame(
        {
            "k": [1, 1, 1, 2],
            "ts": [t[1], t[0] - pd.Timedelta(days=1), t[2] + pd.Timedelta(1, "s"), t[0]],
        }
    )
    joined = as_of_join(labels, features, "k", "ts")
    np.testing.assert_array_equal(joined["x"], [20.0, np.nan, 30.0, np.nan])
    assert mismatched_rows(joined, joined.assign(x=[20.0, np.nan, 31.0, np.nan]), ["x"]) == {"x": 1}


def test_non_finite_required_features_block(house_spec, sales):
    features = engineer(sales.head(10), house_spec)
    assert check_features(features, house_spec)[0].passed
    features.loc[features.index[0], "house_age"] = np.inf
    features.loc[features.index[1], "condition"] = np.nan
    [outcome] = check_features(features, house_spec)
    assert outcome.blocks
    assert outcome.metadata["non_finite"] == {"house_age": 1, "condition": 1}


def test_generated_timestamps_are_whole_seconds(sales):
    assert (sales["event_timestamp"].dt.microsecond == 0).all()
    assert sales["event_timestamp"].min() >= datetime(2015, 1, 1, tzinfo=UTC)
