"""Checks of a served model shared by the service tests: a good record, and agreement of paths.

`served` is the dict the service fixtures yield: `home` (the state folder) and `client` (an
HTTP client on the running service).
"""

import json

import httpx
import numpy as np
import pandas as pd

from mlops_assets.core.families import load_model_file
from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.features.online_write import newest_per_entity

# One valid house-prices request record.
GOOD = {
    "sqft": 1800.0,
    "bedrooms": 3,
    "bathrooms": 2.0,
    "location": "urban",
    "year_built": 1990,
    "condition": "good",
    "lot_size": 5000.0,
}


def post_json(served, path: str, body) -> httpx.Response:
    """POST `body` (JSON-encoded unless already bytes or text) to the served app."""
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    return served["client"].post(
        path, content=content, headers={"content-type": "application/json"}
    )


def assert_every_path_agrees(served: dict, spec, sample: int = 150) -> None:
    """Offline, /predict, /predict_batch and by key give the same predictions, to 1e-6."""
    home, key, time_column = served["home"], spec.entity_key, spec.event_timestamp
    info = served["client"].get("/v1/model_info").json()
    folder = home / "models" / info["mlflow_run_id"]
    manifest = json.loads((folder / "manifest.json").read_text())
    model = load_model_file(folder, manifest["family"])
    cleaned = pd.concat(
        [pd.read_parquet(p) for p in sorted((home / "data" / "cleaned").glob("*.parquet"))]
    )
    features = pd.read_parquet(home / "feast" / "data" / f"{spec.name}_features.parquet")
    newest = newest_per_entity(features, key, time_column).sample(sample, random_state=3)
    rows = cleaned.merge(newest[[key, time_column]], on=[key, time_column])
    assert len(rows) == sample
    offline = model.predict(to_matrix(newest.set_index(key).loc[rows[key]].reset_index(), spec))
    objects = dict.fromkeys(spec.categorical_columns, "object")
    records = [
        {
            **{c: (r[c].item() if hasattr(r[c], "item") else r[c]) for c in spec.feature_columns},
            time_column: r[time_column].isoformat(),
        }
        for _, r in rows.astype(objects).iterrows()
    ]
    batch = post_json(served, "/v1/predict_batch", {"records": records}).json()["predictions"]
    singles = [post_json(served, "/v1/predict", r).json()["prediction"] for r in records[:25]]
    keys = rows[key].tolist()
    by_key = post_json(served, "/v1/predict_by_key", {"keys": keys}).json()["predictions"]
    np.testing.assert_allclose(batch, offline, rtol=0, atol=1e-6)
    np.testing.assert_allclose(singles, offline[:25], rtol=0, atol=1e-6)
    np.testing.assert_allclose([by_key[str(k)] for k in keys], offline, rtol=0, atol=1e-6)


def offline_prediction(served: dict, spec, record: dict) -> float:
    """What the training pipeline's own path predicts for one request record (with its time).

    The served champion's model file and stored fill values, the spec's feature engineering:
    no HTTP, so a service answer can be checked against it exactly.
    """
    info = served["client"].get("/v1/model_info").json()
    folder = served["home"] / "models" / info["mlflow_run_id"]
    manifest = json.loads((folder / "manifest.json").read_text())
    row = pd.DataFrame([{**record, spec.entity_key: 1}])
    row[spec.event_timestamp] = pd.Timestamp(record[spec.event_timestamp])
    for name in spec.categorical_columns:
        row[name] = pd.Categorical(row[name], categories=list(spec.column(name).categories))
    features = engineer(row.fillna(np.nan), spec, manifest["imputation"])
    model = load_model_file(folder, manifest["family"])
    return float(model.predict(to_matrix(features, spec))[0])
