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


def test_keys_that_are_not_int64_are_rejected_and_the_rest_scored(house_spec, model, tmp_path):
    """As the service answers 400 for them: `abc` and a key beyond int64, read from a CSV."""
    import pandas as pd

    frame = generate_house_sales(SyntheticConfig(rows=20, seed=11)).drop(columns=["price"])
    frame = frame.astype({"house_id": "object"})
    frame.loc[3, "house_id"] = "abc"
    frame.loc[5, "house_id"] = 2**63  # one above int64
    frame.loc[6, "house_id"] = 2**63 - 1  # int64's largest: a valid key
    frame.to_csv(tmp_path / "to_score.csv", index=False)
    delivered = pd.read_csv(tmp_path / "to_score.csv")
    batch = score_frame(delivered, house_spec, model, IMPUTATION, "7", NOW)
    assert batch.accounting() == {"delivered": 20, "scored": 18, "rejected": 2}
    reasons = dict(zip(batch.rejected["source_row"], batch.rejected["reject_reason"], strict=True))
    assert reasons == {3: "unparseable:house_id", 5: "unparseable:house_id"}
    assert batch.rejected["house_id"].tolist() == ["abc", str(2**63)]
    assert 2**63 - 1 in set(batch.scored["house_id"].astype(str).map(int))


def test_a_lone_key_beyond_int64_is_rejected_not_scored(house_spec, model, tmp_path):
    import pandas as pd

    frame = generate_house_sales(SyntheticConfig(rows=1, seed=11)).drop(columns=["price"])
    frame = frame.astype({"house_id": "object"})
    frame.loc[0, "house_id"] = 2**70
    frame.to_csv(tmp_path / "to_score.csv", index=False)
    batch = score_frame(
        pd.read_csv(tmp_path / "to_score.csv"), house_spec, model, IMPUTATION, "7", NOW
    )
    assert batch.accounting() == {"delivered": 1, "scored": 0, "rejected": 1}
    assert batch.rejected["reject_reason"].tolist() == ["unparseable:house_id"]
