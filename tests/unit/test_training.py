import numpy as np
import pytest
from matplotlib import image

from mlops_assets.core.candidates import Rows, compete
from mlops_assets.core.evaluation import (
    Comparison,
    compute_metrics,
    decide,
    evaluate_gates,
    slice_metrics,
)
from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.core.protocols import TrainingDataError, check_holdout, check_labels, plan_for
from mlops_assets.core.report import ReportInputs, render_markdown, render_plots
from mlops_assets.core.splits import entity_split
from mlops_assets.core.training import TrainParams, booster_bytes, predict, train
from mlops_assets.sources import SyntheticConfig, generate_house_sales
from mlops_assets.spec import Family, Protocol, TaskType
from tests.plots import bar_lengths

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
    names = ("train", "validation", "test")
    x = np.concatenate([splits[n][0] for n in names])
    y = np.concatenate([splits[n][1] for n in names])
    labels = np.concatenate([np.full(len(splits[n][1]), n) for n in names])
    settings = house_spec.training.model_copy(
        update={"protocol": Protocol.HOLDOUT, "families": (Family.XGBOOST,)}
    )
    plan = plan_for(len(y), settings, "spec.yaml")
    competition = compete(Rows(x, y, np.arange(len(y))), house_spec, plan, FAST, split=labels)
    model = compute_metrics(competition.y, competition.challenger.predictions, TaskType.REGRESSION)
    scores = {
        n: compute_metrics(competition.y, p, TaskType.REGRESSION)
        for n, p in competition.baselines.items()
    }
    assert set(scores) == {"mean", "linear"}, "linear is a baseline when it does not compete"
    assert model["r2"] > scores["linear"]["r2"] > scores["mean"]["r2"]
    assert abs(scores["mean"]["r2"]) < 0.01


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.ones(100), "is constant"),
        (np.r_[np.arange(99.0), np.nan], "has 1 nulls"),
        (
            np.arange(10.0),
            "has 10 rows; at least 50 are needed for any protocol (training.min_rows in",
        ),
    ],
)
def test_bad_training_data_is_refused_with_the_reason(house_spec, y, message):
    plan = plan_for(len(y), house_spec.training, "/specs/house.yaml")
    with pytest.raises(TrainingDataError, match=message.replace("(", r"\(")):
        check_labels(y, house_spec, plan)


def test_a_small_holdout_split_names_the_setting_and_the_alternative(house_spec):
    plan = plan_for(20_000, house_spec.training, "/specs/house.yaml")
    assert plan.protocol == Protocol.HOLDOUT
    splits = {"train": np.arange(200.0), "validation": np.arange(35.0), "test": np.arange(60.0)}
    with pytest.raises(TrainingDataError) as error:
        check_holdout(splits, house_spec, plan)
    assert str(error.value) == (
        "validation split has 35 rows; at least 50 are needed (training.min_rows in "
        "/specs/house.yaml; or use protocol cross_validation: training.protocol, or "
        "`mlops run --protocol cross_validation`)"
    )


def test_classification_labels_must_be_binary(cancer_spec):
    plan = plan_for(100, cancer_spec.training, "s")
    with pytest.raises(TrainingDataError, match="must be 0/1"):
        check_labels(np.r_[np.zeros(50), np.full(50, 2.0)], cancer_spec, plan)


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
    results = evaluate_gates({"r2": 0.95, "mae": 120_000.0}, house_spec)
    assert [(g.metric, g.passed) for g in results] == [("r2", True), ("mae", False)]
    assert not any(g.passed for g in evaluate_gates({"r2": float("nan")}, house_spec))


def test_decision_ladder(house_spec):
    good = {"r2": 0.95, "mae": 50_000.0, "rmse": 70_000.0}
    first = decide(good, house_spec)
    assert first.promote and first.reason.startswith("first model to pass every gate")
    failing = decide({**good, "r2": 0.5}, house_spec)
    assert not failing.promote and "failed gates: r2 = 0.5 (needs >= 0.8)" in failing.reason
    slightly_worse = decide(good, house_spec, champion=Comparison({"rmse": 69_000.0}, "3"))
    assert not slightly_worse.promote, "no tolerance: a worse model is never promoted"
    assert slightly_worse.reason.startswith("not better than the champion")
    assert decide(good, house_spec, champion=Comparison({"rmse": 90_000.0}, "3")).promote


def test_a_tie_keeps_the_champion(house_spec):
    good = {"r2": 0.95, "mae": 50_000.0, "rmse": 70_000.0}
    tie = decide(good, house_spec, champion=Comparison(dict(good), "3"))
    assert not tie.promote and tie.reason.startswith("a tie keeps the champion")


def test_min_improvement_is_required(house_spec):
    spec = house_spec.model_copy(
        update={"training": house_spec.training.model_copy(update={"min_improvement": 0.05})}
    )
    good = {"r2": 0.95, "mae": 50_000.0, "rmse": 70_000.0}
    small = decide(good, spec, champion=Comparison({"rmse": 72_000.0}, "3"))  # 2.8 % better
    assert not small.promote and "needs more than 5.00%: training.min_improvement" in small.reason
    assert decide(good, spec, champion=Comparison({"rmse": 80_000.0}, "3")).promote


def test_worse_than_the_best_baseline_is_refused(house_spec):
    good = {"r2": 0.95, "mae": 50_000.0, "rmse": 70_000.0}
    baselines = {"mean": {"rmse": 300_000.0}, "linear": {"rmse": 69_000.0}}
    refused = decide(good, house_spec, baselines=baselines)
    assert not refused.promote and refused.baseline == "linear"
    assert refused.reason.startswith("does not beat the best baseline 'linear'")
    assert decide(good, house_spec, baselines={"mean": {"rmse": 300_000.0}}).promote


def test_better_only_within_noise_is_refused(house_spec):
    good = {"r2": 0.95, "mae": 50_000.0, "rmse": 70_000.0}
    noisy = decide(good, house_spec, champion=Comparison({"rmse": 71_000.0}, "3", (-0.01, 0.03)))
    assert not noisy.promote and noisy.reason.startswith("better only within noise")
    sure = decide(good, house_spec, champion=Comparison({"rmse": 71_000.0}, "3", (0.002, 0.03)))
    assert sure.promote


def test_higher_is_better_metrics_compare_the_other_way(cancer_spec):
    good = {"roc_auc": 0.97, "accuracy": 0.93}
    assert not decide(good, cancer_spec, champion=Comparison({"roc_auc": 0.99}, "1")).promote
    assert not decide(good, cancer_spec, champion=Comparison({"roc_auc": 0.975}, "1")).promote
    assert decide(good, cancer_spec, champion=Comparison({"roc_auc": 0.96}, "1")).promote


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
    importance = trained.booster.get_score(importance_type="total_gain")
    plots = render_plots(tmp_path, y_test, predicted, importance, TaskType.REGRESSION)
    assert [p.name for p in plots] == ["predicted_vs_actual.png", "feature_importance.png"]
    assert image.imread(plots[0]).shape[:2] == (405, 990), "two panels side by side, 90 dpi"
    # The importance plot, read back: its two longest bars on top, as long as their gains.
    first, second = sorted(importance.values(), reverse=True)[:2]
    bars = bar_lengths(plots[1], colour=(76, 114, 176))
    assert bars[0] == max(bars) and bars[0] / bars[1] == pytest.approx(first / second, rel=0.02)
    markdown = render_markdown(
        ReportInputs(
            house_spec,
            "m1",
            "run1",
            "f" * 64,
            len(y_test),
            {"model": metrics},
            decide(metrics, house_spec),
            slices,
            [str(p) for p in plots],
        )
    )
    for section in (
        "## Decision",
        "## Metrics",
        "## Gates",
        "## Slices by `location`",
        "## Plots",
    ):
        assert section in markdown
