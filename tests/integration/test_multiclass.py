"""Multiclass end to end: scikit-learn's wine (three cultivars) through `mlops run` and the
BentoML service over HTTP, every class's probability equal to the offline prediction."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import httpx
import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.evaluation import compute_metrics
from mlops_assets.core.families import load_model_file
from mlops_assets.core.features import to_matrix
from mlops_assets.monitoring.live import keyed_predictions
from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import WINE_SPEC, load_spec
from tests.servers import bento_service

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(WINE_SPEC)
CLASSES = ["0", "1", "2"]


@pytest.fixture(scope="module")
def wine(tmp_path_factory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("wine") / "mlops_home"
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    env.pop("MLOPS_SPEC", None)
    command = ["run", "--source", "sklearn", "--dataset", "wine", "--spec", str(WINE_SPEC)]
    built = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    yield {"home": home, "env": env, "stdout": built.stdout}


def test_the_run_cross_validates_and_promotes_on_log_loss(wine):
    stdout = wine["stdout"]
    assert "178 raw rows -> 178 cleaned, 0 quarantined" in stdout
    assert "5-fold cross-validation on 178 rows" in stdout
    assert "Estimate: log_loss " in stdout
    assert "Promotion: promoted" in stdout and "champion is v1 of 'wine'" in stdout
    models = list((wine["home"] / "models").iterdir())
    assert len(models) == 1
    report = models[0] / "report"
    assert {"confusion_matrix.png", "calibration_per_class.png"} <= {
        p.name for p in report.iterdir()
    }
    decision = json.loads((report / "decision.json").read_text())
    model = decision["metrics"]["model"]
    assert model["accuracy"] > 0.9 and model["log_loss"] < decision["metrics"]["prior"]["log_loss"]
    low, high = decision["estimate"]["interval"]
    assert low < decision["estimate"]["value"] < high
    assert {f"recall_{k}" for k in range(3)} | {"f1_macro", "roc_auc_ovr"} <= set(model)


def test_the_service_answers_every_class_as_the_offline_model_does(wine):
    home, paths = wine["home"], PlatformPaths(wine["home"])
    cleaned = pd.concat([pd.read_parquet(p) for p in sorted(paths.cleaned_dir().glob("*.parquet"))])
    rows = cleaned.sample(40, random_state=5).reset_index(drop=True)
    records = [
        {name: float(row[name]) for name in SPEC.feature_columns}
        | {SPEC.event_timestamp: row[SPEC.event_timestamp].isoformat()}
        for _, row in rows.iterrows()
    ]
    keys = rows[SPEC.entity_key].astype(int).tolist()
    with bento_service(wine["env"], ROOT) as url, httpx.Client(base_url=url, timeout=30) as client:
        info = client.get("/v1/model_info").json()
        single = [client.post("/v1/predict", json=r).json() for r in records[:10]]
        batch = client.post("/v1/predict_batch", json={"records": records}).json()
        by_key = client.post("/v1/predict_by_key", json={"keys": keys}).json()
    folder = home / "models" / info["mlflow_run_id"]
    family = json.loads((folder / "manifest.json").read_text())["family"]
    offline = load_model_file(folder, family).predict(to_matrix(rows, SPEC))
    assert offline.shape == (40, 3)

    def matrix(answers: list[dict[str, float]]) -> np.ndarray:
        assert all(list(a) == CLASSES for a in answers)
        return np.array([[a[c] for c in CLASSES] for a in answers])

    served = {
        "single": matrix([s["probabilities"] for s in single]),
        "batch": matrix(batch["probabilities"]),
        "by_key": matrix([by_key["probabilities"][str(k)] for k in keys]),
    }
    for name, probabilities in served.items():
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(probabilities, offline[: len(probabilities)], atol=1e-6)
    labels = offline.argmax(axis=1).tolist()
    assert [s["prediction"] for s in single] == labels[:10]
    assert batch["predictions"] == labels
    assert [by_key["predictions"][str(k)] for k in keys] == labels
    assert single[0]["model_version"] == batch["model_version"] == "1"
    # The prediction log keeps each row's probabilities; live performance reads them back.
    logged = keyed_predictions(paths, SPEC).frame
    by_key_rows = logged[logged["key"].isin(keys)].drop_duplicates("key").set_index("key")
    assert len(by_key_rows) == len(keys)
    np.testing.assert_allclose(
        np.stack(by_key_rows.loc[keys, "prediction"].to_numpy()), offline, atol=1e-12
    )
    # The drift report compares the answered classes with the champion's out-of-fold ones.
    mix = _drift_report(home)["predicted_class_mix"]
    answered = np.array(labels[:10] + labels + labels)  # /predict, /predict_batch, by key
    evaluation = pd.read_parquet(folder / "evaluation.parquet")
    reference = np.stack(evaluation[f"candidate:{family}"].to_numpy()).argmax(axis=1)
    assert mix["classes"] == CLASSES and mix["rows"] == len(answered) == 90
    assert mix["live"] == pytest.approx((np.bincount(answered, minlength=3) / 90).tolist())
    assert mix["reference"] == pytest.approx((np.bincount(reference, minlength=3) / 178).tolist())
    assert mix["drifted"] is (mix["psi"] > 0.2)
    # Most rows delivered again later (a batch needs quality.min_rows 100), the sampled ones
    # among them: their labels, known after the answers, judge the by-key predictions.
    again = cleaned[~cleaned[SPEC.entity_key].isin(keys)].iloc[20:]
    again = pd.concat([rows, again])[[*SPEC.feature_columns, SPEC.target]]
    delivery = home.parent / "labels.csv"
    again.astype({SPEC.target: int}).to_csv(delivery, index=False)
    live = _live_performance(home, str(delivery))
    assert (live["judged"], live["pending_predictions"], live["predictions_without_key"]) == (
        40,
        0,
        50,  # /v1/predict and /v1/predict_batch records named no entity
    )
    expected = compute_metrics(rows[SPEC.target].astype(float).to_numpy(), offline, SPEC.task)
    assert live["champion_live_rows"] == 40 and live["metric"] == "log_loss"
    assert live["champion_live_metric"] == pytest.approx(expected["log_loss"])


def _resources(home: Path) -> tuple[list, dict]:
    from mlops_assets.definitions import defs
    from mlops_assets.features.store_resource import FeatureStoreResource
    from mlops_assets.model_registry.tracking import MlflowTracking
    from mlops_assets.resources import DatasetSpecResource, MetricsPush, MlopsHome
    from mlops_assets.training.engine import TrainingEngine

    state = MlopsHome(path=str(home))
    resources = {
        "home": state,
        "dataset": DatasetSpecResource(home=state, spec_path=str(WINE_SPEC)),
        "feature_store": FeatureStoreResource(home=state),
        "mlflow_tracking": MlflowTracking(home=state),
        "metrics_push": MetricsPush(),
        "training_engine": TrainingEngine(),
    }
    return [a for a in defs.assets if not isinstance(a, dg.AssetSpec)], resources


def _live_performance(home: Path, delivery: str) -> dict:
    assets, resources = _resources(home)
    source = {"kind": "file", "path": delivery}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("batches", ["labels"])
        ingested = dg.materialize(
            assets,
            selection=["raw_data", "cleaned_data"],
            instance=instance,
            resources=resources,
            partition_key="labels",
            run_config={"ops": {"raw_data": {"config": source}}},
        )
        assert ingested.success
        result = dg.materialize(
            assets, selection=["live_performance"], instance=instance, resources=resources
        )
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _drift_report(home: Path) -> dict:
    assets, resources = _resources(home)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            assets,
            selection=["drift_report"],
            instance=instance,
            resources=resources,
            run_config={"ops": {"drift_report": {"config": {"min_live_rows": 50}}}},
        )
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}
