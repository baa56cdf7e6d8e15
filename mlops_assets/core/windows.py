"""Features of each entity's past: lags and rolling aggregates, point-in-time correct.

Computed over the whole table at once with DuckDB's window functions (no Python loop per
entity), ordered by the event time in nanoseconds. The value at time t reads only the entity's
rows strictly before t minus the horizon:

- a lag `L` is the entity's value at exactly t - L (null when it has no row then);
- a rolling aggregate over `W` reads the rows in [t - W, t - horizon); with none, the sum
  and count are 0 and the others null.

Every batch is recomputed together, so a late batch with older dates gives the same values as
if it had arrived in order.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from mlops_assets.core.protocols import as_event_times
from mlops_assets.spec import DatasetSpec
from mlops_assets.spec.model import Aggregate

SQL_AGGREGATE = {
    Aggregate.MEAN: "avg",
    Aggregate.SUM: "sum",
    Aggregate.MIN: "min",
    Aggregate.MAX: "max",
    Aggregate.STD: "stddev_samp",
    Aggregate.COUNT: "count",
}
_ROW, _KEY, _TIME = "__row", "__key", "__ns"


def _ns(duration: timedelta) -> int:
    return int(duration.total_seconds()) * 1_000_000_000 + duration.microseconds * 1_000


def window_features(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The spec's lag and rolling features of every row of `frame`, in its row order.

    `frame` holds the entity key, the event timestamp and the source columns (cleaned rows of
    every batch). The result has one float64 column per feature and `frame`'s index.
    """
    import duckdb

    windows = spec.windows
    names = windows.history_features
    if not names:
        return pd.DataFrame(index=frame.index)
    horizon = _ns(spec.training.gap)
    sources = sorted(
        {c for _, c, _ in windows.lag_names()} | {c for _, c, *_ in windows.rolling_names()}
    )
    table = pd.DataFrame(
        {
            _ROW: np.arange(len(frame), dtype=np.int64),
            _KEY: frame[spec.entity_key].to_numpy(),
            _TIME: as_event_times(frame[spec.event_timestamp]),
            **{
                f"c{i}": frame[c].to_numpy(dtype="float64", na_value=np.nan)
                for i, c in enumerate(sources)
            },
        }
    )
    column = {c: f"c{i}" for i, c in enumerate(sources)}
    over = f"PARTITION BY {_KEY} ORDER BY {_TIME}"
    selects = []
    for name, source, lag in windows.lag_names():
        at = f"{_ns(lag)} PRECEDING"
        selects.append(
            f'max({column[source]}) OVER ({over} RANGE BETWEEN {at} AND {at}) AS "{name}"'
        )
    for name, source, aggregate, window in windows.rolling_names():
        frame_sql = f"RANGE BETWEEN {_ns(window)} PRECEDING AND {horizon + 1} PRECEDING"
        value = f"{SQL_AGGREGATE[aggregate]}({column[source]}) OVER ({over} {frame_sql})"
        if aggregate == Aggregate.SUM:  # nothing sold in the window is a sum of 0, as a count
            value = f"coalesce({value}, 0)"
        selects.append(f'{value} AS "{name}"')
    query = f"SELECT {_ROW}, {', '.join(selects)} FROM history ORDER BY {_ROW}"
    with duckdb.connect() as connection:
        connection.register("history", table)
        result = connection.execute(query).df()
    values = result[names].astype("float64")
    values.index = frame.index
    return values
