"""Shadow and canary over real HTTP: `bentoml serve` with a champion (v1) and a challenger (v2).

One state folder serves every test: `mlops run` promotes v1 (XGBoost at the default depth); a
second training run at depth 2 registers v2, which passes the gates but is kept (not better on
the same rows), so the registry's `challenger` alias names v2 and its predictions differ from
the champion's. Each test sets the rollout it needs through `mlops rollout`, or writes a broken
one, and the running service follows the file without a restart.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from mlops_assets.cli import main
from mlops_assets.serving.predictor import Predictor, load_bundle
from mlops_assets.serving.rollout import Rollout, read_rollout, write_rollout
from mlops_assets.serving.traffic import sticky_points
from tests.servers import bento_service

ROOT = Path(__file__).resolve().parents[2]
RECORD = {
    "sqft": 1800.0,
    "bedrooms": 3,
    "bathrooms": 2.0,
    "location": "urban",
    "year_built": 1990,
    "condition": "good",
    "lot_size": 5000.0,
    "event_timestamp": "2025-06-01T00:00:00",
}
SECOND_CANDIDATE = """
from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.runner import open_instance, run_pipeline
config = {"families": ["xgboost"], "max_depth": 2, "search_trials": 0}
run = run_pipeline(open_instance(PlatformPaths(resolve_home())), model_config=config)
print(run.success, run.metadata.get("promoted_model", {}).get("promoted"), run.error)
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("rollout") / "mlops_home"
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    env.pop("MLOPS_SPEC", None)
    for command in (
        [sys.executable, "-m", "mlops_assets.cli", "run", "--rows", "3000"],
        [sys.executable, "-c", SECOND_CANDIDATE],
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=600, check=False
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.split()[:2] == ["True", "False"], "v2 is trained and kept: " + done.stdout
    with bento_service(env, ROOT) as url:
        yield {"url": url, "home": home}


@pytest.fixture
def cli(served, monkeypatch):
    """`mlops ...` in this process, on the served state folder; returns its exit code."""
    monkeypatch.setenv("MLOPS_HOME", str(served["home"]))

    def run(*arguments: str) -> int:
        return main(list(arguments))

    return run


def _records(count: int, first_key: int | None = 1) -> list[dict]:
    """Varied valid records; keyed from `first_key` on (no key when None)."""
    sqft = np.linspace(600.0, 4_000.0, count)
    return [
        {**RECORD, "sqft": float(s)} | ({} if first_key is None else {"house_id": first_key + i})
        for i, s in enumerate(sqft)
    ]


def _model(served, tag: str) -> Predictor:
    name, version = tag.split(":")
    return Predictor(load_bundle(served["home"] / "bentoml" / "models" / name / version))


def _champion_tag(served) -> str:
    return json.loads((served["home"] / "deployment" / "bento.json").read_text())["model_tag"]


def _wait_for(served, expected: dict, timeout_s: float = 15.0) -> dict:
    """Poll `/v1/model_info` on fresh connections until 12 answers in a row match `expected`.

    Fresh connections reach both workers; each follows the file within about a second.
    """
    deadline, streak, seen = time.monotonic() + timeout_s, 0, {}
    while time.monotonic() < deadline:
        seen = httpx.get(f"{served['url']}/v1/model_info", timeout=10).json()["rollout"]
        streak = streak + 1 if all(seen.get(k) == v for k, v in expected.items()) else 0
        if streak >= 12:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"the service did not apply {expected}; last seen {seen}")


def _post_each(served, records: list[dict], clients: int = 4) -> list[dict]:
    """POST each record to /v1/predict over `clients` keep-alive connections, in order."""
    answers: list[dict | None] = [None] * len(records)

    def send(start: int) -> None:
        with httpx.Client(base_url=served["url"], timeout=30) as client:
            for index in range(start, len(records), clients):
                response = client.post("/v1/predict", json=records[index])
                assert response.status_code == 200, response.text
                answers[index] = response.json()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers  # type: ignore[return-value]


def _logged(served, request_ids: set[str], wait_s: float = 3.0) -> list[dict]:
    """The prediction log's lines of these requests (after the log's one-second flush)."""
    time.sleep(wait_s)
    lines = []
    for path in sorted((served["home"] / "predictions").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if entry["request_id"] in request_ids:
                lines.append(entry)
    return lines


def test_shadow_answers_are_the_champions_and_both_versions_are_logged(served, cli):
    assert cli("rollout", "shadow") == 0
    rollout = read_rollout(served["home"] / "deployment" / "rollout.json")
    assert (rollout.mode, rollout.challenger_version) == ("shadow", "2")
    _wait_for(served, {"mode": "shadow", "challenger_version": "2", "error": None})
    champion, challenger = (
        _model(served, _champion_tag(served)),
        _model(served, rollout.challenger_tag),
    )
    records = _records(40)
    answers = _post_each(served, records)
    expected, shadowed = champion.predict_records(records), challenger.predict_records(records)
    assert not np.allclose(expected, shadowed), "the challenger is a different model"
    assert {a["model_version"] for a in answers} == {"1"}
    np.testing.assert_allclose([a["prediction"] for a in answers], expected, rtol=1e-6)

    lines = _logged(served, {a["request_id"] for a in answers})
    by_role = {(e["request_id"], e["role"], e["answered"], e["model_version"]): e for e in lines}
    for answer, mine, theirs in zip(answers, expected, shadowed, strict=True):
        ours = by_role[(answer["request_id"], "champion", True, "1")]
        shadow = by_role[(answer["request_id"], "challenger", False, "2")]
        assert ours["output"] == pytest.approx(mine, rel=1e-6)
        assert shadow["output"] == pytest.approx(theirs, rel=1e-6)
        assert shadow["inputs"]["house_id"] == ours["inputs"]["house_id"]
    assert len(lines) == 2 * len(records), "one answered and one shadow line per request"


def test_canary_share_is_sticky_by_key_on_every_endpoint(served, cli):
    assert cli("rollout", "canary", "--share", "0.2") == 0
    _wait_for(served, {"mode": "canary", "share": 0.2, "challenger_version": "2"})
    records = _records(2_000)
    answers = _post_each(served, records, clients=6)
    keys = np.arange(1, 2_001)
    expected = np.where(sticky_points(keys) < 0.2, "2", "1")
    versions = np.array([a["model_version"] for a in answers])
    share = float(np.mean(versions == "2"))
    assert abs(share - 0.2) <= 0.03, f"challenger answered {share:.3f} of 2,000 keys"
    assert versions.tolist() == expected.tolist(), "each key goes where its fixed point says"

    again = _post_each(served, records[:300], clients=3)  # new connections, either worker
    assert [a["model_version"] for a in again] == versions[:300].tolist()

    batch = httpx.post(f"{served['url']}/v1/predict_batch", json={"records": records[:200]})
    body = batch.json()
    assert body["model_version"] == "mixed" and body["model_versions"] == expected[:200].tolist()
    by_key = httpx.post(f"{served['url']}/v1/predict_by_key", json={"keys": list(range(1, 101))})
    assert by_key.status_code == 200, by_key.text
    wanted = {str(k): v for k, v in zip(keys[:100], expected[:100], strict=True)}
    assert by_key.json()["model_versions"] == wanted

    lines = _logged(served, {batch.json()["request_id"]})
    rows = {e["row"]: (e["model_version"], e["role"], e["answered"]) for e in lines}
    assert sorted(rows) == list(range(200)), "every record logged once, at its own row"
    assert all(
        rows[i] == (v, "challenger" if v == "2" else "champion", True)
        for i, v in enumerate(expected[:200])
    )


def test_a_broken_challenger_leaves_the_champion_answering_and_ready(served, cli):
    path = served["home"] / "deployment" / "rollout.json"
    records = _records(300)
    for rollout in (
        Rollout(mode="canary", challenger_tag="house_prices:v9-missing", share=0.5),
        Rollout(mode="canary", challenger_tag=_corrupt_model(served), share=0.5),
    ):
        write_rollout(path, rollout)
        seen = _wait_for(served, {"requested_mode": "canary", "mode": "champion"})
        assert rollout.challenger_tag in seen["error"]
        assert httpx.get(f"{served['url']}/readyz").status_code == 200
        answers = _post_each(served, records)
        assert {a["model_version"] for a in answers} == {"1"}
    path.write_text('{"mode": "canary", "share": 7')  # half a file
    seen = _wait_for(served, {"requested_mode": "champion", "mode": "champion"})
    assert "is not a valid rollout setting" in seen["error"]
    assert {a["model_version"] for a in _post_each(served, records[:50])} == {"1"}
    metrics = httpx.get(f"{served['url']}/metrics").text
    assert _metric(metrics, "mlops_challenger_load_failures_total") >= 2
    assert _metric(metrics, "mlops_rollout_invalid_total") >= 1
    assert 'mlops_rollout_mode{mode="champion"} 1.0' in metrics


def test_the_file_switches_modes_without_restart_and_off_is_champion_only(served, cli, capsys):
    assert cli("rollout", "canary", "--share", "0.5") == 0
    _wait_for(served, {"mode": "canary", "share": 0.5})
    records = _records(200)
    assert {a["model_version"] for a in _post_each(served, records)} == {"1", "2"}
    capsys.readouterr()
    assert cli("rollout", "canary", "--share", "1.5") == 2
    assert "share: Input should be less than or equal to 1" in capsys.readouterr().out
    assert cli("rollout", "shadow", "--version", "1") == 2
    assert "v1 is the champion already: nothing to roll out" in capsys.readouterr().out
    assert cli("rollout", "shadow", "--version", "7") == 2
    assert "has no version '7'" in capsys.readouterr().out
    assert cli("rollout", "off") == 0
    _wait_for(served, {"mode": "champion", "requested_mode": "champion", "error": None})
    answers = _post_each(served, records)
    assert {a["model_version"] for a in answers} == {"1"}
    batch = httpx.post(f"{served['url']}/v1/predict_batch", json={"records": records}).json()
    assert batch["model_version"] == "1" and "model_versions" not in batch
    lines = _logged(served, {a["request_id"] for a in answers} | {batch["request_id"]})
    assert {(e["model_version"], e["role"]) for e in lines} == {("1", "champion")}
    capsys.readouterr()
    assert cli("rollout", "status") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Rollout: champion only"


def _metric(text: str, name: str) -> float:
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    return sum(values)


def _corrupt_model(served) -> str:
    """A copy of the champion in the BentoML store whose model file is not a model."""
    import bentoml
    from bentoml._internal.models.model import ModelStore

    source = _model(served, _champion_tag(served)).bundle
    store = ModelStore(str(served["home"] / "bentoml" / "models"))
    folder = served["home"] / "bentoml" / "models" / _champion_tag(served).replace(":", "/")
    with bentoml.models.create("house_prices:corrupt", _model_store=store) as ref:
        shutil.copytree(folder, ref.path, dirs_exist_ok=True, ignore=lambda *_: ["model.yaml"])
        model_file = Path(ref.path) / source.manifest["model_file"]
        model_file.write_bytes(b"not a model")
    return "house_prices:corrupt"


def test_a_flipped_byte_in_a_signed_model_is_refused_and_the_champion_keeps_serving(served, cli):
    """The challenger's bundle is the champion's, signed, with one byte of model.ubj flipped."""
    import bentoml
    from bentoml._internal.models.model import ModelStore

    folder = served["home"] / "bentoml" / "models" / _champion_tag(served).replace(":", "/")
    store = ModelStore(str(served["home"] / "bentoml" / "models"))
    with bentoml.models.create("house_prices:flipped", _model_store=store) as ref:
        shutil.copytree(folder, ref.path, dirs_exist_ok=True, ignore=lambda *_: ["model.yaml"])
        model_file = Path(ref.path) / "model.ubj"
        data = bytearray(model_file.read_bytes())
        data[len(data) // 2] ^= 0x01
        model_file.write_bytes(bytes(data))
    before = _metric(httpx.get(f"{served['url']}/metrics").text, "mlops_model_refused_total")
    write_rollout(
        served["home"] / "deployment" / "rollout.json",
        Rollout(mode="canary", challenger_tag="house_prices:flipped", share=0.5),
    )
    seen = _wait_for(served, {"requested_mode": "canary", "mode": "champion"})
    assert "model.ubj changed after it was signed: refusing to load it" in seen["error"]
    assert {a["model_version"] for a in _post_each(served, _records(100))} == {"1"}
    after = _metric(httpx.get(f"{served['url']}/metrics").text, "mlops_model_refused_total")
    assert after >= before + 1
    assert cli("rollout", "off") == 0
