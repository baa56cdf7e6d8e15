"""A synthetic retail market: daily sales of items in stores, whose expected demand is known.

Data-generating process (seeded by `seed`; a series' own traits by `seed` alone, so every
batch of the same seed sees the same stores and items):

1. Series. `rows // days` store-item series (at least one), numbered `series_id` 1, 2, ...
   Series i sells item `i // stores + 1` in store `i % stores + 1`. Each has a base demand
   (log-normal, median 6 a day: a fifth sell under one a day, so their sales are mostly zero),
   an item group (fresh, dry, frozen), a base price (1 to 10) and a price elasticity (1 to
   2.5). One series in five is a new item, launched on a day within the first 600 days of
   `EPOCH`; it has no rows before its launch.
2. Days. `days` consecutive days from `start`. On each day a series is on promotion with
   probability 0.1 (its price 20 % lower), and its price moves by up to 5 % either way.
3. Demand. The expected sales of a series on a day are
   `base * weekly[day of week] * (1 + 0.2 sin(2 pi day of year / 365.25)) * (1 + 0.1 years
   since EPOCH) * (price / base price) ** -elasticity * (1.3 if promoted) * (1.6 on a holiday)`,
   and the delivered sales are a Poisson draw from it: no forecast can beat the expected sales
   on average, so their error on a sample is the best achievable for that sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

EPOCH = date(2023, 1, 1)  # day 0 of the trend and of item launches
ITEM_GROUPS = ("fresh", "dry", "frozen")
WEEKLY = np.array([0.90, 0.85, 0.90, 1.00, 1.15, 1.35, 0.85])  # Monday .. Sunday
HOLIDAYS = tuple(
    date(year, month, day)
    for year in range(2023, 2031)
    for month, day in ((1, 1), (5, 1), (7, 4), (11, 25), (12, 24), (12, 25), (12, 31))
)


@dataclass(frozen=True)
class RetailConfig:
    """Knobs of the retail generator; the defaults give two years of 100 series."""

    rows: int = 73_000
    days: int = 730
    seed: int = 42
    start: date = EPOCH
    stores: int = 5

    def __post_init__(self) -> None:
        if self.rows < 1 or self.days < 1 or self.stores < 1:
            raise ValueError(
                f"rows, days and stores must be at least 1, got {self.rows}, {self.days}, "
                f"{self.stores}"
            )

    @property
    def series(self) -> int:
        """How many store-item series the batch holds."""
        return max(1, self.rows // self.days)


def _series_traits(config: RetailConfig) -> pd.DataFrame:
    """Each series' store, item, group, base demand, price, elasticity and launch day."""
    n = config.series
    rng = np.random.default_rng([config.seed, 1])  # traits depend on the seed alone
    size = max(n, 1)
    traits = pd.DataFrame(
        {
            "series_id": np.arange(1, size + 1),
            "store": np.arange(size) % config.stores + 1,
            "item": np.arange(size) // config.stores + 1,
            "base": rng.lognormal(np.log(6.0), 1.1, size),
            "group": rng.integers(0, len(ITEM_GROUPS), size),
            "base_price": rng.uniform(1.0, 10.0, size),
            "elasticity": rng.uniform(1.0, 2.5, size),
            "launch": np.where(rng.random(size) < 0.2, rng.integers(0, 600, size), 0),
        }
    )
    return traits.iloc[:n]


def expected_sales(frame: pd.DataFrame, traits: pd.DataFrame) -> np.ndarray:
    """The noise-free demand of each row (the documented formula)."""
    t = traits.set_index("series_id").loc[frame["series_id"]]
    days = pd.DatetimeIndex(frame["day"])
    since = (days.tz_localize(None) - pd.Timestamp(EPOCH)).days.to_numpy()
    holiday = np.isin(days.date, np.array(HOLIDAYS))
    return (
        t["base"].to_numpy()
        * WEEKLY[days.dayofweek]
        * (1 + 0.2 * np.sin(2 * np.pi * days.dayofyear.to_numpy() / 365.25))
        * (1 + 0.1 * since / 365.25)
        * (frame["price"].to_numpy() / t["base_price"].to_numpy()) ** -t["elasticity"].to_numpy()
        * np.where(frame["promo"].to_numpy() == 1, 1.3, 1.0)
        * np.where(holiday, 1.6, 1.0)
    )


def generate_retail_demand(config: RetailConfig, *, with_expected: bool = False) -> pd.DataFrame:
    """One batch of daily sales following the documented process, ordered by day then series."""
    traits = _series_traits(config)
    offset = (config.start - EPOCH).days
    rng = np.random.default_rng([config.seed, 2, offset, config.days, config.series])
    day_index = np.repeat(np.arange(config.days), len(traits))
    series = np.tile(np.arange(len(traits)), config.days)
    alive = offset + day_index >= traits["launch"].to_numpy()[series]
    day_index, series = day_index[alive], series[alive]
    promo = (rng.random(len(series)) < 0.1).astype(np.int64)
    base_price = traits["base_price"].to_numpy()[series]
    price = np.round(
        base_price * np.where(promo == 1, 0.8, 1.0) * rng.uniform(0.95, 1.05, len(series)), 2
    )
    start = datetime(config.start.year, config.start.month, config.start.day, tzinfo=UTC)
    frame = pd.DataFrame(
        {
            "series_id": traits["series_id"].to_numpy()[series],
            "day": pd.Timestamp(start) + pd.to_timedelta(day_index, unit="D"),
            "store": traits["store"].to_numpy()[series],
            "item_group": np.asarray(ITEM_GROUPS, dtype=object)[traits["group"].to_numpy()[series]],
            "price": price,
            "promo": promo,
        }
    )
    expected = expected_sales(frame, traits)
    frame["sales"] = rng.poisson(expected).astype(np.float64)
    if with_expected:
        frame["expected_sales"] = expected
    return frame


@dataclass(frozen=True)
class RetailSource:
    """The retail generator behind the `DataSource` interface."""

    config: RetailConfig

    def describe(self) -> str:
        """Name the generator and the knobs that change its output."""
        c = self.config
        return f"retail:rows={c.rows},days={c.days},seed={c.seed},start={c.start.isoformat()}"

    def load(self) -> pd.DataFrame:
        """Generate the batch (without the expected sales, which real data never has)."""
        return generate_retail_demand(self.config)
