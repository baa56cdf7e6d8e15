"""Time-ordered evaluation: judged rows are always later than the rows their model learned from.

The data here drifts: the label follows a level that rises day by day. A model judged on rows
shuffled among its training rows interpolates between neighbouring days and looks nearly
perfect; judged on later days, a tree model cannot extrapolate the rise, and the estimate says
so. Both figures are known in advance from how the data was made.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.candidates import Rows, compete
from mlops_assets.core.protocols import (
    Folds,
    TrainingDataError,
    as_event_times,
    assign_folds,
    backtest_folds,
    plan_for,
)
from mlops_assets.core.splits import UNUSED, time_split
from mlops_assets.core.training import TrainParams
from mlops_assets.core.uncertainty import metric
from mlops_assets.spec import DatasetSpec, Protocol, SpecError, load_spec

FAST = TrainParams(learning_rate=0.2, max_rounds=300, early_stopping_rounds=20)
DAY = np.int64(86_400 * 10**9)
START = datetime(2020, 1, 1, tzinfo=UTC)


def drifting_spec(**training) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {
            "name": "drifting",
            "task": "regression",
            "columns": [
                {"name": "store", "dtype": "int", "role": "entity_key"},
                {"name": "day", "dtype": "datetime", "role": "event_timestamp"},
                {"name": "day_number", "dtype": "float"},
                {"name": "noise_feature", "dtype": "float"},
                {"name": "sales", "dtype": "float", "role": "target"},
            ],
            "training": training,
        }
    )


def drifting_rows(days: int = 600, stores: int = 1, seed: int = 0) -> Rows:
    """Sales = 0.01 x day number + N(0, 0.1): a steady rise a tree cannot extrapolate."""
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(days), stores)
    store = np.tile(np.arange(stores), days)
    y = 0.01 * day + rng.normal(0, 0.1, len(day))
    x = np.column_stack([day.astype(np.float32), rng.normal(size=len(day)).astype(np.float32)])
    times = np.int64(as_event_times([START])[0]) + day.astype(np.int64) * DAY
    return Rows(x, y, store, times)


def test_auto_on_timed_data_backtests_small_and_tests_the_latest_period_on_large():
    settings = drifting_spec().training
    small = plan_for(600, settings, "spec.yaml", "day")
    large = plan_for(20_000, settings, "spec.yaml", "day")
    untimed = plan_for(600, settings, "spec.yaml", None)
    assert small.protocol == Protocol.BACKTEST
    assert large.protocol == Protocol.LATEST_PERIOD
    assert untimed.protocol == Protocol.CROSS_VALIDATION
    assert small.why == (
        "auto: event time 'day' is in the data, so every judged row is later than the rows its "
        "model learned from (rolling-origin backtest; 600 rows < training.cv_below_rows 10,000)"
    )


def test_a_shuffled_protocol_on_timed_data_says_the_estimate_may_use_the_future():
    settings = drifting_spec(protocol="cross_validation").training
    plan = plan_for(600, settings, "spec.yaml", "day")
    assert plan.protocol == Protocol.CROSS_VALIDATION
    assert "the estimate may use the future" in plan.why


def test_the_time_honest_estimate_is_reported_where_shuffling_would_flatter():
    spec = drifting_spec(families=["xgboost"])
    rows = drifting_rows()
    backtest_plan = plan_for(len(rows.y), spec.training, "spec.yaml", "day")
    folds = backtest_folds(rows.times, rows.y, rows.groups, spec, backtest_plan)
    honest = compete(rows, spec, backtest_plan, FAST, folds=folds)
    shuffled_spec = drifting_spec(families=["xgboost"], protocol="cross_validation")
    shuffled_plan = plan_for(len(rows.y), shuffled_spec.training, "spec.yaml", "day")
    each_day = Rows(rows.x, rows.y, np.arange(len(rows.y)), rows.times)  # one series: rows
    shuffled_folds = Folds(assign_folds(rows.y, each_day.groups, shuffled_spec, shuffled_plan))
    flattering = compete(each_day, shuffled_spec, shuffled_plan, FAST, folds=shuffled_folds)
    honest_rmse = metric(honest.y, honest.challenger.predictions, "rmse", spec.task)
    shuffled_rmse = metric(flattering.y, flattering.challenger.predictions, "rmse", spec.task)
    # Shuffled: neighbours of every judged day were trained on, so the error stays near the
    # noise's 0.1 (trees approximate the rise in steps).
    assert 0.1 <= shuffled_rmse < 0.25
    # Later days: fold k (1..5) fits days [0, 80k), early-stops on [80k, 100k) and is judged
    # on [100k, 100k + 100): a flat extrapolation near 0.8k misses by 0.2k to 0.2k + 1, an
    # RMSE of about 1.2 over the five folds.
    assert 1.0 < honest_rmse < 1.6
    assert honest.protocol == Protocol.BACKTEST
    assert len(honest.rows) == 500, "the first of six blocks only ever trains"


def test_a_linear_trend_wins_once_judged_on_later_days():
    spec = drifting_spec()
    rows = drifting_rows()
    plan = plan_for(len(rows.y), spec.training, "spec.yaml", "day")
    folds = backtest_folds(rows.times, rows.y, rows.groups, spec, plan)
    competition = compete(rows, spec, plan, FAST, folds=folds)
    assert competition.winner == "linear"


def test_every_fold_trains_only_on_rows_before_its_judged_rows_minus_the_horizon():
    spec = drifting_spec(horizon="7d", folds=4)
    rows = drifting_rows(days=300, stores=3)
    plan = plan_for(len(rows.y), spec.training, "spec.yaml", "day")
    folds = backtest_folds(rows.times, rows.y, rows.groups, spec, plan)
    assert list(folds.numbers) == [0, 1, 2, 3]
    for fold in folds.numbers:
        judged = rows.times[folds.assignment == fold]
        trained = rows.times[folds.training(fold)]
        assert trained.max() + 7 * DAY < judged.min()
        # Expanding window: everything older than the gap is used.
        assert trained.min() == rows.times.min()
        assert trained.max() == judged.min() - 8 * DAY
    windows = folds.windows[0]
    assert windows["train_from"] == "2020-01-01" and windows["judged_from"] == "2020-03-01"
    assert windows["train_to"] == "2020-02-22"


def test_unseen_entities_keeps_a_folds_entities_out_of_its_training():
    spec = drifting_spec(unseen_entities=True, folds=3)
    rng = np.random.default_rng(1)
    rows = drifting_rows(days=200, stores=10)
    rows = Rows(rows.x, rows.y, rng.permutation(10)[rows.groups], rows.times)
    # Each store appears on every day, so a fold's judged stores are all stores: refused.
    plan = plan_for(len(rows.y), spec.training, "spec.yaml", "day")
    with pytest.raises(TrainingDataError, match=r"backtest fold 1 .* has 0 rows to train on"):
        backtest_folds(rows.times, rows.y, rows.groups, spec, plan)
    # Stores that each cover one stretch of time: a fold judges stores it never trained on.
    stores = np.arange(len(rows.y)) // 100
    rows = Rows(rows.x, rows.y, stores, rows.times)
    folds = backtest_folds(rows.times, rows.y, rows.groups, spec, plan)
    for fold in folds.numbers:
        judged = set(stores[folds.assignment == fold])
        assert judged.isdisjoint(stores[folds.training(fold)])


def test_too_little_history_is_refused_with_what_was_found_and_the_setting():
    spec = drifting_spec(folds=5)
    rows = drifting_rows(days=4)
    plan = plan_for(len(rows.y), spec.training, "/data/spec.yaml", "day")
    with pytest.raises(TrainingDataError) as refused:
        backtest_folds(rows.times, rows.y, rows.groups, spec, plan)
    assert str(refused.value) == (
        "a backtest with 5 folds needs at least 6 distinct event times; the data has 4 "
        "(2020-01-01 to 2020-01-04): lower training.folds in /data/spec.yaml, or "
        "`mlops run --folds N`"
    )


def test_a_horizon_longer_than_the_history_before_a_fold_is_refused():
    spec = drifting_spec(folds=5, horizon="90d", min_rows=20)
    rows = drifting_rows(days=300)
    plan = plan_for(len(rows.y), spec.training, "spec.yaml", "day")
    with pytest.raises(TrainingDataError, match=r"backtest fold 1 \(judged from 2020-02-20\)"):
        backtest_folds(rows.times, rows.y, rows.groups, spec, plan)


def test_the_latest_period_split_judges_the_latest_rows_after_a_gap():
    times = np.int64(as_event_times([START])[0]) + np.arange(100, dtype=np.int64) * DAY
    keys = np.arange(100) % 7
    labels = time_split(times[::-1], (0.7, 0.15, 0.15), 3 * int(DAY))[::-1]
    assert list(labels[:67]) == ["train"] * 67
    assert list(labels[67:70]) == [UNUSED] * 3, "three days of gap before validation"
    assert list(labels[70:85]) == ["validation"] * 15
    assert list(labels[85:]) == ["test"] * 15
    unseen = time_split(times, (0.7, 0.15, 0.15), 0, keys)
    judged_keys = set(keys[(unseen == "validation") | (unseen == "test")])
    assert judged_keys.isdisjoint(keys[unseen == "train"])


def test_rows_of_one_instant_share_a_split():
    times = np.repeat(np.arange(10, dtype=np.int64) * DAY, 10)
    labels = time_split(times)
    for instant in np.unique(times):
        assert len(set(labels[times == instant])) == 1


def test_time_settings_are_checked_when_the_spec_loads(tmp_path):
    with pytest.raises(ValueError, match="'7 days' is not a duration"):
        drifting_spec(horizon="7 days")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        "name: untimed\ntask: regression\ntraining: {protocol: time_ordered}\ncolumns:\n"
        "  - {name: a, dtype: float}\n  - {name: y, dtype: float, role: target}\n"
    )
    with pytest.raises(SpecError, match="needs a column with role 'event_timestamp'"):
        load_spec(spec_file)


def test_event_times_are_nanoseconds_in_utc():
    text = ["2020-01-01T01:00:00+01:00", "2020-01-02T00:00:00+00:00"]
    stamps = pd.Series(pd.to_datetime(text, utc=True))
    assert list(as_event_times(stamps)) == [
        np.int64(as_event_times([START])[0]),
        np.int64(as_event_times([START + timedelta(days=1)])[0]),
    ]
