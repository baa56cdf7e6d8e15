"""Multiclass classification: spec rules, metrics against scikit-learn's, the linear candidate's
stored form, folds, the service's answer shape, batch scoring, live metrics and class-mix drift."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn import metrics as skm

from mlops_assets.core.candidates import Rows, compete
from mlops_assets.core.cleaning import REASON_COLUMN, clean
from mlops_assets.core.drift import class_mix_drift
from mlops_assets.core.evaluation import compute_metrics
from mlops_assets.core.families import family_of, load_model_file, save_model_file
from mlops_assets.core.features import label_values, to_matrix
from mlops_assets.core.linear_model import SoftmaxModel, fit_linear
from mlops_assets.core.live_performance import (
    LABEL,
    PREDICTED_AT,
    PREDICTION,
    VERSION,
    live_metrics,
)
from mlops_assets.core.protocols import Plan, TrainingDataError, assign_folds, plan_for
from mlops_assets.core.scoring import score_frame
from mlops_assets.core.training import TrainParams
from mlops_assets.core.uncertainty import bootstrap_interval, metric, paired_improvement
from mlops_assets.serving.answers import answer_by_key, answer_many, answer_one
from mlops_assets.sources.sklearn_datasets import SklearnSource
from mlops_assets.spec import (
    WINE_SPEC,
    DatasetSpec,
    Family,
    Protocol,
    SpecError,
    TaskType,
    load_spec,
)

MULTI = TaskType.MULTICLASS_CLASSIFICATION
# Six rows, three classes; every class present, labels of the argmax: 0, 1, 1, 1, 2, 0.
Y = np.array([0, 0, 1, 1, 2, 2])
P = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.3, 0.5, 0.2],
        [0.1, 0.8, 0.1],
        [0.2, 0.6, 0.2],
        [0.1, 0.3, 0.6],
        [0.5, 0.1, 0.4],
    ]
)


def test_metrics_equal_scikit_learns_own():
    metrics = compute_metrics(Y.astype(float), P, MULTI)
    labels = P.argmax(axis=1)
    assert metrics["log_loss"] == pytest.approx(skm.log_loss(Y, P))
    assert metrics["accuracy"] == pytest.approx(skm.accuracy_score(Y, labels)) == 4 / 6
    assert metrics["f1_macro"] == pytest.approx(skm.f1_score(Y, labels, average="macro"))
    assert metrics["f1_weighted"] == pytest.approx(skm.f1_score(Y, labels, average="weighted"))
    assert metrics["roc_auc_ovr"] == pytest.approx(
        skm.roc_auc_score(Y, P, multi_class="ovr", average="macro")
    )
    precision = skm.precision_score(Y, labels, average=None)
    recall = skm.recall_score(Y, labels, average=None)
    for k in range(3):
        assert metrics[f"precision_{k}"] == pytest.approx(precision[k])
        assert metrics[f"recall_{k}"] == pytest.approx(recall[k])
    # By hand: class 1 is predicted 3 times, right twice; class 2 once, right once.
    assert (metrics["precision_1"], metrics["recall_2"]) == (pytest.approx(2 / 3), 0.5)


@pytest.mark.parametrize("name", ["log_loss", "accuracy", "roc_auc_ovr", "f1_macro"])
def test_resampling_metric_equals_the_full_metric(name):
    assert metric(Y.astype(float), P, name, MULTI) == pytest.approx(
        compute_metrics(Y.astype(float), P, MULTI)[name]
    )


def test_bootstrap_interval_of_a_multiclass_metric():
    interval = bootstrap_interval(Y.astype(float), P, "log_loss", MULTI, 200, 0.9, seed=1)
    assert interval.value == pytest.approx(skm.log_loss(Y, P))
    assert interval.low < interval.value < interval.high


def _write(tmp_path: Path, change) -> Path:
    document = yaml.safe_load(WINE_SPEC.read_text())
    change(document)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_wine_spec_defaults_to_log_loss_and_lists_its_classes(tmp_path):
    spec = load_spec(_write(tmp_path, lambda d: d["gates"].pop("primary_metric")))
    assert spec.task == MULTI
    assert spec.gates.primary_metric == "log_loss"
    assert spec.classes == [0, 1, 2]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            {"name": "target", "dtype": "int", "role": "target"},
            "target 'target' of a multiclass_classification needs dtype 'category'",
        ),
        (
            {"name": "target", "dtype": "category", "role": "target", "categories": [0, 1]},
            "target 'target' lists 2 classes; multiclass_classification needs at least 3",
        ),
    ],
)
def test_a_multiclass_target_needs_three_categories(tmp_path, target, message):
    def change(document):
        document["columns"][-1] = target

    with pytest.raises(SpecError, match=message):
        load_spec(_write(tmp_path, change))


def test_a_category_target_needs_the_multiclass_task(tmp_path):
    with pytest.raises(SpecError, match="only task multiclass_classification reads"):
        load_spec(_write(tmp_path, lambda d: d.update(task="binary_classification")))


@pytest.fixture(scope="module")
def wine():
    spec = load_spec(WINE_SPEC)
    raw = SklearnSource("wine").load()
    raw["row_id"] = np.arange(len(raw))
    raw["ingested_at"] = pd.Timestamp("2026-01-01", tz="UTC")
    return spec, raw


def test_a_row_of_an_unknown_class_is_quarantined_with_its_reason(wine):
    spec, raw = wine
    raw = raw.astype({"target": object})
    raw.loc[[5, 9], "target"] = [3, "red"]
    result = clean(raw, spec)
    assert len(result.cleaned) == len(raw) - 2
    assert result.quarantine["source_row"].tolist() == [5, 9]
    assert result.quarantine[REASON_COLUMN].tolist() == [
        "unknown_category:target",
        "unparseable:target",
    ]


def test_a_class_with_fewer_rows_than_folds_is_refused_by_name(wine):
    spec, _ = wine
    y = np.array([0] * 20 + [1] * 20 + [2] * 3, dtype=float)
    plan = plan_for(len(y), spec.training, "/data/wine.yaml")
    with pytest.raises(TrainingDataError) as refused:
        assign_folds(y, np.arange(len(y)), spec, plan)
    assert str(refused.value) == (
        "class 2 of 'target' has 3 rows, fewer than the 5 folds (each fold needs every "
        "class): lower training.folds in /data/wine.yaml, or `mlops run --folds N`"
    )


def test_folds_are_stratified_by_class(wine):
    spec, raw = wine
    y = label_values(clean(raw, spec).cleaned["target"], spec)
    plan = plan_for(len(y), spec.training, "spec.yaml")
    folds = assign_folds(y, np.arange(len(y)), spec, plan)
    for fold in range(5):  # 59, 71 and 48 rows: each fold holds a fifth of each, give or take 1
        counts = np.bincount(y[folds == fold].astype(int), minlength=3)
        assert np.all(np.abs(counts - np.array([59, 71, 48]) / 5) < 1)


def test_multinomial_model_is_json_and_predicts_the_same_after_loading(wine, tmp_path):
    spec, raw = wine
    cleaned = clean(raw, spec).cleaned
    x, y = to_matrix(cleaned, spec), label_values(cleaned["target"], spec)
    model = fit_linear(x, y, spec)
    assert isinstance(model, SoftmaxModel)
    assert family_of(model) == Family.LINEAR
    path = save_model_file(model, tmp_path, spec)
    assert path.name == "linear_model.json" and b"\x80" not in path.read_bytes()  # no pickle
    loaded = load_model_file(tmp_path, Family.LINEAR)
    predicted = model.predict(x)
    assert predicted.shape == (178, 3)
    np.testing.assert_array_equal(loaded.predict(x), predicted)
    np.testing.assert_allclose(predicted.sum(axis=1), 1.0, atol=1e-12)
    assert compute_metrics(y, predicted, MULTI)["accuracy"] > 0.97  # in-sample, separable set
    # Folded back to raw units, it is scikit-learn's model at the chosen strength (to the
    # solvers' tolerance: the cross-validated refit stops at another iterate).
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(x.astype(np.float64))
    reference = LogisticRegression(C=model.regularisation, max_iter=5_000).fit(scaled, y)
    np.testing.assert_allclose(predicted, reference.predict_proba(scaled), atol=1e-2)
    np.testing.assert_array_equal(predicted.argmax(axis=1), reference.predict(scaled))


def test_answers_name_the_label_and_every_class(wine):
    spec, _ = wine
    assert answer_one(spec, P[1]) == {
        "prediction": 1,
        "probabilities": {"0": 0.3, "1": 0.5, "2": 0.2},
    }
    many = answer_many(spec, P[:2])
    assert many["predictions"] == [0, 1]
    assert many["probabilities"][0] == {"0": 0.7, "1": 0.2, "2": 0.1}
    assert answer_by_key(spec, ["7", "8"], P[4:6]) == {
        "predictions": {"7": 2, "8": 0},
        "probabilities": {"7": {"0": 0.1, "1": 0.3, "2": 0.6}, "8": {"0": 0.5, "1": 0.1, "2": 0.4}},
    }


def test_batch_scoring_answers_the_class_and_each_probability(wine):
    spec, raw = wine
    cleaned = clean(raw, spec).cleaned
    model = fit_linear(to_matrix(cleaned, spec), label_values(cleaned["target"], spec), spec)
    frame = raw.drop(columns=["target", "row_id", "ingested_at"]).head(4)
    frame.loc[3, "alcohol"] = -1.0  # out of range: rejected with its reason
    now = pd.Timestamp("2026-02-01", tz="UTC").to_pydatetime()
    batch = score_frame(frame, spec, model, {}, "1", now)
    assert batch.accounting() == {"delivered": 4, "scored": 3, "rejected": 1}
    probabilities = batch.scored[["probability_0", "probability_1", "probability_2"]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(probabilities, model.predict(to_matrix(cleaned.head(3), spec)))
    assert batch.scored["prediction"].tolist() == [0, 0, 0]  # the first rows are cultivar 0
    assert batch.rejected["reject_reason"].tolist() == ["out_of_range:alcohol"]


def test_live_metrics_of_a_multiclass_log():
    moment = pd.Timestamp("2026-03-01 10:00", tz="UTC")
    matched = pd.DataFrame(
        {
            VERSION: ["1"] * 6,
            PREDICTED_AT: [moment] * 6,
            PREDICTION: list(P),
            LABEL: Y.astype(float),
        }
    )
    table = live_metrics(matched, MULTI, "log_loss")
    every = table[table["day"] == "all"].iloc[0]
    assert list(table.columns[:5]) == [VERSION, "day", "rows", "log_loss", "accuracy"]
    assert every["rows"] == 6
    assert every["log_loss"] == pytest.approx(skm.log_loss(Y, P))
    assert every["recall_2"] == pytest.approx(0.5)


def test_a_shift_of_the_predicted_class_mix_is_drift():
    reference = np.array([0] * 40 + [1] * 40 + [2] * 20)
    same = class_mix_drift(["a", "b", "c"], reference, np.array([0, 1] * 20 + [2] * 10), 0.2)
    assert (same.psi, same.drifted, same.live) == (pytest.approx(0.0), False, [0.4, 0.4, 0.2])
    moved = class_mix_drift(["a", "b", "c"], reference, np.array([2] * 30 + [0] * 10), 0.2)
    assert moved.drifted and moved.rows == 40
    assert moved.live == [0.25, 0.0, 0.75]


def _three_class_spec(**training) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {
            "name": "three",
            "task": "multiclass_classification",
            "columns": [
                {"name": "a", "dtype": "float"},
                {"name": "b", "dtype": "float"},
                {"name": "kind", "dtype": "category", "categories": ["x", "y"]},
                {
                    "name": "label",
                    "dtype": "category",
                    "role": "target",
                    "categories": ["lo", "mid", "hi"],
                },
            ],
            "training": training,
        }
    )


def test_holdout_competition_and_paired_gain_on_three_classes():
    """Holdout: both families on the same test rows, the class prior among the baselines, and
    the challenger's paired gain over a worse model's predictions on those rows."""
    spec = _three_class_spec(protocol="holdout")
    rng = np.random.default_rng(4)
    rows = 900
    a, b = rng.normal(size=rows), rng.normal(size=rows)
    kind = rng.integers(0, 2, rows)
    score = a + 0.5 * b + 0.8 * kind + rng.normal(0, 0.3, rows)
    y = np.digitize(score, [-0.4, 0.9]).astype(np.float64)  # 0 lo, 1 mid, 2 hi
    x = np.column_stack([a, b, kind]).astype(np.float32)
    split = np.array(["train", "validation", "test"])[rng.choice(3, rows, p=[0.6, 0.2, 0.2])]
    plan = Plan(Protocol.HOLDOUT, spec.training, "test", "spec.yaml")
    params = TrainParams(learning_rate=0.2, max_rounds=300, early_stopping_rounds=20)
    competition = compete(Rows(x, y, np.arange(rows)), spec, plan, params, split=split)
    test = split == "test"
    assert competition.rows.tolist() == np.flatnonzero(test).tolist()
    assert set(competition.candidates) == {"xgboost", "linear"}
    assert set(competition.baselines) == {"prior"}
    shares = np.bincount(y[split == "train"].astype(int), minlength=3) / (split == "train").sum()
    np.testing.assert_allclose(competition.baselines["prior"], np.tile(shares, (test.sum(), 1)))
    for candidate in competition.candidates.values():
        assert candidate.predictions.shape == (test.sum(), 3)
        np.testing.assert_allclose(candidate.predictions.sum(axis=1), 1.0, atol=1e-12)
        scored = compute_metrics(competition.y, candidate.predictions, MULTI)
        assert scored["accuracy"] > 0.8
    winner = competition.challenger.predictions
    gain = paired_improvement(
        competition.y, winner, competition.baselines["prior"], "log_loss", MULTI, 200, 0.95, 0
    )
    prior_loss = compute_metrics(competition.y, competition.baselines["prior"], MULTI)["log_loss"]
    own_loss = compute_metrics(competition.y, winner, MULTI)["log_loss"]
    assert gain.value == pytest.approx(prior_loss - own_loss)
    assert 0 < gain.low < gain.value < gain.high


def test_a_canary_split_answers_each_row_with_its_models_probabilities(wine):
    """Half the keys go to the challenger: every row keeps its own model's whole row."""
    from mlops_assets.model_registry.rollout import Rollout
    from mlops_assets.serving.predictor import ModelBundle, Predictor
    from mlops_assets.serving.routing import route
    from mlops_assets.serving.traffic import Traffic, canary_mask

    spec, raw = wine
    cleaned = clean(raw, spec).cleaned
    x, y = to_matrix(cleaned, spec), label_values(cleaned["target"], spec)
    champion = fit_linear(x[::2], y[::2], spec)
    challenger = fit_linear(x[1::2], y[1::2], spec)
    bundles = [
        ModelBundle(m, spec, {}, {"model_version": v})
        for m, v in ((champion, "1"), (challenger, "2"))
    ]
    rollout = Rollout(mode="canary", challenger_tag="wine:v2", challenger_version="2", share=0.5)
    traffic = Traffic(
        rollout, Predictor(bundles[1]), same_matrix=True, champion=Predictor(bundles[0])
    )
    keys = list(range(40))
    columns = {name: cleaned[name].iloc[:40].tolist() for name in spec.feature_columns}
    routed = route(traffic, "predict_batch", columns=columns, keys=keys)
    to_challenger = canary_mask(keys, 40, 0.5)
    assert 0 < to_challenger.sum() < 40
    expected = np.where(
        to_challenger[:, None], challenger.predict(x[:40]), champion.predict(x[:40])
    )
    np.testing.assert_allclose(routed.predictions, expected, rtol=0, atol=1e-12)  # BLAS rounding
    assert routed.versions() == ["2" if c else "1" for c in to_challenger]


def test_a_softprob_booster_is_saved_in_xgboosts_format_and_rows_sum_to_one(wine, tmp_path):
    from mlops_assets.core.families import BoosterModel
    from mlops_assets.core.training import fit_rounds

    spec, raw = wine
    cleaned = clean(raw, spec).cleaned
    x, y = to_matrix(cleaned, spec), label_values(cleaned["target"], spec)
    booster = fit_rounds(x, y, spec, TrainParams(threads=1), 30)
    assert booster.num_boosted_rounds() == 30
    model = BoosterModel(booster)
    path = save_model_file(model, tmp_path, spec)
    assert path.name == "model.ubj"
    predicted = load_model_file(tmp_path, Family.XGBOOST).predict(x)
    assert predicted.shape == (178, 3)
    np.testing.assert_array_equal(predicted, model.predict(x))
    np.testing.assert_allclose(predicted.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    raw_float32 = booster.inplace_predict(x)  # XGBoost's own: the same to float32 precision
    np.testing.assert_allclose(predicted, raw_float32, rtol=0, atol=1e-6)
    assert compute_metrics(y, predicted, MULTI)["accuracy"] > 0.97
