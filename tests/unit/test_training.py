import numpy as np
import pytest

from mlops_assets.core.baselines import baseline_predictions, fit_baselines
from mlops_assets.core.evaluation import compute_metrics, decide, evaluate_gates, slice_metrics
from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.core.report import ReportInputs, render_markdown, render_plots
from mlops_assets.core.splits import entity_split
from mlops_assets.core.training import (
    TrainingDataError,
    TrainParams,
    booster_bytes,
    predict,
    train,
    validate_training_data,
)
from mlops_assets.sources import SyntheticConfig, generate_house_sales
from mlops_assets.spec import TaskType

FAST = TrainParams(max_rounds=200, early_stopping_rounds=20, learning_rate=0.2)


@pytest.fixture(scope="module")
def data(house_spec):
    sales = generate_house_sales(SyntheticConfig(rows=3_000, seed=5), with_expected=True)
    features = engineer(sales, house_spec)
    split = entity_split(sales["house_id"].to_numpy())
    x, y = to_matrix(features, house_spec), sales["price"].to_numpy()
    return (
        {name: (x[split == name], y[split == name]) for name in ("train", "validation", "test")},
        features,
        split,
    )


def test_same_data_seed_and_code_give_the_same_model(data, house_spec):
    splits, _, _ = data
    first = train(*splits["train"], *splits["validation"], house_spec, FAST)
    again = train(*splits["train"], *splits["validation"], house_spec, FAST)
    assert booster_bytes(first.booster) == booster_bytes(again.booster)
    other = train(
        *splits["train"],
        *splits["validation"],
        house_spec,
        TrainParams(**{**FAST.__dict__, "seed": 7}),
    )
    assert booster_bytes(other.booster) != booster_bytes(first.booster)


def test_booster_is_cut_to_its_best_iteration(data, house_spec):
    splits, _, _ = data
    trained = train(*splits["train"], *splits["validation"], house_spec, FAST)
    assert trained.booster.num_boosted_rounds() == trained.best_iteration + 1
    assert trained.best_iteration < FAST.max_rounds - 1, "early stopping happened"


def test_bounded_search_keeps_the_best_trial(data, house_spec):
    splits, _, _ = data
    trained = train(*splits["train"], *splits["validation"], house_spec, FAST, search_trials=3)
    assert len(trained.search) == 4
    assert trained.validation_score == min(t["validation_score"] for t in trained.search)


def test_model_beats_its_baselines(data, house_spec):
    splits, _, _ = data
    trained = train(*splits["train"], *splits["validation"], house_spec, FAST)
    x_test, y_test = splits["test"]
    model = compute_metrics(y_test, predict(trained.booster, x_test), TaskType.REGRESSION)
    baselines = fit_baselines(*splits["train"], house_spec)
    scores = {
        n: compute_metrics(y_test, p, TaskType.REGRESSION)
        for n, p in baseline_predictions(baselines, x_test, house_spec).items()
    }
    assert set(scores) == {"mean", "linear"}
    assert model["r2"] > scores["linear"]["r2"] > scores["mean"]["r2"]
    assert abs(scores["mean"]["r2"]) < 0.01


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.ones(100), "is constant"),
        (np.r_[np.arange(99.0), np.nan], "1 nulls in the train split"),
        (np.arange(10.0), "train split has 10 rows"),
    ],
)
def test_bad_training_data_is_refused_with_the_reason(house_spec, y, message):
    with pytest.raises(TrainingDataError, match=message):
        validate_training_data(y, np.arange(100.0), house_spec, min_rows=50)


def test_classification_labels_must_be_binary(cancer_spec):
    with pytest.raises(TrainingDataError, match="must be 0/1"):
        validate_training_data(np.r_[np.zeros(50), np.full(50, 2.0)], np.zeros(60), cancer_spec, 50)


def test_regression_metrics():
    y, p = np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 3.0])
    metrics = compute_metrics(y, p, TaskType.REGRESSION)
    assert metrics["mae"] == pytest.approx(2 / 3)
    assert metrics["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert metrics["mape"] == pytest.approx((0 + 0.5 + 0.25) / 3)
    assert metrics["r2"] == pytest.approx(1 - 2 / (((y - y.mean()) ** 2).sum()))


def test_classification_metrics():
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9])
    metrics = compute_metrics(y, p, TaskType.BINARY_CLASSIFICATION)
    assert metrics["roc_auc"] == pytest.approx(0.75)
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["f1"] == pytest.approx(0.5)
    assert 0 < metrics["log_loss"] < 1


def test_gates(house_spec):
    results = evaluate_gates({"r2": 0.95, "mae": 80_000.0}, house_spec)
    assert [(g.metric, g.passed) for g in results] == [("r2", True), ("mae", False)]
    assert not any(g.passed for g in evaluate_gates({"r2": float("nan")}, house_spec))


def test_decision_ladder(house_spec):
    good = {"r2": 0.95, "mae": 50_000.0, "rmse": 70_000.0}
    first = decide(good, None, house_spec)
    assert first.promote and first.reason == "first model to pass every gate"
    failing = decide({**good, "r2": 0.5}, None, house_spec)
    assert not failing.promote and "failed gates: r2 = 0.5 (needs >= 0.9)" in failing.reason
    champion = {"rmse": 68_000.0}
    within = decide(good, champion, house_spec, "3")  # 2.9 % worse, tolerance 2 %
    assert not within.promote and within.reason.startswith("worse than the champion")
    assert decide(good, {"rmse": 69_000.0}, house_spec, "3").promote  # 1.4 % worse: tolerated
    assert decide(good, {"rmse": 90_000.0}, house_spec, "3").promote


def test_higher_is_better_metrics_compare_the_other_way(cancer_spec):
    good = {"roc_auc": 0.97, "accuracy": 0.93}
    assert not decide(good, {"roc_auc": 0.99}, cancer_spec, "1").promote
    assert decide(good, {"roc_auc": 0.975}, cancer_spec, "1").promote


def test_report_renders_metrics_gates_slices_and_plots(data, house_spec, tmp_path):
    splits, features, split = data
    trained = train(*splits["train"], *splits["validation"], house_spec, FAST)
    x_test, y_test = splits["test"]
    predicted = predict(trained.booster, x_test)
    metrics = compute_metrics(y_test, predicted, TaskType.REGRESSION)
    test_rows = features.loc[split == "test"].reset_index(drop=True)
    slices = slice_metrics(test_rows, y_test, predicted, house_spec)
    assert set(slices) == {"location", "condition"}
    assert sum(s["rows"] for s in slices["location"].values()) == len(y_test)
    plots = render_plots(
        tmp_path,
        y_test,
        predicted,
        trained.booster.get_score(importance_type="total_gain"),
        TaskType.REGRESSION,
    )
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    markdown = render_markdown(
        ReportInputs(
            house_spec,
            "m1",
            "run1",
            "f" * 64,
            len(y_test),
            {"model": metrics},
            decide(metrics, None, house_spec),
            slices,
            [str(p) for p in plots],
        )
    )
    for section in (
        "## Decision",
        "## Test metrics",
        "## Gates",
        "## Slices by `location`",
        "## Plots",
    ):
        assert section in markdown
