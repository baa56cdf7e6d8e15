from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pytest

from mlops_assets.automation.sensors import _retrain_decision
from mlops_assets.automation.settings import load_settings
from mlops_assets.core.drift import (
    DriftThresholds,
    categorical_psi,
    detect_drift,
    normalised_wasserstein,
    numeric_psi,
    psi,
)
from mlops_assets.core.features import engineer
from mlops_assets.core.statistics import feature_statistics
from mlops_assets.monitoring.inputs import monitored_columns
from mlops_assets.sources import SyntheticConfig, generate_house_sales


@pytest.fixture(scope="module")
def reference(house_spec):
    return feature_statistics(
        engineer(generate_house_sales(SyntheticConfig(rows=20_000)), house_spec), house_spec
    )


def _batch(house_spec, scenario: str):
    config = SyntheticConfig(rows=5_000, seed=9, scenario=scenario, first_house_id=100_000_000)
    return monitored_columns(generate_house_sales(config), house_spec)


def test_psi_basics():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(
        0.4 * np.log(1.8) - 0.4 * np.log(0.2), rel=1e-6
    )
    assert categorical_psi(
        {"a": 0.5, "b": 0.5}, np.array(["a", "b"] * 50, dtype=object)
    ) == pytest.approx(0.0, abs=1e-3)


def test_same_distribution_has_tiny_psi_and_distance():
    rng = np.random.default_rng(0)
    reference = np.quantile(rng.normal(size=100_000), np.linspace(0, 1, 101)).tolist()
    sample = rng.normal(size=50_000)
    assert numeric_psi(reference, sample) < 0.01
    assert normalised_wasserstein(reference, 1.0, sample) < 0.05
    shifted = sample + 0.5
    assert numeric_psi(reference, shifted) > 0.2
    assert normalised_wasserstein(reference, 1.0, shifted) == pytest.approx(0.5, abs=0.1)


def test_discrete_columns_do_not_drift_against_themselves(reference, house_spec):
    result = detect_drift(reference, _batch(house_spec, "none"))
    assert not result.drifted and result.drifted_share == 0.0
    assert max(c.psi for c in result.columns) < 0.05


def test_covariate_shift_is_detected_and_market_jump_is_not_input_drift(reference, house_spec):
    shifted = detect_drift(reference, _batch(house_spec, "covariate_shift"))
    assert shifted.drifted
    drifted = {c.column for c in shifted.columns if c.drifted}
    assert {"sqft", "location"} <= drifted
    assert not detect_drift(reference, _batch(house_spec, "market_jump")).drifted


def test_thresholds_are_configurable(reference, house_spec):
    strict = DriftThresholds(psi=0.001, wasserstein=0.001, drifted_share=0.1)
    assert detect_drift(reference, _batch(house_spec, "none"), strict).drifted


def test_retrain_decision_cooldown_and_daily_cap(house_spec):
    settings = load_settings()
    state = {"drifted": True, "reason": "x", "report_storage_id": 7}
    request = _retrain_decision(state, {"retrains": []}, settings, house_spec)
    assert isinstance(request, dg.RunRequest) and request.job_name == "pipeline_job"
    assert isinstance(
        _retrain_decision({**state, "drifted": False}, {"retrains": []}, settings, house_spec),
        dg.SkipReason,
    )
    just_now = [datetime.now(UTC).isoformat()]
    cooled = _retrain_decision(state, {"retrains": just_now}, settings, house_spec)
    assert isinstance(cooled, dg.SkipReason) and "cooldown" in cooled.skip_message
    spaced = [
        (datetime.now(UTC) - timedelta(hours=7 + i)).isoformat()
        for i in range(settings.max_retrains_per_day)
    ]
    capped = _retrain_decision(state, {"retrains": spaced}, settings, house_spec)
    assert isinstance(capped, dg.SkipReason) and "today" in capped.skip_message


def test_categorical_nulls_are_not_drift(reference, house_spec):
    columns = _batch(house_spec, "none")
    columns["location"] = columns["location"].copy()
    columns["location"][:250] = None
    result = detect_drift(reference, columns)
    location = next(c for c in result.columns if c.column == "location")
    assert location.psi < 0.05 and not location.drifted
