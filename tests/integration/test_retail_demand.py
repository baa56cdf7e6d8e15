"""Retail demand forecasting end to end: one command, window features served fresh by key.

A small market (a dozen store-item series over 200 days) through `mlops run`, then the
BentoML service over HTTP: each series' prediction by key equals the model on the training
set's newest row of that series (the same window values offline and online), and a request
that cannot carry a series' history is refused naming what it lacks.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.families import load_model_file
from mlops_assets.core.features import to_matrix
from mlops_assets.features.assets import categories_from_text
from mlops_assets.spec import RETAIL_DEMAND_SPEC, load_spec
from tests.servers import bento_service

pytestmark = [pytest.mark.server, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(RETAIL_DEMAND_SPEC)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("retail") / "mlops_home"
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    env.pop("MLOPS_SPEC", None)
    command = ["run", "--spec", "retail_demand", "--source", "retail", "--rows", "2400"]
    built = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", *command, "--days", "200"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    with bento_service(env, ROOT) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield {"client": client, "home": home, "stdout": built.stdout}


def test_one_command_trains_a_forecaster_judged_on_later_days(served):
    out = served["stdout"]
    assert "rolling-origin backtest" in out and "each later than its model's training rows" in out
    assert "Promotion: promoted" in out
    report = json.loads(
        next((served["home"] / "models").glob("*/report/decision.json")).read_text()
    )
    metrics = report["metrics"]
    assert {"wape", "smape", "mase"} <= set(metrics["model"])
    # The default gate: beat every baseline, seasonal naive (the week-old value) included.
    assert metrics["model"]["mae"] < metrics["seasonal_naive"]["mae"]
    assert metrics["model"]["mae"] < metrics["last_value"]["mae"]
    assert metrics["model"]["mase"] < 1.0


def test_by_key_predictions_use_the_same_window_values_as_training(served):
    home, key = served["home"], SPEC.entity_key
    info = served["client"].get("/v1/model_info").json()
    folder = home / "models" / info["mlflow_run_id"]
    manifest = json.loads((folder / "manifest.json").read_text())
    model = load_model_file(folder, manifest["family"])
    features = pd.read_parquet(home / "feast" / "data" / f"{SPEC.name}_features.parquet")
    newest = features.sort_values(SPEC.event_timestamp).groupby(key).tail(1)
    newest = categories_from_text(newest, SPEC).sort_values(key)
    offline = model.predict(to_matrix(newest, SPEC))
    keys = newest[key].astype(int).tolist()
    answer = served["client"].post("/v1/predict_by_key", json={"keys": keys})
    assert answer.status_code == 200, answer.text
    by_key = answer.json()["predictions"]
    np.testing.assert_allclose([by_key[str(k)] for k in keys], offline, rtol=0, atol=1e-6)
    assert newest["sales_lag_7d"].notna().all(), "the newest rows carry last week's sales"


def test_a_request_without_the_series_history_is_refused_naming_it(served):
    record = {
        "store": 1,
        "item_group": "dry",
        "price": 3.5,
        "promo": 0,
        "day": "2023-07-01T00:00:00+00:00",
    }
    answer = served["client"].post("/v1/predict", json=record)
    assert answer.status_code == 400
    message = answer.json()["error"]
    assert "sales_lag_1d" in message and "/v1/predict_by_key" in message
