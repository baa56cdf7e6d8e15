"""Explanations: contributions that add up to the prediction, and a model that behaves.

Sums: for XGBoost and the linear family, on regression (the house market, price in millions
so the target is of unit scale) and binary classification (breast cancer, on the log-odds),
base value + contributions equals the prediction to 1e-6 (relative, and absolute below 1).

Behaviour, on the synthetic market whose truth is known (`sources/synthetic.py`): price grows
with floor area at every location, so a larger `sqft` raises the prediction and its
contribution; and a column the market ignores (random noise added to the data) neither moves
predictions when it changes nor gets much importance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_assets.core.explanations import LOG_ODDS, VALUE, explain, global_importance
from mlops_assets.core.families import BoosterModel
from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.core.linear_model import fit_linear
from mlops_assets.core.training import TrainParams, train
from mlops_assets.sources import SyntheticConfig, generate_house_sales
from mlops_assets.sources.sklearn_datasets import SklearnSource
from mlops_assets.spec import HOUSE_PRICES_SPEC, DatasetSpec

FAST = TrainParams(max_rounds=60, early_stopping_rounds=10, learning_rate=0.3)


def _fit_both(frame: pd.DataFrame, spec: DatasetSpec):
    x = to_matrix(engineer(frame, spec), spec)
    y = frame[spec.target].to_numpy(dtype=np.float64)
    cut = len(y) * 3 // 4
    booster = BoosterModel(train(x[:cut], y[:cut], x[cut:], y[cut:], spec, FAST).booster)
    return x, booster, fit_linear(x[:cut], y[:cut], spec)


@pytest.fixture(scope="module")
def houses(house_spec):
    frame = generate_house_sales(SyntheticConfig(rows=1_500, seed=5))
    frame["price"] = frame["price"] / 1e6
    return _fit_both(frame, house_spec)


@pytest.fixture(scope="module")
def tumours(cancer_spec):
    frame = SklearnSource("breast_cancer").load()
    frame["ingested_at"] = pd.Timestamp("2025-01-01", tz="UTC")
    frame["row_id"] = np.arange(len(frame))
    return _fit_both(frame, cancer_spec)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1.0 - p))


def test_tree_contributions_add_up_to_the_prediction(houses, house_spec):
    x, booster, _ = houses
    explained = explain(booster, x, house_spec.model_features)
    assert explained.scale == VALUE
    assert explained.contributions.shape == (len(x), len(house_spec.model_features))
    np.testing.assert_allclose(explained.margin, booster.predict(x), rtol=1e-6, atol=1e-6)


def test_linear_contributions_are_weight_times_centred_value(houses, house_spec):
    x, _, linear = houses
    explained = explain(linear, x, house_spec.model_features)
    np.testing.assert_allclose(explained.margin, linear.predict(x), rtol=1e-6, atol=1e-6)
    column = house_spec.model_features.index("sqft")
    at = linear.numeric.index(column)
    expected = linear.weights[at] * (x[:, column].astype(np.float64) - linear.mean[at])
    np.testing.assert_allclose(explained.contributions[:, column], expected, rtol=1e-12)


def test_classification_contributions_add_up_on_the_log_odds(tumours, cancer_spec):
    x, booster, linear = tumours
    margins = {
        "xgboost": booster.booster.inplace_predict(x, predict_type="margin"),
        "linear": _logit(linear.predict(x)),  # float64: its own logit is exact enough
    }
    for name, model in (("xgboost", booster), ("linear", linear)):
        explained = explain(model, x, cancer_spec.model_features)
        assert explained.scale == LOG_ODDS
        np.testing.assert_allclose(explained.margin, margins[name], rtol=1e-6, atol=1e-6)
        probability = 1.0 / (1.0 + np.exp(-explained.margin))
        np.testing.assert_allclose(probability, model.predict(x), rtol=0, atol=1e-6)


def test_a_larger_house_is_predicted_dearer_through_its_sqft(houses, house_spec):
    x, booster, linear = houses
    column = house_spec.model_features.index("sqft")
    larger = x.copy()
    larger[:, column] *= 1.3
    for model in (booster, linear):
        before = explain(model, x, house_spec.model_features)
        after = explain(model, larger, house_spec.model_features)
        raised = model.predict(larger) - model.predict(x)
        assert np.mean(raised > 0) > 0.95, type(model).__name__
        assert np.median(raised) > 0.02, "about a fifth of a median price of ~0.6 million"
        assert np.mean(after.contributions[:, column] >= before.contributions[:, column]) > 0.95
    assert next(iter(global_importance(explain(booster, x, house_spec.model_features)))) in {
        "sqft",
        "sqft_per_bedroom",
        "location",
    }


def test_a_column_the_market_ignores_barely_matters(house_spec):
    document = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    noise = {"name": "noise", "dtype": "float", "description": "Ignored by the market."}
    document["columns"].insert(-1, {**noise, "min": 0, "max": 1})
    spec = DatasetSpec.model_validate(document)
    frame = generate_house_sales(SyntheticConfig(rows=1_500, seed=6))
    frame["price"] = frame["price"] / 1e6
    frame["noise"] = np.random.default_rng(0).uniform(0, 1, len(frame))
    x, booster, _ = _fit_both(frame, spec)
    column = spec.model_features.index("noise")
    shuffled = x.copy()
    shuffled[:, column] = np.random.default_rng(1).uniform(0, 1, len(x))
    moved = np.abs(booster.predict(shuffled) - booster.predict(x)) / booster.predict(x)
    assert np.median(moved) < 0.02, "a change of noise moves the median prediction under 2 %"
    importance = global_importance(explain(booster, x, spec.model_features))
    assert importance["noise"] < 0.1 * importance["sqft"]
