"""A yearly panel of companies keyed by name, end to end, and text keys in Feast's own bytes.

`mlops run` ingests the CSV, builds features in Feast (a STRING entity), joins the training
set point in time, trains and promotes; `bentoml serve` then predicts by company name. A later
year's batch brings the labels that live performance joins to the logged predictions by name.
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
from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.core.live_performance import KEY, LABEL, join_labels
from mlops_assets.core.splits import SPLIT_COLUMN, entity_split
from mlops_assets.features import feast_internals
from mlops_assets.features.assets import categories_from_text
from mlops_assets.features.feast_repo import build_definitions, feature_store
from mlops_assets.features.online_lookup import OnlineFeatureLookup
from mlops_assets.features.online_write import materialize_newest, newest_per_entity
from mlops_assets.features.sqlite_write import TOKEN_KEY
from mlops_assets.monitoring.live import keyed_predictions, known_labels
from mlops_assets.paths import PlatformPaths
from mlops_assets.profile import active_profile
from mlops_assets.spec import DatasetSpec
from tests.servers import bento_service

ROOT = Path(__file__).resolve().parents[2]
COMPANIES = [
    f"{stem} {form}"
    for stem in ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell")
    for form in ("Ltd", "GmbH", "Inc")
] + ["Société Générale d'Essai", "007", "12", "Ünïcode Oy", "Null", 'A & B, "quoted"']
SECTORS = {"retail": 1.0, "energy": 5.0, "software": 10.0}
SPEC_YAML = """
name: company_panel
task: regression
columns:
  - {name: company, dtype: string, role: entity_key, description: The company's name.}
  - {name: year_end, dtype: datetime, role: event_timestamp}
  - {name: revenue, dtype: float, min: 0}
  - {name: employees, dtype: int, min: 0}
  - {name: sector, dtype: category, categories: [retail, energy, software]}
  - {name: profit, dtype: float, role: target}
quality: {min_rows: 20}   # a later year brings one row per company
# Judged on later years for known companies: 3 cut-offs leave the first fold two years to
# learn from (60 rows; 5 would leave it one, below training.min_rows).
training: {folds: 3}
gates:
  primary_metric: rmse
  rules: [{metric: r2, min: 0.5}]
"""


def company_panel(years: range, seed: int = 5) -> pd.DataFrame:
    """One row per company and year; profit = 10 % of revenue + the sector's margin + noise."""
    rng = np.random.default_rng(seed)
    base = dict(zip(COMPANIES, rng.uniform(10, 100, len(COMPANIES)), strict=True))
    sector = dict(zip(COMPANIES, rng.choice(list(SECTORS), len(COMPANIES)), strict=True))
    rows = []
    for year in years:
        for name in COMPANIES:
            revenue = round(base[name] * 1.05 ** (year - 2015) * rng.lognormal(0, 0.05), 3)
            rows.append(
                {
                    "company": name,
                    "year_end": f"{year}-12-31T00:00:00Z",
                    "revenue": revenue,
                    "employees": int(revenue * 10) + int(rng.integers(0, 50)),
                    "sector": sector[name],
                    "profit": round(0.1 * revenue + SECTORS[sector[name]] + rng.normal(0, 0.3), 3),
                }
            )
    return pd.DataFrame(rows)


def _spec(folder: Path) -> DatasetSpec:
    from mlops_assets.spec import load_spec

    path = folder / "company_panel.yaml"
    path.write_text(SPEC_YAML)
    return load_spec(path)


def _post(client: httpx.Client, path: str, body) -> httpx.Response:
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def panel(tmp_path_factory) -> Iterator[dict]:
    """Train on 2015-2022, predict by name, stop the service, then ingest 2023's labels."""
    folder = tmp_path_factory.mktemp("panel")
    home = folder / "mlops_home"
    spec = _spec(folder)
    company_panel(range(2015, 2023)).to_csv(folder / "panel.csv", index=False)
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    env.pop("MLOPS_SPEC", None)
    command = [sys.executable, "-m", "mlops_assets.cli", "run", "--source", "file"]
    command += ["--path", str(folder / "panel.csv"), "--spec", str(folder / "company_panel.yaml")]
    built = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    answers = {}
    with bento_service(env, ROOT) as url, httpx.Client(base_url=url, timeout=30) as client:
        answers["info"] = client.get("/v1/model_info").json()
        answers["by_key"] = _post(client, "/v1/predict_by_key", {"keys": COMPANIES})
        answers["unknown"] = _post(client, "/v1/predict_by_key", {"keys": ["Nobody Ltd", "007"]})
        answers["integer"] = _post(client, "/v1/predict_by_key", {"keys": [7]})
        record = {"company": "Acme Ltd", "revenue": 50.0, "employees": 500, "sector": "energy"}
        answers["record"] = _post(client, "/v1/predict", record)
        answers["record_integer_key"] = _post(client, "/v1/predict", {**record, "company": 12})
    # The service has stopped, so its prediction log is flushed. Next year's rows arrive.
    (home / "landing").mkdir(exist_ok=True)
    company_panel(range(2023, 2024), seed=6).to_csv(home / "landing" / "y2023.csv", index=False)
    ingested = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "ingest"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert ingested.returncode == 0, ingested.stdout[-3000:] + ingested.stderr[-3000:]
    yield {"home": home, "spec": spec, "answers": answers, "stdout": built.stdout}


def test_names_are_kept_and_the_training_set_is_joined_by_name(panel):
    home = panel["home"]
    assert "Promotion: promoted" in panel["stdout"]
    cleaned = pd.read_parquet(home / "data" / "cleaned" / "initial.parquet")
    assert sorted(cleaned["company"].unique()) == sorted(COMPANIES), "'007' stays '007'"
    table = pd.read_parquet(PlatformPaths(home).training_set)
    expected = company_panel(range(2015, 2023))
    assert len(table) == len(expected) == 8 * len(COMPANIES)
    by_row = table.set_index(["company", table["year_end"].dt.year]).sort_index()
    truth = expected.set_index(["company", pd.to_datetime(expected["year_end"]).dt.year])
    truth = truth.sort_index()
    np.testing.assert_allclose(by_row["revenue"], truth["revenue"], rtol=1e-12)
    np.testing.assert_array_equal(by_row["profit"], truth["profit"])
    by_name = pd.Series(entity_split(table["company"].to_numpy()), index=table.index)
    assert (by_name.groupby(table["company"]).nunique() == 1).all(), "one split a company"
    # The stored split is by event time here (the panel has years): the latest year is judged.
    assert set(table.loc[table["year_end"].dt.year == 2022, SPLIT_COLUMN]) == {"test"}


def test_predictions_by_name_equal_the_offline_predictions(panel):
    home, spec, answers = panel["home"], panel["spec"], panel["answers"]
    assert answers["by_key"].status_code == 200, answers["by_key"].text
    predictions = answers["by_key"].json()["predictions"]
    assert sorted(predictions) == sorted(COMPANIES)
    features = pd.read_parquet(home / "feast" / "data" / "company_panel_features.parquet")
    newest = features.loc[features["year_end"].dt.year == 2022].set_index("company")
    newest = newest.loc[COMPANIES].reset_index()
    model_dir = home / "models" / answers["info"]["mlflow_run_id"]
    family = json.loads((model_dir / "manifest.json").read_text())["family"]
    offline = load_model_file(model_dir, family).predict(
        to_matrix(categories_from_text(newest, spec), spec)
    )
    np.testing.assert_allclose([predictions[c] for c in COMPANIES], offline, rtol=0, atol=1e-6)


def test_keys_follow_the_specs_type(panel):
    answers = panel["answers"]
    assert answers["unknown"].status_code == 404
    assert answers["unknown"].json()["keys"] == ["Nobody Ltd"]
    assert answers["integer"].status_code == 400
    assert answers["integer"].json()["problems"][0]["field"] == "keys.0"
    assert answers["record"].status_code == 200
    assert answers["record_integer_key"].status_code == 400
    assert answers["record_integer_key"].json()["problems"][0]["field"] == "company"


def test_live_performance_joins_logged_predictions_to_later_labels_by_name(panel):
    home, spec = panel["home"], panel["spec"]
    paths = PlatformPaths(home)
    logged = keyed_predictions(paths, spec)
    names = logged.frame[KEY].tolist()
    assert sorted(names) == sorted([*COMPANIES, "Acme Ltd"]), "by key, and the record's key"
    assert all(type(name) is str for name in names)
    matched = join_labels(logged.frame, known_labels(paths, spec)).matched
    later = company_panel(range(2023, 2024), seed=6).set_index("company")["profit"]
    assert len(matched) == len(COMPANIES) + 1
    assert matched[LABEL].tolist() == later.loc[matched[KEY]].tolist()


@pytest.mark.parametrize("key_dtype", ["string", "int"])
def test_fast_sqlite_write_leaves_the_bytes_feast_writes(tmp_path, key_dtype):
    spec = _spec(tmp_path)
    if key_dtype == "int":
        spec = spec.model_validate_json(spec.model_dump_json().replace('"string"', '"int"', 1))
    paths = PlatformPaths(tmp_path / "home")
    store = feature_store(paths, active_profile())
    definitions = build_definitions(spec, paths)
    store.apply(definitions.in_apply_order())
    panel = company_panel(range(2015, 2019)).assign(
        year_end=lambda f: pd.to_datetime(f["year_end"], utc=True)
    )
    if key_dtype == "int":
        panel["company"] = panel["company"].map({c: i * 7 - 30 for i, c in enumerate(COMPANIES)})
    features = engineer(panel, spec).astype({"sector": "string"})
    features.loc[features.index[:5], "revenue"] = np.nan  # missing values: empty Value bytes
    newest = newest_per_entity(features, "company", "year_end")
    table = feast_internals.sqlite_table(store, definitions.view)

    def rows() -> list[tuple]:
        connection = feast_internals.sqlite_connection(store)
        return connection.execute(
            f"SELECT entity_key, feature_name, value, value_text, event_ts FROM {table} "
            "WHERE entity_key != ? ORDER BY entity_key, feature_name",
            (TOKEN_KEY,),
        ).fetchall()

    store.write_to_online_store(definitions.view.name, newest)  # Feast's own path
    feast_wrote = rows()
    with feast_internals.sqlite_connection(store) as connection:
        connection.execute(f"DELETE FROM {table}")
    written = materialize_newest(
        store, definitions.view, features, "company", "year_end", state_dir=tmp_path / "state"
    )
    assert written.mode == "full" and written.written == len(COMPANIES)
    assert rows() == feast_wrote
    assert len(feast_wrote) == len(COMPANIES) * len(spec.model_features)

    keys = newest["company"].tolist()
    found = OnlineFeatureLookup(store, spec).lookup(keys)
    assert found.keys == keys and found.unknown == []
    np.testing.assert_array_equal(
        found.matrix, to_matrix(newest.astype({"sector": "category"}), spec).astype(np.float32)
    )
    again = materialize_newest(
        store, definitions.view, features, "company", "year_end", state_dir=tmp_path / "state"
    )
    assert (again.mode, again.written) == ("incremental", 0), "the state reads text keys back"
