"""Batch scoring: each delivered row is scored or rejected with its reason, as the service would."""

from datetime import UTC, datetime

import numpy as np
import pytest

from mlops_assets.core.families import BoosterModel
from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.core.scoring import ScoringError, score_frame
from mlops_assets.core.training import TrainParams, train
from mlops_assets.serving.predictor import ModelBundle, Predictor
from mlops_assets.sources import SyntheticConfig, generate_house_sales

NOW = datetime(2025, 6, 1, tzinfo=UTC)
IMPUTATION = {"lot_size": 7_000.0}


@pytest.fixture(scope="module")
def model(house_spec):
    sales = generate_house_sales(SyntheticConfig(rows=2_000, seed=3))
    x = to_matrix(engineer(sales, house_spec, IMPUTATION), house_spec)
    y = sales["price"].to_numpy()
    fast = TrainParams(max_rounds=50, early_stopping_rounds=10, learning_rate=0.3)
    return BoosterModel(train(x[:1500], y[:1500], x[1500:], y[1500:], house_spec, fast).booster)


def to_score():
    frame = generate_house_sales(SyntheticConfig(rows=200, seed=11)).drop(columns=["price"])
    frame = frame.astype({"sqft": "object", "location": "object"})
    frame.loc[7, "sqft"] = -5  # out of range
    frame.loc[19, "sqft"] = "big"  # unparseable
    frame.loc[23, "location"] = "moon"  # unknown category
    frame.loc[31, "lot_size"] = None  # imputed, so scored with the stored fill value
    return frame


def test_every_row_is_scored_or_rejected_with_its_reason(house_spec, model):
    batch = score_frame(to_score(), house_spec, model, IMPUTATION, "7", NOW)

    assert batch.accounting() == {"delivered": 200, "scored": 197, "rejected": 3}
    reasons = dict(zip(batch.rejected["source_row"], batch.rejected["reject_reason"], strict=True))
    assert reasons == {
        7: "out_of_range:sqft",
        19: "unparseable:sqft",
        23: "unknown_category:location",
    }
    assert 31 in set(batch.scored["source_row"])
    assert set(batch.scored["model_version"]) == {"7"}
    assert np.isfinite(batch.scored["prediction"]).all()


def test_scores_equal_the_services_answers_for_the_same_rows(house_spec, model):
    frame = to_score()
    batch = score_frame(frame, house_spec, model, IMPUTATION, "7", NOW)
    bundle = ModelBundle(model, house_spec, {"imputation": IMPUTATION}, {"model_version": "7"})
    records = []
    for row in batch.scored["source_row"]:
        record = frame.loc[row, house_spec.feature_columns].to_dict()
        record = {k: (None if v is None or v != v else v) for k, v in record.items()}
        record["event_timestamp"] = frame.loc[row, "event_timestamp"].to_pydatetime()
        records.append(record)
    served = Predictor(bundle).predict_records(records)
    np.testing.assert_allclose(batch.scored["prediction"], served, rtol=0, atol=1e-6)


def test_a_file_without_a_feature_column_is_refused_naming_it(house_spec, model):
    frame = to_score().drop(columns=["bedrooms"])
    with pytest.raises(ScoringError, match=r"lacks feature columns \['bedrooms'\]"):
        score_frame(frame, house_spec, model, IMPUTATION, "7", NOW)


def test_the_target_and_the_key_may_be_left_out(house_spec, model):
    frame = to_score().drop(columns=["house_id"])
    batch = score_frame(frame, house_spec, model, IMPUTATION, "7", NOW)
    assert batch.accounting() == {"delivered": 200, "scored": 197, "rejected": 3}
    assert "house_id" not in batch.scored
