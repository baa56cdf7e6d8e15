"""Window features against an independent computation: pandas on one entity at a time.

The platform computes them for every entity at once in DuckDB; here each value is recomputed
with pandas' own time-based rolling and exact-time lookups, including the strict edge: a row
exactly at t minus the horizon is never read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.features import MissingHistoryError, arrays_to_matrix, engineer_arrays
from mlops_assets.core.windows import window_features
from mlops_assets.spec import DatasetSpec

AGGREGATES = ["mean", "sum", "min", "max", "std", "count"]


def panel_spec(horizon: str = "0d", **windows) -> DatasetSpec:
    return DatasetSpec.model_validate(
        {
            "name": "demand",
            "task": "regression",
            "columns": [
                {"name": "item", "dtype": "int", "role": "entity_key"},
                {"name": "day", "dtype": "datetime", "role": "event_timestamp"},
                {"name": "price", "dtype": "float"},
                {"name": "sales", "dtype": "float", "role": "target"},
            ],
            "training": {"horizon": horizon},
            "windows": windows
            or {
                "lags": [{"column": "sales", "every": ["1d", "7d"]}],
                "rolling": [
                    {"column": "sales", "window": "7d", "aggregates": AGGREGATES},
                    {"column": "price", "window": "28d", "aggregates": ["mean"]},
                ],
                "calendar": ["day_of_week", "day_of_year", "month", "is_holiday"],
                "holidays": ["2024-12-25"],
            },
        }
    )


def panel(items: int = 3, days: int = 60, seed: int = 0) -> pd.DataFrame:
    """Daily sales with gaps (a fifth of the days missing) so windows hold uneven row counts."""
    rng = np.random.default_rng(seed)
    frames = []
    for item in range(items):
        all_days = pd.date_range("2024-11-01", periods=days, freq="D", tz="UTC")
        kept = np.sort(rng.choice(days, size=int(days * 0.8), replace=False))
        frames.append(
            pd.DataFrame(
                {
                    "item": item,
                    "day": all_days[kept],
                    "price": rng.uniform(1, 5, len(kept)),
                    "sales": rng.poisson(10 + item, len(kept)).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed)


def expected_for_one_item(rows: pd.DataFrame, horizon: pd.Timedelta) -> pd.DataFrame:
    """pandas' own computation for one entity: exact-time lags, time-based rolling windows."""
    rows = rows.sort_values("day").set_index("day")
    result = pd.DataFrame(index=rows.index)
    for lag in ("1d", "7d"):  # a horizon of 2d leaves out the 1d lag; its column is unread
        result[f"sales_lag_{lag}"] = (
            rows["sales"].reindex(rows.index - pd.Timedelta(lag)).to_numpy()
        )
    for column, window, aggregates in (("sales", "7d", AGGREGATES), ("price", "28d", ["mean"])):
        for aggregate in aggregates:
            values = []
            for t in rows.index:
                inside = rows[column][
                    (rows.index >= t - pd.Timedelta(window)) & (rows.index < t - horizon)
                ]
                values.append(getattr(inside, aggregate)() if aggregate != "count" else len(inside))
            result[f"{column}_{aggregate}_{window}"] = values
    return result


@pytest.mark.parametrize("horizon", ["0d", "2d"])
def test_every_window_value_matches_pandas_on_each_entity(horizon):
    frame = panel()
    spec = panel_spec(
        horizon=horizon,
        lags=[{"column": "sales", "every": ["7d"] if horizon != "0d" else ["1d", "7d"]}],
        rolling=[
            {"column": "sales", "window": "7d", "aggregates": AGGREGATES},
            {"column": "price", "window": "28d", "aggregates": ["mean"]},
        ],
    )
    computed = window_features(frame, spec)
    assert list(computed.index) == list(frame.index), "the input's row order is kept"
    for _item, rows in frame.groupby("item"):
        expected = expected_for_one_item(rows, pd.Timedelta(horizon))
        mine = computed.loc[rows.index].set_index(rows["day"]).sort_index()
        for name in spec.windows.history_features:
            np.testing.assert_allclose(
                mine[name].to_numpy(), expected[name].to_numpy(), rtol=1e-12, err_msg=name
            )


def test_a_row_exactly_at_t_minus_the_horizon_is_not_read():
    spec = panel_spec(
        horizon="1d", rolling=[{"column": "sales", "window": "3d", "aggregates": ["sum", "count"]}]
    )
    days = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"], utc=True)
    frame = pd.DataFrame(
        {"item": 1, "day": days, "price": 1.0, "sales": [1.0, 10.0, 100.0, 1000.0]}
    )
    computed = window_features(frame, spec)
    # On 4 January: rows in [1 Jan, 3 Jan) are read; 3 January itself (t - 1d) is not.
    assert computed["sales_sum_3d"].tolist()[-1] == 11.0
    assert computed["sales_count_3d"].tolist() == [0.0, 0.0, 1.0, 2.0]


def test_a_late_batch_with_older_dates_gives_the_values_of_an_ordered_delivery():
    spec = panel_spec()
    frame = panel(days=40)
    in_order = window_features(frame.sort_values("day"), spec).sort_index()
    late = frame[frame["day"] < "2024-11-20"]
    first = frame[frame["day"] >= "2024-11-20"]
    out_of_order = window_features(pd.concat([first, late]), spec).sort_index()
    pd.testing.assert_frame_equal(in_order, out_of_order)


def test_entities_never_read_each_other():
    spec = panel_spec()
    frame = panel(items=2)
    alone = window_features(frame[frame["item"] == 0], spec)
    together = window_features(frame, spec).loc[alone.index]
    pd.testing.assert_frame_equal(alone, together)


def test_calendar_features_come_from_the_shared_feature_function():
    spec = panel_spec()
    times = np.array(
        ["2024-12-23T10:00", "2024-12-25T00:00", "2025-01-01T23:59"], dtype="datetime64[ns]"
    )
    arrays = engineer_arrays({"price": np.array([1.0, 2.0, 3.0])}, times, spec)
    assert arrays["day_of_week"].tolist() == [0.0, 2.0, 2.0]  # Monday, Wednesday, Wednesday
    assert arrays["day_of_year"].tolist() == [358.0, 360.0, 1.0]
    assert arrays["month"].tolist() == [12.0, 12.0, 1.0]
    assert arrays["is_holiday"].tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(MissingHistoryError, match="sales_lag_1d, sales_lag_7d, sales_mean_7d"):
        arrays_to_matrix(arrays, spec)


@pytest.mark.parametrize(
    ("windows", "horizon", "message"),
    [
        (
            {"rolling": [{"column": "revenue", "window": "7d"}]},
            "0d",
            "column 'revenue' is not a numeric column",
        ),
        (
            {"rolling": [{"column": "sales", "window": "7d"}]},
            "7d",
            "'sales_mean_7d': 7d is not longer than training.horizon 7d",
        ),
        ({"lags": [{"column": "sales", "every": ["1 week"]}]}, "0d", "'1 week' is not a duration"),
        ({"calendar": ["is_holiday"]}, "0d", "is_holiday needs the dates in windows.holidays"),
    ],
)
def test_bad_windows_are_refused_at_load_naming_the_field(windows, horizon, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        panel_spec(horizon=horizon, **windows)


def test_windows_need_an_event_time():
    with pytest.raises(ValueError, match="the data has none"):
        DatasetSpec.model_validate(
            {
                "name": "untimed",
                "task": "regression",
                "columns": [
                    {"name": "a", "dtype": "float"},
                    {"name": "y", "dtype": "float", "role": "target"},
                ],
                "windows": {"lags": [{"column": "y", "every": ["1d"]}]},
            }
        )


def test_seasonal_naive_and_last_value_join_the_baselines_of_a_forecast():
    """A purely weekly series: the value a week before is exactly right, yesterday's is not."""
    from mlops_assets.core.candidates import Rows, compete
    from mlops_assets.core.features import engineer, to_matrix
    from mlops_assets.core.protocols import as_event_times, backtest_folds, plan_for
    from mlops_assets.core.training import TrainParams

    spec = panel_spec(
        lags=[{"column": "sales", "every": ["1d", "7d"]}],
        calendar=["day_of_week"],
    )
    days = pd.date_range("2024-01-01", periods=210, freq="D", tz="UTC")
    weekly = np.array([5.0, 7.0, 9.0, 11.0, 13.0, 30.0, 2.0])
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "item": item,
                    "day": days,
                    "price": 1.0,
                    "sales": weekly[days.dayofweek] * (item + 1),
                }
            )
            for item in range(2)
        ],
        ignore_index=True,
    )
    table = pd.concat([engineer(frame, spec), window_features(frame, spec)], axis=1)
    times = as_event_times(frame["day"])
    rows = Rows(to_matrix(table, spec), frame["sales"].to_numpy(), frame["item"].to_numpy(), times)
    plan = plan_for(len(rows.y), spec.training, "spec.yaml", "day")
    folds = backtest_folds(times, rows.y, rows.groups, spec, plan)
    competition = compete(rows, spec, plan, TrainParams(max_rounds=50), folds=folds)
    assert set(competition.baselines) == {"mean", "last_value", "seasonal_naive"}
    np.testing.assert_array_equal(competition.baselines["seasonal_naive"], competition.y)
    assert not np.allclose(competition.baselines["last_value"], competition.y)
