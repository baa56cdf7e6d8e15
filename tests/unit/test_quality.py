from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.cleaning import clean
from mlops_assets.core.quality import Severity, check_cleaned, check_raw, row_count_check
from mlops_assets.core.raw import prepare_raw
from mlops_assets.sources import SyntheticConfig, generate_house_sales

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _by_name(outcomes):
    return {o.name: o for o in outcomes}


def _cleaned_outcomes(frame, spec):
    raw = prepare_raw(frame, spec, "test", NOW).frame
    result = clean(raw, spec)
    return result, _by_name(check_cleaned(result, spec))


@pytest.fixture
def batch() -> pd.DataFrame:
    return generate_house_sales(SyntheticConfig(rows=2_000, seed=2))


def test_good_batch_passes_every_check(batch, house_spec):
    raw = prepare_raw(batch, house_spec, "test", NOW).frame
    assert all(o.passed for o in check_raw(raw, house_spec))
    _, outcomes = _cleaned_outcomes(batch, house_spec)
    assert all(o.passed for o in outcomes.values())


def test_missing_column_blocks_raw(batch, house_spec):
    outcomes = _by_name(check_raw(batch.drop(columns=["condition"]), house_spec))
    assert outcomes["required_columns"].blocks
    assert "condition" in outcomes["required_columns"].description


def test_raw_reports_invalid_values_and_null_rates_as_warnings(batch, house_spec):
    batch.loc[:199, "sqft"] = np.nan
    batch.loc[:9, "bedrooms"] = 99
    outcomes = _by_name(check_raw(prepare_raw(batch, house_spec, "t", NOW).frame, house_spec))
    assert not outcomes["null_rates"].passed and outcomes["null_rates"].severity == Severity.WARN
    assert outcomes["null_rates"].metadata["over_limit"] == {"sqft": 0.1}
    assert outcomes["values_valid"].metadata["invalid_values"] == {"bedrooms": 10}
    assert not any(o.blocks for o in outcomes.values())


def test_row_count_ladder(house_spec):
    assert row_count_check(50, house_spec).blocks
    warn = row_count_check(500, house_spec)
    assert not warn.passed and warn.severity == Severity.WARN and not warn.blocks
    assert row_count_check(5_000, house_spec).passed


def test_quarantine_share_ladder(batch, house_spec):
    bad = generate_house_sales(
        SyntheticConfig(rows=2_000, seed=2, faults=("nulls",), fault_rate=0.05)
    )
    _, outcomes = _cleaned_outcomes(bad, house_spec)
    assert (
        outcomes["quarantine_share"].severity == Severity.WARN
        and not outcomes["quarantine_share"].passed
    )
    worse = generate_house_sales(
        SyntheticConfig(rows=2_000, seed=2, faults=("nulls",), fault_rate=0.2)
    )
    _, outcomes = _cleaned_outcomes(worse, house_spec)
    assert outcomes["quarantine_share"].blocks
    assert "20.00% of rows quarantined" in outcomes["quarantine_share"].description


def test_cleaned_checks_catch_a_broken_table(batch, house_spec):
    """The cleaned checks are a second line of defence: feed them a table cleaning never
    produces and each one names what is wrong."""
    result, _ = _cleaned_outcomes(batch, house_spec)
    broken = result.cleaned.copy()
    broken["sqft"] = broken["sqft"].astype("string")
    broken.loc[0, "bedrooms"] = 50
    broken.loc[1, "condition"] = np.nan
    broken.loc[3, ["house_id", "event_timestamp"]] = broken.loc[2, ["house_id", "event_timestamp"]]
    outcomes = _by_name(check_cleaned(replace(result, cleaned=broken), house_spec))
    assert "sqft: dtype string" in outcomes["schema_matches_spec"].description
    assert outcomes["values_valid"].metadata["invalid_values"] == {"bedrooms": 1}
    assert outcomes["no_forbidden_nulls"].metadata["nulls"] == {"condition": 1}
    assert outcomes["unique_key_per_timestamp"].metadata["duplicated_rows"] == 2
    for name in (
        "schema_matches_spec",
        "values_valid",
        "no_forbidden_nulls",
        "unique_key_per_timestamp",
    ):
        assert outcomes[name].blocks, name
