"""`drift_report` on live traffic: the inputs the service logged, against the training data.

The log is written by the service's own `PredictionLog`, so the report reads the real format.
"""

import time

import pandas as pd

from mlops_assets.serving.prediction_log import PredictionLog
from mlops_assets.sources import SyntheticConfig, generate_house_sales
from tests.integration.conftest import FEATURE_ASSETS, failure_text
from tests.materializations import metadata

LIVE_ROWS = 400


def _log_requests(paths, frame: pd.DataFrame, spec) -> None:
    """Log `frame`'s rows as single-row requests, as `/v1/predict` does."""
    log = PredictionLog(paths.root / "predictions", flush_seconds=60)
    for i, inputs in enumerate(frame[spec.feature_columns].to_dict("records")):
        log.append(
            {
                "request_id": f"r{i}",
                "endpoint": "/v1/predict",
                "model_version": "1",
                "latency_ms": 1.0,
                "timestamp": time.time(),
                "inputs": [inputs],
                "outputs": [300_000.0],
            }
        )
    log.close()


def _report(materialize_features):
    result = materialize_features(["drift_report"])
    assert result.success, failure_text(result)
    return metadata(result, "drift_report")


def test_live_traffic_drift_is_judged_from_the_prediction_log(
    ingest, materialize_features, paths, house_spec
):
    assert ingest("b1", {"rows": 2_000, "seed": 3}).success
    assert materialize_features(FEATURE_ASSETS).success
    assert _report(materialize_features)["live_rows"] == 0, "nothing served yet"

    like_training = pd.read_parquet(paths.cleaned("b1")).sample(LIVE_ROWS, random_state=0)
    _log_requests(paths, like_training, house_spec)
    calm = _report(materialize_features)
    assert calm["live_rows"] == LIVE_ROWS and calm["live_drifted"] is False
    assert f"{LIVE_ROWS} logged rows: **no drift**" in calm["report"]

    shifted = generate_house_sales(
        SyntheticConfig(rows=3 * LIVE_ROWS, seed=7, scenario="covariate_shift")
    )
    _log_requests(paths, shifted, house_spec)
    drifted = _report(materialize_features)
    assert drifted["live_rows"] == 4 * LIVE_ROWS and drifted["live_drifted"] is True
    assert f"{4 * LIVE_ROWS} logged rows: **DRIFTED**" in drifted["report"]
    assert drifted["drifted"] is False, "the batch itself has not drifted: only the traffic"
