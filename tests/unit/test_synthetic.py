import numpy as np
import pandas as pd
import pytest

from mlops_assets.sources.synthetic import (
    SyntheticConfig,
    expected_price,
    generate_house_sales,
    market_index,
)


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return generate_house_sales(SyntheticConfig(rows=20_000, seed=3), with_expected=True)


def test_deterministic_by_seed():
    first = generate_house_sales(SyntheticConfig(rows=2_000, seed=11))
    again = generate_house_sales(SyntheticConfig(rows=2_000, seed=11))
    other = generate_house_sales(SyntheticConfig(rows=2_000, seed=12))
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_shape_columns_and_domains(sales, house_spec):
    assert len(sales) == 20_000
    assert set(house_spec.required_columns) <= set(sales.columns)
    assert sales["location"].isin(["urban", "suburban", "rural"]).all()
    assert sales["condition"].isin(["poor", "fair", "good", "excellent"]).all()
    assert sales["sqft"].between(400, 8_000 * 1.2).all()
    assert sales["bedrooms"].between(1, 8).all() and sales["bathrooms"].between(1, 6).all()
    assert str(sales["event_timestamp"].dt.tz) == "UTC"
    assert sales["event_timestamp"].is_monotonic_increasing
    assert not sales.duplicated(["house_id", "event_timestamp"]).any()


def test_repeat_sales_carry_renovations(sales):
    counts = sales["house_id"].value_counts()
    assert (counts >= 2).sum() > 1_000, "some houses sell more than once"
    ordered = sales.sort_values(["house_id", "event_timestamp"])
    first = ordered.groupby("house_id").nth(0).set_index("house_id")
    second = ordered.groupby("house_id").nth(1).set_index("house_id")
    pair = first.join(second, lsuffix="_1", rsuffix="_2", how="inner")
    renovated = pair["sqft_2"] > pair["sqft_1"]
    assert 0.3 < renovated.mean() < 0.7, "about half of the resold houses were renovated"
    np.testing.assert_allclose(
        pair.loc[renovated, "sqft_2"], np.round(pair.loc[renovated, "sqft_1"] * 1.2)
    )
    assert (pair.loc[~renovated, "sqft_2"] == pair.loc[~renovated, "sqft_1"]).all()


def test_expected_price_is_the_documented_function_of_the_attributes(sales):
    config = SyntheticConfig(rows=20_000, seed=3)
    np.testing.assert_allclose(expected_price(sales, config), sales["expected_price"])
    log_noise = np.log(sales["price"] / sales["expected_price"])
    assert log_noise.std() == pytest.approx(config.noise_sigma, rel=0.05)
    assert log_noise.mean() == pytest.approx(-(config.noise_sigma**2) / 2, abs=0.003)
    ratio = sales["price"].mean() / sales["expected_price"].mean()
    assert ratio == pytest.approx(1.0, abs=0.01), "price is unbiased around the expected price"


def test_ceiling_r2_is_high_but_below_one(sales):
    y, best = sales["price"], sales["expected_price"]
    ceiling = 1 - ((y - best) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert 0.9 < ceiling < 0.99


def test_scenarios_shift_the_market_and_the_mix():
    base = generate_house_sales(SyntheticConfig(rows=10_000, seed=5))
    shifted = generate_house_sales(SyntheticConfig(rows=10_000, seed=5, scenario="covariate_shift"))
    assert (shifted["location"] == "urban").mean() > (base["location"] == "urban").mean() + 0.15
    assert shifted["sqft"].median() > base["sqft"].median() * 1.15
    config = SyntheticConfig(scenario="market_jump")
    years = np.array([4.9, 5.1])
    jump = market_index(years, config) / market_index(years, SyntheticConfig())
    np.testing.assert_allclose(jump, [1.0, 1.25])


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ("nulls", lambda f: f["sqft"].isna().sum() == 40),
        ("out_of_range", lambda f: (f["bedrooms"] == 99).sum() == 40),
        ("unparseable", lambda f: (f["year_built"] == "unknown").sum() == 40),
        ("duplicates", lambda f: f.duplicated().sum() == 40),
    ],
)
def test_faults_are_injected_at_the_requested_rate(fault, check):
    frame = generate_house_sales(SyntheticConfig(rows=2_000, faults=(fault,), fault_rate=0.02))
    assert len(frame) == 2_000
    assert check(frame)


def test_invalid_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown scenario"):
        SyntheticConfig(scenario="boom")
    with pytest.raises(ValueError, match="unknown faults"):
        SyntheticConfig(faults=("gremlins",))
    with pytest.raises(ValueError, match="rows"):
        SyntheticConfig(rows=0)
