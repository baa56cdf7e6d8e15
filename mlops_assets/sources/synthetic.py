"""A synthetic house-sales market whose truth is known, the platform's offline default data.

Data-generating process (all draws from one `numpy` generator seeded by `seed`):

1. Houses. `rows - round(rows * repeat_share)` distinct houses get ids `first_house_id, ...`.
   Each has a location (urban/suburban/rural, shares `location_mix`), a floor area `sqft`
   (log-normal, median 1,800 ft² scaled by `sqft_scale`, clipped to 400-8,000), `bedrooms`
   (about one per 600 ft² plus noise, 1-8), `bathrooms` (half steps, 1-6), `year_built`
   (uniform 1900-2014), a condition (poor/fair/good/excellent) and a lot size in ft²
   (log-normal, larger outside cities, 1,000-200,000).
2. Sales. Every house sells once; the remaining rows are repeat sales of houses drawn at random
   (so some sell three times or more). Sale times are uniform over `[start, end)`; a house's
   sales are numbered in time order. Half of the houses that sell again were renovated between
   their first and second sale: from the second sale on they have 20 % more floor area, one more
   bathroom and a condition one step better. This is what makes point-in-time joins matter.
3. Price. `expected_price` is the noise-free price:
   `market(t) * (sqft * rate[location] * condition_factor * age_factor
   + 8,000 * bedrooms + 12,000 * bathrooms + 20,000 * log1p(lot_size / 1,000))`,
   with `market(t) = (1 + 0.045 y) (1 + 0.02 sin 2 pi y)` for `y` years since `start`, times
   1.25 after the middle of the span in the `market_jump` scenario, and
   `age_factor = 1 - 0.0025 * min(age at sale, 80)`. The delivered price is
   `expected_price * exp(noise_sigma * e - noise_sigma**2 / 2)`, `e ~ N(0, 1)`, so that
   `E[price | attributes, t] = expected_price`: no model can beat it, and the R² and MAE that
   `expected_price` reaches on a sample are the ceiling for that sample.

Scenarios for drift: `covariate_shift` (more city houses, 25 % larger) and `market_jump`.
Faults for tests, each on about `fault_rate` of the rows: `nulls`, `out_of_range`, `unparseable`
(text in `year_built`) and `duplicates` (exact copies of other rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

LOCATIONS = ("urban", "suburban", "rural")
CONDITIONS = ("poor", "fair", "good", "excellent")
RATE_PER_SQFT = np.array([420.0, 260.0, 150.0])  # by location
CONDITION_FACTOR = np.array([0.80, 0.92, 1.00, 1.12])
LOT_MEDIAN = np.array([3_000.0, 8_000.0, 30_000.0])  # by location
DRIFT_SCENARIOS = ("none", "covariate_shift", "market_jump")
FAULTS = ("nulls", "out_of_range", "unparseable", "duplicates")
SECONDS_PER_YEAR = 365.25 * 24 * 3600


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the generator; the defaults give the platform's demo data."""

    rows: int = 20_000
    seed: int = 42
    start: datetime = datetime(2015, 1, 1, tzinfo=UTC)
    end: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    first_house_id: int = 1
    repeat_share: float = 0.15
    noise_sigma: float = 0.10
    location_mix: tuple[float, float, float] = (0.35, 0.45, 0.20)
    sqft_scale: float = 1.0
    scenario: str = "none"
    faults: tuple[str, ...] = field(default_factory=tuple)
    fault_rate: float = 0.02

    def __post_init__(self) -> None:
        if self.rows < 1:
            raise ValueError(f"rows must be at least 1, got {self.rows}")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.scenario not in DRIFT_SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}; known: {DRIFT_SCENARIOS}")
        unknown = sorted(set(self.faults) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {FAULTS}")

    @property
    def effective_location_mix(self) -> np.ndarray:
        """Location shares after the scenario is applied."""
        if self.scenario == "covariate_shift":
            return np.array([0.60, 0.30, 0.10])
        return np.asarray(self.location_mix, dtype=float)

    @property
    def effective_sqft_scale(self) -> float:
        """Floor-area scale after the scenario is applied."""
        return self.sqft_scale * (1.25 if self.scenario == "covariate_shift" else 1.0)


def generate_house_sales(config: SyntheticConfig, *, with_expected: bool = False) -> pd.DataFrame:
    """Generate a batch of house sales following the documented process."""
    rng = np.random.default_rng(config.seed)
    n_repeat = round(config.rows * config.repeat_share) if config.rows > 1 else 0
    n_houses = config.rows - n_repeat
    houses = _draw_houses(rng, n_houses, config)
    house_of_row = np.concatenate([np.arange(n_houses), rng.integers(0, n_houses, n_repeat)])
    span = (config.end - config.start).total_seconds()
    offset = rng.uniform(0.0, span, config.rows)
    order = np.lexsort((offset, house_of_row))
    house_of_row, offset = house_of_row[order], offset[order]
    sale_number = _sale_number(house_of_row)
    frame = _sales_frame(houses, house_of_row, offset, sale_number, rng, config)
    frame["price"] = _noisy(rng, frame["expected_price"].to_numpy(), config.noise_sigma)
    frame = frame.sort_values("event_timestamp", kind="stable").reset_index(drop=True)
    frame = _apply_faults(frame, rng, config)
    if not with_expected:
        frame = frame.drop(columns=["expected_price"])
    return frame


def expected_price(frame: pd.DataFrame, config: SyntheticConfig) -> np.ndarray:
    """The noise-free price of each sale: the best any model can predict."""
    location = _codes(frame["location"], LOCATIONS)
    condition = _codes(frame["condition"], CONDITIONS)
    years = _years_since_start(frame["event_timestamp"], config)
    sale_year = frame["event_timestamp"].dt.year.to_numpy()
    age = np.clip(sale_year - frame["year_built"].to_numpy(dtype=float), 0, 80)
    structure = (
        frame["sqft"].to_numpy(dtype=float)
        * RATE_PER_SQFT[location]
        * CONDITION_FACTOR[condition]
        * (1.0 - 0.0025 * age)
    )
    extras = (
        8_000.0 * frame["bedrooms"].to_numpy(dtype=float)
        + 12_000.0 * frame["bathrooms"].to_numpy(dtype=float)
        + 20_000.0 * np.log1p(frame["lot_size"].to_numpy(dtype=float) / 1_000.0)
    )
    return market_index(years, config) * (structure + extras)


def market_index(years: np.ndarray, config: SyntheticConfig) -> np.ndarray:
    """Price level over time: trend, seasonality, and the optional jump."""
    index = (1.0 + 0.045 * years) * (1.0 + 0.02 * np.sin(2.0 * np.pi * years))
    if config.scenario == "market_jump":
        midpoint = (config.end - config.start).total_seconds() / SECONDS_PER_YEAR / 2.0
        index = index * np.where(years >= midpoint, 1.25, 1.0)
    return index


def _draw_houses(rng: np.random.Generator, n: int, config: SyntheticConfig) -> pd.DataFrame:
    location = rng.choice(3, size=n, p=config.effective_location_mix)
    sqft = np.clip(1_800.0 * config.effective_sqft_scale * rng.lognormal(0, 0.35, n), 400, 8_000)
    bedrooms = np.clip(np.round(sqft / 600.0 + rng.normal(0, 0.7, n)), 1, 8)
    bathrooms = np.clip(np.round((0.6 * bedrooms + rng.normal(0, 0.5, n)) * 2) / 2, 1, 6)
    lot = np.clip(LOT_MEDIAN[location] * rng.lognormal(0, 0.5, n), 1_000, 200_000)
    return pd.DataFrame(
        {
            "house_id": np.arange(n, dtype=np.int64) + config.first_house_id,
            "sqft": np.round(sqft),
            "bedrooms": bedrooms.astype(np.int64),
            "bathrooms": bathrooms,
            "location": location,
            "year_built": rng.integers(1900, 2015, n),
            "condition": rng.choice(4, size=n, p=[0.1, 0.3, 0.45, 0.15]),
            "lot_size": np.round(lot),
            "renovated": rng.random(n) < 0.5,
        }
    )


def _sale_number(house_of_row: np.ndarray) -> np.ndarray:
    """0 for a house's first sale, 1 for its second... (input sorted by house, then time)."""
    starts = np.r_[True, house_of_row[1:] != house_of_row[:-1]]
    first_index = np.maximum.accumulate(np.where(starts, np.arange(len(starts)), 0))
    return np.arange(len(house_of_row)) - first_index


def _sales_frame(
    houses: pd.DataFrame,
    house_of_row: np.ndarray,
    offset: np.ndarray,
    sale_number: np.ndarray,
    rng: np.random.Generator,
    config: SyntheticConfig,
) -> pd.DataFrame:
    sales = houses.iloc[house_of_row].reset_index(drop=True)
    renovated = sales.pop("renovated").to_numpy() & (sale_number >= 1)
    sales["sqft"] = np.where(renovated, np.round(sales["sqft"] * 1.2), sales["sqft"])
    sales["bathrooms"] = np.where(
        renovated, np.minimum(sales["bathrooms"] + 1, 6), sales["bathrooms"]
    )
    sales["condition"] = np.where(
        renovated, np.minimum(sales["condition"] + 1, 3), sales["condition"]
    )
    start = pd.Timestamp(config.start)
    sales.insert(1, "event_timestamp", start + pd.to_timedelta(np.floor(offset), unit="s"))
    sales["location"] = pd.Categorical.from_codes(sales["location"], categories=LOCATIONS)
    sales["condition"] = pd.Categorical.from_codes(sales["condition"], categories=CONDITIONS)
    sales["expected_price"] = expected_price(sales, config)
    return sales


def _noisy(rng: np.random.Generator, expected: np.ndarray, sigma: float) -> np.ndarray:
    noise = np.exp(sigma * rng.standard_normal(len(expected)) - sigma**2 / 2.0)
    return np.round(expected * noise, 2)


def _apply_faults(
    frame: pd.DataFrame, rng: np.random.Generator, config: SyntheticConfig
) -> pd.DataFrame:
    n = len(frame)
    count = max(1, round(n * config.fault_rate)) if config.faults else 0
    if "nulls" in config.faults:
        frame.loc[rng.choice(n, count, replace=False), "sqft"] = np.nan
    if "out_of_range" in config.faults:
        frame.loc[rng.choice(n, count, replace=False), "bedrooms"] = 99
    if "unparseable" in config.faults:
        text = frame["year_built"].astype("string")
        text.iloc[rng.choice(n, count, replace=False)] = "unknown"
        frame["year_built"] = text
    if "duplicates" in config.faults and n > 1:
        copies = min(count, n // 2)
        frame.iloc[n - copies :] = frame.iloc[:copies].to_numpy()
    return frame


def _codes(values: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    codes = pd.Categorical(values, categories=categories).codes
    if (codes < 0).any():
        raise ValueError(f"values outside {categories}")
    return codes


def _years_since_start(timestamps: pd.Series, config: SyntheticConfig) -> np.ndarray:
    delta = (timestamps - pd.Timestamp(config.start)).dt.total_seconds().to_numpy()
    return delta / SECONDS_PER_YEAR


@dataclass(frozen=True)
class SyntheticSource:
    """The generator behind the `DataSource` interface."""

    config: SyntheticConfig

    def describe(self) -> str:
        """Name the generator and the knobs that change its output."""
        c = self.config
        faults = ",".join(c.faults) or "none"
        return f"synthetic:rows={c.rows},seed={c.seed},scenario={c.scenario},faults={faults}"

    def load(self) -> pd.DataFrame:
        """Generate the batch (without the noise-free price, which real data never has)."""
        return generate_house_sales(self.config)
