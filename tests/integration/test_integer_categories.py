"""A heart-like CSV end to end: integer category codes and imputation, over real HTTP.

The spec (tests/data/heart_like.yaml) declares `cp` as `categories: [1, 2, 3, 4]` and lets
`chol` be imputed with the median; the CSV writes some codes as "3.0", one unknown code and
one word. `mlops run` ingests, trains and promotes; `bentoml serve` then answers.
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

from mlops_assets.core.cleaning import REASON_COLUMN
from mlops_assets.core.families import load_model_file
from mlops_assets.core.features import to_matrix
from mlops_assets.spec import load_spec
from tests.servers import bento_service
from tests.spec_files import HEART_SPEC

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(HEART_SPEC)
ROWS = 1_200
GOOD = {"age": 55, "sex": 1, "cp": 3, "trestbps": 130.0, "chol": 250.0, "thalach": 140.0}


def heart_like_csv(path: Path, rows: int = ROWS, seed: int = 11) -> pd.DataFrame:
    """Rows whose label depends strongly on `cp`; 8 % of `chol` missing; a few bad codes."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(30, 78, rows),
            "sex": rng.integers(0, 2, rows),
            "cp": rng.integers(1, 5, rows),
            "trestbps": rng.normal(130, 15, rows).round(1).clip(80, 220),
            "chol": rng.normal(245, 45, rows).round().clip(120, 560),
            "thalach": rng.normal(150, 20, rows).round().clip(80, 210),
        }
    )
    logit = (
        -2.0
        + 1.1 * (frame["cp"] - 1)
        + 0.04 * (frame["age"] - 50)
        + 0.015 * (frame["chol"] - 245)
        - 0.03 * (frame["thalach"] - 150)
        + 0.6 * frame["sex"]
    )
    frame["target"] = (rng.uniform(0, 1, rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame.loc[rng.random(rows) < 0.08, "chol"] = np.nan
    cp = frame["cp"].astype(object)
    cp[cp == 3] = np.where(rng.random(int((cp == 3).sum())) < 0.5, "3.0", "3")
    cp.iloc[0], cp.iloc[1] = 7, "three"
    frame["cp"] = cp
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("heart")
    home = folder / "mlops_home"
    heart_like_csv(folder / "heart.csv")
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    env.pop("MLOPS_SPEC", None)
    command = [sys.executable, "-m", "mlops_assets.cli", "run", "--source", "file"]
    command += ["--path", str(folder / "heart.csv"), "--spec", str(HEART_SPEC)]
    built = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    with bento_service(env, ROOT) as url, httpx.Client(base_url=url, timeout=30) as client:
        info = client.get("/v1/model_info").json()
        model = home / "models" / info["mlflow_run_id"]
        yield {
            "client": client,
            "home": home,
            "stdout": built.stdout,
            "model": model,
            "csv": folder / "heart.csv",
        }


def _post(served, path: str, body) -> httpx.Response:
    return served["client"].post(
        path, content=json.dumps(body), headers={"content-type": "application/json"}
    )


def _model(served):
    """The served model, whichever family won (XGBoost's file or the linear JSON)."""
    family = json.loads((served["model"] / "manifest.json").read_text())["family"]
    return load_model_file(served["model"], family)


def _cleaned(served) -> pd.DataFrame:
    return pd.read_parquet(next((served["home"] / "data" / "cleaned").glob("*.parquet")))


def _features(served) -> pd.DataFrame:
    return pd.read_parquet(served["home"] / "feast" / "data" / "heart_like_features.parquet")


def _record(row: pd.Series) -> dict:
    """A cleaned row as a client would send it: JSON integers for codes, null when missing."""
    record = {}
    for name in SPEC.feature_columns:
        value = row[name]
        record[name] = None if pd.isna(value) else value.item() if hasattr(value, "item") else value
    return record


def test_promoted_with_csv_codes_matched_and_bad_codes_quarantined(served):
    assert "Promotion: promoted" in served["stdout"]
    cleaned = _cleaned(served)
    assert sorted(cleaned["cp"].astype("object").unique()) == [1, 2, 3, 4]
    assert all(type(v) is int for v in cleaned["cp"].astype("object")), "integers, not text"
    assert len(cleaned) == ROWS - 2
    source = pd.read_csv(served["csv"], dtype={"cp": str})
    written_as_three = source["cp"].isin(["3", "3.0"]).sum()
    assert (source["cp"] == "3.0").sum() > 50, "both spellings of 3 are in the file"
    assert (cleaned["cp"] == 3).sum() == written_as_three
    quarantine = pd.read_parquet(next((served["home"] / "data" / "quarantine").glob("*.parquet")))
    assert sorted(quarantine[REASON_COLUMN]) == ["unknown_category:cp", "unparseable:cp"]


def test_service_takes_integer_codes_as_json_integers_only(served):
    answer = _post(served, "/v1/predict", GOOD)
    assert answer.status_code == 200 and 0 <= answer.json()["prediction"] <= 1
    for bad in (7, "3", 3.0, True):
        refused = _post(served, "/v1/predict", {**GOOD, "cp": bad})
        assert refused.status_code == 400, bad
        assert refused.json()["problems"][0]["field"] == "cp"
    assert _post(served, "/v1/predict", {**GOOD, "sex": "1"}).status_code == 400


def test_a_batch_names_a_record_whose_code_is_not_a_json_integer(served):
    """Column-wise batch validation keeps the integer-category rule, record by record."""
    records = [{**GOOD, "cp": 1 + i % 4, "sex": i % 2} for i in range(1_000)]
    accepted = _post(served, "/v1/predict_batch", {"records": records})
    assert accepted.status_code == 200, accepted.text
    singles = [_post(served, "/v1/predict", records[i]).json()["prediction"] for i in (0, 537)]
    assert accepted.json()["predictions"][0] == pytest.approx(singles[0], abs=1e-6)
    assert accepted.json()["predictions"][537] == pytest.approx(singles[1], abs=1e-6)
    for bad in ("3", 3.0, True, 7):
        records[537] = {**GOOD, "cp": bad}
        refused = _post(served, "/v1/predict_batch", {"records": records})
        assert refused.status_code == 400, bad
        assert [p["field"] for p in refused.json()["problems"]] == ["records.537.cp"], bad


def test_records_and_keys_agree_with_the_offline_prediction(served):
    """Integer codes through the request, and through Feast's text, give the same model input."""
    features = _features(served).sample(60, random_state=2).reset_index(drop=True)
    cleaned = _cleaned(served).set_index("row_id").loc[features["row_id"]].reset_index()
    assert cleaned["chol"].isna().any(), "the sample holds rows whose chol was imputed"
    offline = _model(served).predict(to_matrix(_typed(features), SPEC))
    records = [_record(row) for _, row in cleaned.iterrows()]
    batch = _post(served, "/v1/predict_batch", {"records": records}).json()["predictions"]
    keys = features["row_id"].tolist()
    by_key = _post(served, "/v1/predict_by_key", {"keys": keys}).json()["predictions"]
    np.testing.assert_allclose(batch, offline, rtol=0, atol=1e-6)
    np.testing.assert_allclose([by_key[str(k)] for k in keys], offline, rtol=0, atol=1e-6)


def test_a_missing_imputed_field_gets_the_value_training_used(served):
    manifest = json.loads((served["model"] / "manifest.json").read_text())
    stored = manifest["imputation"]["chol"]
    cleaned = _cleaned(served)
    assert stored == float(cleaned["chol"].median()), "the median of every cleaned row"
    features = _features(served)
    imputed = features.loc[features["row_id"].isin(cleaned.loc[cleaned["chol"].isna(), "row_id"])]
    assert len(imputed) > 50 and (imputed["chol"] == stored).all()
    assert np.allclose(imputed["chol_per_age"], stored / imputed["age"])

    row = imputed.iloc[0]
    offline = float(_model(served).predict(to_matrix(_typed(imputed.iloc[:1]), SPEC))[0])
    record = _record(cleaned.set_index("row_id").loc[row["row_id"]])
    assert record["chol"] is None
    without = {k: v for k, v in record.items() if k != "chol"}
    answers = [
        _post(served, "/v1/predict", body).json()["prediction"]
        for body in (without, record, {**record, "chol": stored})
    ]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0] == pytest.approx(offline, abs=1e-6)
    assert (
        _post(served, "/v1/predict", {**record, "chol": stored + 40}).json()["prediction"]
        != (answers[0])
    ), "a different chol changes the answer, so the equality above is not vacuous"


def test_report_uses_the_specs_threshold_and_shows_calibration(served):
    report = served["model"] / "report"
    decision = json.loads((report / "decision.json").read_text())
    metrics = decision["metrics"]["model"]
    assert {"roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1"} <= set(metrics)
    # The estimate's rows (out-of-fold on this small set) and the winner's predictions on them.
    evaluation = pd.read_parquet(served["model"] / "evaluation.parquet")
    probabilities = evaluation[f"candidate:{decision['estimate']['family']}"].to_numpy()
    y = evaluation["y"].to_numpy()
    assert metrics["accuracy"] == pytest.approx(np.mean((probabilities >= 0.4) == y))
    assert metrics["brier"] == pytest.approx(np.mean((probabilities - y) ** 2), rel=1e-6)
    assert (report / "calibration.png").stat().st_size > 5_000
    assert "probability >= 0.4" in (report / "validation_report.md").read_text()


def _typed(features: pd.DataFrame) -> pd.DataFrame:
    """The Feast table's category text back to the spec's integers, as the training set does."""
    from mlops_assets.features.assets import categories_from_text

    return categories_from_text(features, SPEC)
