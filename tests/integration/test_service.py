"""The BentoML service over real HTTP: `bentoml serve` on a free loopback port."""

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import ANY

import httpx
import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.families import load_model_file
from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec
from tests.servers import bento_service
from tests.service_checks import GOOD, assert_every_path_agrees, offline_prediction, post_json

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
BODY_TIMEOUT_S = 5
CLI_RUN = [sys.executable, "-m", "mlops_assets.cli", "run"]
HEADER_TIMEOUT_S = 3
SPEC = load_spec(HOUSE_PRICES_SPEC)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("served") / "mlops_home"
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    env.pop("MLOPS_SPEC", None)
    env["MLOPS_BODY_TIMEOUT_S"] = str(BODY_TIMEOUT_S)
    env["MLOPS_HEADER_TIMEOUT_S"] = str(HEADER_TIMEOUT_S)
    built = subprocess.run(
        # Shuffled folds: XGBoost wins there, as the skew checks below assume.
        [*CLI_RUN, "--rows", "3000", "--protocol", "cross_validation"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    with bento_service(env, ROOT) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield {"client": client, "url": url, "home": home, "stdout": built.stdout}


def test_main_job_output_and_health(served):
    assert "Promotion: promoted" in served["stdout"]
    assert served["client"].get("/livez").status_code == 200
    assert served["client"].get("/readyz").status_code == 200


def test_single_batch_by_key_and_info_carry_the_model_version(served):
    info = served["client"].get("/v1/model_info").json()
    assert info["model_name"] == "house_prices" and info["model_version"] == "1"
    assert len(info["data_hash"]) == 64 and info["feature_service"] == "house_prices_v1"
    assert info["mlflow_run_id"] and info["promoted_at"] and "r2" in info["metrics"]
    small = {**GOOD, "event_timestamp": "2024-03-01T12:00:00+00:00"}
    large = {**small, "sqft": 3600.0}
    expected = [offline_prediction(served, SPEC, record) for record in (small, large)]
    single = post_json(served, "/v1/predict", small).json()
    assert single["model_version"] == "1"
    assert single["prediction"] == pytest.approx(expected[0], abs=1e-6)
    batch = post_json(served, "/v1/predict_batch", {"records": [small, large]}).json()
    assert batch["model_version"] == "1"
    assert batch["predictions"] == pytest.approx(expected, abs=1e-6)
    assert expected[1] > expected[0], "a bigger house costs more"
    by_key = post_json(served, "/v1/predict_by_key", {"keys": [1, 2]}).json()
    assert by_key["model_version"] == "1" and set(by_key["predictions"]) == {"1", "2"}


def test_offline_http_and_by_key_predictions_agree(served):
    """Training/serving skew: the same rows through every path, to 1e-6 (XGBoost won here)."""
    assert served["client"].get("/v1/model_info").json()["family"] == "xgboost"
    assert_every_path_agrees(served, SPEC)


def test_a_linear_winner_is_served_identically_on_every_path(tmp_path_factory):
    """On a linear target the linear family wins, and is served from its JSON coefficients."""
    folder = tmp_path_factory.mktemp("linear")
    spec_path, csv = write_linear_dataset(folder)
    home = folder / "mlops_home"
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    env.pop("MLOPS_SPEC", None)
    command = ["run", "--spec", str(spec_path), "--source", "file", "--path", str(csv)]
    command += ["--protocol", "cross_validation"]  # the rows' order in time is not the point
    built = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "Model " in built.stdout and "(linear)" in built.stdout, built.stdout
    assert "5-fold cross-validation on 600 rows" in built.stdout
    with bento_service(env, ROOT) as url, httpx.Client(base_url=url, timeout=30) as client:
        served = {"client": client, "home": home}
        info = client.get("/v1/model_info").json()
        assert info["family"] == "linear"
        folder = home / "models" / info["mlflow_run_id"]
        assert not (folder / "model.ubj").exists()
        document = json.loads((folder / "linear_model.json").read_text())
        assert document["link"] == "identity" and set(document["numeric"]) == {"a", "b", "c"}
        assert_every_path_agrees(served, load_spec(spec_path))


def test_missing_lot_size_is_filled_with_the_value_stored_with_the_model(served):
    """`lot_size` is imputed (median): the service fills it exactly as training did."""
    home = served["home"]
    info = served["client"].get("/v1/model_info").json()
    folder = home / "models" / info["mlflow_run_id"]
    stored = json.loads((folder / "manifest.json").read_text())["imputation"]["lot_size"]
    cleaned = pd.read_parquet(next((home / "data" / "cleaned").glob("*.parquet")))
    assert stored == float(cleaned["lot_size"].median())
    moment = "2024-03-01T12:00:00+00:00"
    record = {**GOOD, "event_timestamp": moment}
    without = {k: v for k, v in record.items() if k != "lot_size"}
    answers = [
        post_json(served, "/v1/predict", body).json()["prediction"]
        for body in (without, {**record, "lot_size": None}, {**record, "lot_size": stored})
    ]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0] != post_json(served, "/v1/predict", record).json()["prediction"]
    # The training pipeline's own path for a row whose lot_size is missing.
    row = pd.DataFrame([{**without, "lot_size": np.nan, "house_id": 1}])
    row["event_timestamp"] = pd.Timestamp(moment)
    for name in SPEC.categorical_columns:
        row[name] = pd.Categorical(row[name], categories=list(SPEC.column(name).categories))
    family = json.loads((folder / "manifest.json").read_text())["family"]
    features = engineer(row, SPEC, {"lot_size": stored})
    assert features.loc[0, "log_lot_size"] == pytest.approx(np.log(stored))
    offline = float(load_model_file(folder, family).predict(to_matrix(features, SPEC))[0])
    assert answers[0] == pytest.approx(offline, abs=1e-6)


LINEAR_SPEC = """
name: linear_target
task: regression
columns:
  - {name: id, dtype: int, role: entity_key, min: 1}
  - {name: event_timestamp, dtype: datetime, role: event_timestamp}
  - {name: a, dtype: float}
  - {name: b, dtype: float}
  - {name: c, dtype: float, nullable: true, impute: median}
  - {name: kind, dtype: category, categories: [x, y, z]}
  - {name: label, dtype: float, role: target}
quality: {min_rows: 100}
gates:
  primary_metric: rmse
  rules: [{metric: r2, min: 0.9}]
"""


def write_linear_dataset(folder: Path, rows: int = 600) -> tuple[Path, Path]:
    """A label that is a linear function of the features plus a little noise."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "id": np.arange(1, rows + 1),
            "event_timestamp": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 300, rows), unit="D"),
            "a": rng.uniform(-3, 3, rows),
            "b": rng.uniform(-3, 3, rows),
            "c": rng.uniform(0, 10, rows),
            "kind": rng.choice(["x", "y", "z"], rows),
        }
    )
    effect = frame["kind"].map({"x": 0.0, "y": 2.0, "z": -1.0})
    frame["label"] = 3 * frame["a"] - 2 * frame["b"] + 0.5 * frame["c"] + effect
    frame["label"] += rng.normal(0, 0.3, rows)
    spec_path, csv = folder / "linear_target.yaml", folder / "linear_target.csv"
    spec_path.write_text(LINEAR_SPEC)
    frame.to_csv(csv, index=False)
    return spec_path, csv


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({**GOOD, "sqft": "big"}, 400, "sqft"),
        ({**GOOD, "sqft": "1800"}, 400, "sqft"),
        ({**GOOD, "sqft": True}, 400, "sqft"),
        ({**GOOD, "bedrooms": True}, 400, "bedrooms"),
        ({**GOOD, "bedrooms": "3"}, 400, "bedrooms"),
        ({**GOOD, "bedrooms": 3.5}, 400, "bedrooms"),
        ({k: v for k, v in GOOD.items() if k != "bedrooms"}, 400, "bedrooms"),
        ({**GOOD, "colour": "red"}, 400, "colour"),
        (json.dumps({**GOOD, "sqft": float("nan")}), 400, "sqft"),
        (json.dumps({**GOOD, "sqft": float("inf")}), 400, "sqft"),
        ({**GOOD, "sqft": -10.0}, 400, "sqft"),
        ({**GOOD, "location": "moon"}, 400, "location"),
        ({**GOOD, "event_timestamp": "yesterday-ish"}, 400, "event_timestamp"),
        ({**GOOD, "event_timestamp": "0001-01-01T00:00:00+05:00"}, 400, "event_timestamp"),
        ({**GOOD, "event_timestamp": "9999-12-31T00:00:00"}, 400, "event_timestamp"),
        ("{not json", 400, "body"),
        ([GOOD], 400, "body"),
    ],
)
def test_bad_single_requests_get_a_400_naming_the_problem(served, body, status, named):
    response = post_json(served, "/v1/predict", body)
    assert response.status_code == status, response.text
    assert named in response.json()["error"]


def test_bad_batches_and_keys(served):
    empty = post_json(served, "/v1/predict_batch", {"records": []})
    assert empty.status_code == 400 and empty.json()["problems"] == [
        {"field": "records", "problem": "List should have at least 1 item after validation, not 0"}
    ]
    assert post_json(served, "/v1/predict_batch", {"records": [GOOD] * 1000}).status_code == 200
    too_many = post_json(served, "/v1/predict_batch", {"records": [GOOD] * 1001})
    assert too_many.status_code == 400 and too_many.json()["problems"] == [
        {
            "field": "records",
            "problem": "List should have at most 1000 items after validation, not 1001",
        }
    ]
    for body in ([GOOD], {"records": [GOOD], "more": []}, {"records": GOOD}, "{not json"):
        odd = post_json(served, "/v1/predict_batch", body)
        assert odd.status_code == 400 and odd.json()["error"].startswith("invalid request: ")
    body = b'{"records": [' + b",".join([json.dumps(GOOD).encode()] * 20_000) + b"]}"
    assert post_json(served, "/v1/predict_batch", body).status_code == 413

    def chunks():  # no Content-Length: the limit must hold while the body streams in
        for _ in range(40):
            yield b" " * 100_000

    chunked = served["client"].post(
        "/v1/predict_batch", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413 and "larger than" in chunked.json()["error"]
    unknown = post_json(served, "/v1/predict_by_key", {"keys": [1, 123456789]})
    assert unknown.status_code == 404 and unknown.json()["keys"] == [123456789]
    assert post_json(served, "/v1/predict_by_key", {"keys": ["x"]}).status_code == 400
    assert served["client"].get("/readyz").status_code == 200, "still serving"


def varied_records(count: int, seed: int) -> list[dict]:
    """Records as clients send them: sizes across the spec's ranges, whole numbers as JSON
    integers, `lot_size` sometimes left out or null, times with and without an offset."""
    rng = np.random.default_rng(seed)
    offsets = ["+00:00", "Z", "+05:30", "-08:00", ""]
    records = []
    for i in range(count):
        record = {
            "sqft": round(rng.uniform(400, 6000), 1) if i % 3 else int(rng.integers(400, 6000)),
            "bedrooms": int(rng.integers(0, 8)),
            "bathrooms": float(rng.integers(2, 9) / 2),
            "location": str(rng.choice(["urban", "suburban", "rural"])),
            "year_built": int(rng.integers(1850, 2024)),
            "condition": str(rng.choice(["poor", "fair", "good", "excellent"])),
            "lot_size": float(round(rng.uniform(500, 40000))),
            "event_timestamp": f"{2015 + i % 10}-{1 + i % 12:02d}-{1 + i % 28:02d}T"
            f"{i % 24:02d}:{i % 60:02d}:00{offsets[i % len(offsets)]}",
        }
        if i % 7 == 0:
            del record["lot_size"]
        elif i % 7 == 1:
            record["lot_size"] = None
        records.append(record)
    return records


def test_a_full_batch_agrees_with_single_and_offline_predictions(served):
    """1,000 varied records: the batch equals /predict and the training path, to 1e-6."""
    records = varied_records(1_000, seed=5)
    answer = post_json(served, "/v1/predict_batch", {"records": records})
    assert answer.status_code == 200, answer.text
    batch = np.array(answer.json()["predictions"])
    sampled = list(range(0, 1_000, 5))
    singles = [post_json(served, "/v1/predict", records[i]).json()["prediction"] for i in sampled]
    np.testing.assert_allclose(singles, batch[sampled], rtol=0, atol=1e-6)
    info = served["client"].get("/v1/model_info").json()
    folder = served["home"] / "models" / info["mlflow_run_id"]
    manifest = json.loads((folder / "manifest.json").read_text())
    frame = pd.DataFrame([{"lot_size": None, **r} for r in records]).astype({"lot_size": float})
    # One by one: pandas parsing a column that mixes offsets with naive times misreads some.
    moments = [pd.Timestamp(t) for t in frame["event_timestamp"]]
    frame["event_timestamp"] = pd.to_datetime(
        [m.tz_convert("UTC") if m.tzinfo else m.tz_localize("UTC") for m in moments]
    )
    frame["house_id"] = np.arange(1, len(frame) + 1)
    for name in SPEC.categorical_columns:
        frame[name] = pd.Categorical(frame[name], categories=list(SPEC.column(name).categories))
    features = engineer(frame, SPEC, manifest["imputation"])
    offline = load_model_file(folder, manifest["family"]).predict(to_matrix(features, SPEC))
    np.testing.assert_allclose(batch, offline, rtol=0, atol=1e-6)
    assert len(np.unique(batch.round(2))) > 900, "varied records, varied prices"


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"sqft": -10.0}, "sqft", "Input should be greater than or equal to 100"),
        ({"sqft": "1800"}, "sqft", "Input should be a valid number"),
        ({"bedrooms": True}, "bedrooms", "Input should be a valid integer"),
        ({"location": "moon"}, "location", "Input should be 'urban', 'suburban' or 'rural'"),
        ({"bedrooms": None}, "bedrooms", "Input should be a valid integer"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
        ({"event_timestamp": "9999-12-31T00:00:00"}, "event_timestamp", "Value error, "
         "timestamp must be between 1800 and 2200"),
    ],
)  # fmt: skip
def test_a_bad_value_in_record_537_is_named_with_its_field(served, change, field, problem):
    records = varied_records(1_000, seed=6)
    records[537] = {**records[537], **change}
    answer = post_json(served, "/v1/predict_batch", {"records": records})
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "error": f"invalid request: records.537.{field}",
        "problems": [{"field": f"records.537.{field}", "problem": problem}],
    }


def test_a_missing_field_in_one_record_is_named_with_every_other_bad_record(served):
    records = varied_records(1_000, seed=7)
    del records[537]["bedrooms"]
    records[12]["condition"] = "mint"
    answer = post_json(served, "/v1/predict_batch", {"records": records})
    assert answer.status_code == 400
    assert answer.json()["problems"] == [
        {"field": "records.12.condition", "problem": "Input should be 'poor', 'fair', 'good' "
         "or 'excellent'"},
        {"field": "records.537.bedrooms", "problem": "Field required"},
    ]  # fmt: skip


def test_prediction_log_and_metrics(served):
    post_json(served, "/v1/predict", {**GOOD, "sqft": 2222.0})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        files = list((served["home"] / "predictions").glob("*.jsonl"))
        log = pd.concat([pd.read_json(f, lines=True) for f in files]) if files else pd.DataFrame()
        if not log.empty and (log["inputs"].map(lambda i: i.get("sqft")) == 2222.0).any():
            break
        time.sleep(0.3)
    else:
        pytest.fail("prediction not logged within 10 s")
    assert {"request_id", "timestamp", "inputs", "output", "model_version", "latency_ms"} <= set(
        log.columns
    )
    assert (log["model_version"].astype(str) == "1").all()
    metrics = served["client"].get("/metrics").text
    assert 'mlops_predictions_total{endpoint="predict",model_version="1"}' in metrics
    assert "mlops_prediction_latency_seconds_bucket" in metrics


def test_batch_rows_are_logged_in_order_with_their_validated_inputs(served):
    moment = "2024-05-01T10:00:00+02:00"
    records = [{**GOOD, "sqft": 2345.5}, {**GOOD, "sqft": 2346, "event_timestamp": moment}]
    answer = post_json(served, "/v1/predict_batch", {"records": records}).json()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        files = list((served["home"] / "predictions").glob("*.jsonl"))
        lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
        logged = [line for line in lines if line["request_id"] == answer["request_id"]]
        if len(logged) == 2:
            break
        time.sleep(0.3)
    else:
        pytest.fail("batch not logged within 10 s")
    assert [line["row"] for line in logged] == [0, 1]
    assert [line["output"] for line in logged] == answer["predictions"]
    assert logged[0]["endpoint"] == "predict_batch"
    no_key = {"house_id": None}  # the optional entity key, not given here
    assert logged[0]["inputs"] == {**GOOD, "sqft": 2345.5, "event_timestamp": None, **no_key}
    # Validated values: the integer 2346 as the float it is, the time as naive UTC.
    assert logged[1]["inputs"] == {
        **GOOD, "sqft": 2346.0, "event_timestamp": "2024-05-01T08:00:00", **no_key
    }  # fmt: skip
    assert type(logged[1]["inputs"]["sqft"]) is float


def test_no_client_input_causes_a_server_error(served):
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{served['url']}/v1/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "150",
            "--phases",
            "examples,coverage,fuzzing",
            "--no-color",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated and int(generated.group(1)) >= 500, output[-2000:]


def test_mlops_serve_listens_on_loopback_only_and_says_so(served):
    """`mlops serve` without --host: the listening socket is 127.0.0.1, as its first line says."""
    import psutil

    from tests.servers import free_port, wait_ready

    port = free_port()
    env = {**os.environ, "MLOPS_HOME": str(served["home"])}
    env.pop("BENTOML_HOST", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "mlops_assets.cli", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert wait_ready(server, f"http://127.0.0.1:{port}"), "mlops serve exited while starting"
        listening = {
            c.laddr.ip
            for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json=GOOD, timeout=30).json()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    assert listening == {"127.0.0.1"}
    assert f"Starting Prediction service on http://127.0.0.1:{port} ..." in output
    assert answer == {**post_json(served, "/v1/predict", GOOD).json(), "request_id": ANY}, (
        "the champion, as the module's service answers"
    )
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)


def _mlops(served, *arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLOPS_HOME": str(served["home"])}
    return subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", *arguments],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_mlops_feast_lists_the_feature_views_of_the_state_folder(served):
    listed = _mlops(served, "feast", "feature-views", "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    [header, *views] = [line.split() for line in listed.stdout.strip().splitlines()]
    assert header[:2] == ["NAME", "ENTITIES"]
    assert [view[:2] for view in views] == [["house_prices_features", "{'house'}"]]


def test_mlops_history_names_the_champion(served):
    history = _mlops(served, "history")
    assert history.returncode == 0, history.stderr[-2000:]
    [entry, champion] = history.stdout.strip().splitlines()
    assert entry.split()[1:4] == ["promote", "v1", "(previous"]
    assert champion.startswith("Champion: v1 (run ")


def test_an_integer_is_a_valid_float_and_keys_are_strict(served):
    whole = post_json(served, "/v1/predict", {**GOOD, "sqft": 1800, "lot_size": 5000})
    assert whole.status_code == 200, whole.text
    assert whole.json()["prediction"] == post_json(served, "/v1/predict", GOOD).json()["prediction"]
    for keys in ([True], ["1"], [1.0]):
        refused = post_json(served, "/v1/predict_by_key", {"keys": keys})
        assert refused.status_code == 400 and "keys.0" in refused.json()["error"], keys


def test_a_stalled_body_is_cut_off_with_408(served):
    """Content-Length promises 100,000 bytes, 20 arrive: the answer comes, then the close."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(served["url"])
    head = (
        "POST /v1/predict HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n"
        "Content-Length: 100000\r\n\r\n"
    )
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=BODY_TIMEOUT_S + 20) as sock:
        sock.sendall(head.encode() + b'{"sqft": 1800, "bed')
        received = b""
        while chunk := sock.recv(65536):  # ends when the server closes the connection
            received += chunk
    elapsed = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert b"not received within 5 s" in received
    assert BODY_TIMEOUT_S - 0.5 <= elapsed < BODY_TIMEOUT_S + 10
    assert served["client"].get("/readyz").status_code == 200, "still serving"


def test_connections_dripping_headers_are_closed_at_the_header_deadline(served):
    """Twenty connections send a header line every 0.2 s (a minute's worth); all are closed."""
    import selectors
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(served["url"])
    socks = [socket.create_connection((url.hostname, url.port)) for _ in range(20)]
    idle = socket.create_connection((url.hostname, url.port))  # sends nothing at all
    started, closed = time.monotonic(), {}
    with selectors.DefaultSelector() as watching:
        for sock in [*socks, idle]:
            sock.setblocking(False)
            watching.register(sock, selectors.EVENT_READ)
        for sock in socks:
            sock.sendall(b"POST /v1/predict HTTP/1.1\r\n")
        for _ in range(300):
            for key, _ in watching.select(timeout=0.2):
                with contextlib.suppress(ConnectionError):
                    assert key.fileobj.recv(1024) == b""
                closed[key.fileobj] = time.monotonic() - started
                watching.unregister(key.fileobj)
            if len(closed) == len(socks) + 1:
                break
            for sock in socks:
                if sock not in closed:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"X-Slow: yes\r\n")
    for sock in [*socks, idle]:
        sock.close()
    assert len(closed) == len(socks) + 1, "every connection closed by the server"
    assert min(closed.values()) >= HEADER_TIMEOUT_S - 0.5
    assert max(closed.values()) < HEADER_TIMEOUT_S + 5
    assert served["client"].get("/readyz").status_code == 200, "still serving"


def test_docs_page_renders_offline_in_a_real_browser(served, tmp_path):
    """`/docs` leads to `/v1/docs`, whose Swagger UI renders every operation with no internet:
    Chromium may resolve no host but loopback, so a CDN script could not load."""
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("MLOPS_REQUIRE_SERVERS") == "1":
            pytest.fail("chromium is missing: apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000", "--dump-dom", f"{served['url']}/docs",
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    rendered = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', page.stdout))
    assert rendered == {
        "/predict",
        "/predict_batch",
        "/predict_by_key",
        "/model_info",
        "/explain",
        "/explain_by_key",
    }, page.stdout[-2000:] + page.stderr[-2000:]


def test_batch_scoring_matches_the_service_and_accounts_for_every_row(served, tmp_path):
    """batch_predictions scores a file as /predict_batch answers it; bad rows get reasons."""
    import dagster as dg

    from mlops_assets.model_registry.tracking import MlflowTracking
    from mlops_assets.resources import DatasetSpecResource, MlopsHome
    from mlops_assets.scoring.assets import batch_predictions
    from mlops_assets.sources import SyntheticConfig, generate_house_sales

    rows = generate_house_sales(SyntheticConfig(rows=300, seed=77)).drop(columns=["price"])
    rows = rows.astype({"sqft": "object"})
    rows.loc[5, "sqft"] = "huge"
    rows.loc[9, "bedrooms"] = -1
    landing = served["home"] / "scoring" / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    rows.to_csv(landing / "to_score_1.csv", index=False)
    home = MlopsHome(path=str(served["home"]))
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("scoring_batches", ["to_score_1"])
        result = dg.materialize(
            [batch_predictions],
            instance=instance,
            partition_key="to_score_1",
            resources={
                "home": home,
                "dataset": DatasetSpecResource(home=home),
                "mlflow_tracking": MlflowTracking(home=home),
            },
        )
    metadata = result.asset_materializations_for_node("batch_predictions")[0].metadata
    assert (metadata["delivered"].value, metadata["scored"].value) == (300, 298)
    assert metadata["rejected"].value == 2 and metadata["model_version"].value == "1"
    scored = pd.read_parquet(served["home"] / "scoring" / "predictions" / "to_score_1.parquet")
    rejected = pd.read_parquet(served["home"] / "scoring" / "rejected" / "to_score_1.parquet")
    assert dict(zip(rejected["source_row"], rejected["reject_reason"], strict=True)) == {
        5: "unparseable:sqft",
        9: "out_of_range:bedrooms",
    }
    assert set(scored["model_version"]) == {"1"}
    good = rows.drop(index=[5, 9])
    records = [
        {
            **{
                c: (v.item() if hasattr(v, "item") else v)
                for c, v in r[SPEC.feature_columns].items()
            },
            "event_timestamp": pd.Timestamp(r["event_timestamp"]).isoformat(),
        }
        for _, r in good.astype({"sqft": "float64"}).iterrows()
    ]
    answers = post_json(served, "/v1/predict_batch", {"records": records}).json()["predictions"]
    np.testing.assert_allclose(scored["prediction"], answers, rtol=0, atol=1e-6)


@pytest.fixture
def unlogged(served, tmp_path) -> Iterator[dict]:
    """The same champion served from a copy of the state folder whose prediction log is empty.

    What the shared service logged for other tests stays out of this one's evidence, whatever
    ran before it and whenever that reaches the log.
    """
    home = tmp_path / "mlops_home"
    shutil.copytree(served["home"], home, ignore=shutil.ignore_patterns("predictions"))
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    env.pop("MLOPS_SPEC", None)
    with bento_service(env, ROOT) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield {"client": client, "url": url, "home": home}


def _logged_keys(home: Path) -> list:
    """The entity keys of the logged predictions, one per logged row."""
    return [
        json.loads(line)["inputs"].get(SPEC.entity_key)
        for f in (home / "predictions").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]


def test_live_performance_judges_by_key_predictions_with_later_labels(unlogged, tmp_path):
    """Labels that arrive after by-key predictions judge them; the RMSE is known in advance."""
    import dagster as dg

    from mlops_assets.ingestion.assets import cleaned_data, raw_data
    from mlops_assets.model_registry.tracking import MlflowTracking
    from mlops_assets.monitoring.assets import live_performance
    from mlops_assets.resources import DatasetSpecResource, MlopsHome

    served, home_dir = unlogged, unlogged["home"]
    features = pd.read_parquet(home_dir / "feast" / "data" / f"{SPEC.name}_features.parquet")
    keys = sorted(set(features[SPEC.entity_key]))[:160]
    answers = post_json(served, "/v1/predict_by_key", {"keys": keys[:150]}).json()["predictions"]
    cleaned = pd.concat(
        pd.read_parquet(p) for p in sorted((home_dir / "data" / "cleaned").glob("*"))
    )
    # Ten more sent as feature values with their key: logged with it, so judged too.
    rows = cleaned[cleaned[SPEC.entity_key].isin(keys[150:])].drop_duplicates(SPEC.entity_key)
    records = [{SPEC.entity_key: int(r[SPEC.entity_key]), **_record(r)} for _, r in rows.iterrows()]
    batch = post_json(served, "/v1/predict_batch", {"records": records}).json()["predictions"]
    answers.update({str(r[SPEC.entity_key]): p for r, p in zip(records, batch, strict=True)})
    deadline = time.monotonic() + 30  # the log is flushed every second, off the request path
    while sorted(_logged_keys(home_dir)) != keys and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(_logged_keys(home_dir)) == keys, "every prediction logged once, with its key"
    later = cleaned[cleaned[SPEC.entity_key].isin(keys)].drop_duplicates(SPEC.entity_key).copy()
    later["event_timestamp"] = pd.Timestamp("2026-01-01", tz="UTC")
    later["price"] = [answers[str(k)] + 1_000.0 for k in later[SPEC.entity_key]]
    labelled = tmp_path / "labels.csv"
    later.to_csv(labelled, index=False)

    home = MlopsHome(path=str(home_dir))
    dataset = DatasetSpecResource(home=home)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("batches", ["labels_later"])
        dg.materialize(
            [raw_data, cleaned_data],
            instance=instance,
            partition_key="labels_later",
            resources={"home": home, "dataset": dataset},
            run_config={"ops": {"raw_data": {"config": {"kind": "file", "path": str(labelled)}}}},
        )
        result = dg.materialize(
            [live_performance],
            instance=instance,
            resources={
                "home": home,
                "dataset": dataset,
                "mlflow_tracking": MlflowTracking(home=home),
            },
        )
    metadata = result.asset_materializations_for_node("live_performance")[0].metadata
    assert metadata["judged"].value == 160 and metadata["champion_live_rows"].value == 160
    assert metadata["champion_live_metric"].value == pytest.approx(1_000.0, abs=1e-3)
    assert metadata["unmatched_labels"].value > 0  # earlier batches' labels judge nothing


def _record(row: pd.Series) -> dict:
    """A cleaned row as a request record: its features (JSON types) and its event time."""
    values = {c: row[c] for c in SPEC.feature_columns}
    values = {c: (v.item() if hasattr(v, "item") else v) for c, v in values.items()}
    values = {c: (None if isinstance(v, float) and v != v else v) for c, v in values.items()}
    return {**values, "event_timestamp": row["event_timestamp"].isoformat()}


def test_a_flipped_byte_in_the_champions_model_is_refused_by_the_scorer(
    served, tmp_path, monkeypatch
):
    """batch_predictions and `mlops verify` refuse a model folder changed after signing."""
    import dagster as dg

    from mlops_assets.cli import main
    from mlops_assets.model_registry.tracking import MlflowTracking
    from mlops_assets.resources import DatasetSpecResource, MlopsHome
    from mlops_assets.scoring.assets import batch_predictions
    from mlops_assets.sources import SyntheticConfig, generate_house_sales

    run_id = json.loads((served["home"] / "deployment" / "champion.json").read_text())["run_id"]
    model_file = served["home"] / "models" / run_id / "model.ubj"
    original = model_file.read_bytes()
    rows = generate_house_sales(SyntheticConfig(rows=20, seed=78)).drop(columns=["price"])
    landing = served["home"] / "scoring" / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    rows.to_csv(landing / "flipped.csv", index=False)
    home = MlopsHome(path=str(served["home"]))
    flipped = bytearray(original)
    flipped[len(flipped) // 3] ^= 0x01
    model_file.write_bytes(bytes(flipped))
    try:
        with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
            instance.add_dynamic_partitions("scoring_batches", ["flipped"])
            result = dg.materialize(
                [batch_predictions],
                instance=instance,
                partition_key="flipped",
                resources={
                    "home": home,
                    "dataset": DatasetSpecResource(home=home),
                    "mlflow_tracking": MlflowTracking(home=home),
                },
                raise_on_error=False,
            )
        assert not result.success
        [failure] = [e for e in result.all_events if e.is_step_failure]
        said = failure.step_failure_data.error.message
        assert "champion v1 not used to score:" in said
        assert "model.ubj changed after it was signed" in said
        assert not (served["home"] / "scoring" / "predictions" / "flipped.parquet").exists()
        monkeypatch.setenv("MLOPS_HOME", str(served["home"]))
        assert main(["verify"]) == 1
    finally:
        model_file.write_bytes(original)
    assert main(["verify", "1"]) == 0


def test_explanations_add_up_to_the_served_prediction(served):
    """`/v1/explain` and by key: base value + contributions = the prediction, to 1e-6."""
    explained = post_json(served, "/v1/explain", GOOD).json()
    predicted = post_json(served, "/v1/predict", GOOD).json()["prediction"]
    assert explained["model_version"] == "1" and explained["scale"] == "value"
    assert list(explained["contributions"]) == SPEC.model_features
    total = explained["base_value"] + sum(explained["contributions"].values())
    assert total == pytest.approx(predicted, rel=1e-6)
    assert explained["prediction"] == pytest.approx(predicted, rel=1e-9)
    bigger = post_json(served, "/v1/explain", {**GOOD, "sqft": 3600.0}).json()
    assert bigger["contributions"]["sqft"] > explained["contributions"]["sqft"]
    by_key = post_json(served, "/v1/explain_by_key", {"keys": [1, 2]}).json()
    predictions = post_json(served, "/v1/predict_by_key", {"keys": [1, 2]}).json()["predictions"]
    assert set(by_key["explanations"]) == {"1", "2"}
    for key, answer in by_key["explanations"].items():
        total = answer["base_value"] + sum(answer["contributions"].values())
        assert total == pytest.approx(predictions[key], rel=1e-6)
    unknown = post_json(served, "/v1/explain_by_key", {"keys": [10**9]})
    assert unknown.status_code == 404 and unknown.json()["keys"] == [10**9]
    refused = post_json(served, "/v1/explain", {**GOOD, "sqft": "big"})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid request: sqft"
