"""Shadow and canary over real HTTP: `bentoml serve` with a champion (v1) and a challenger (v2).

One state folder serves every test: `mlops run` promotes v1 (XGBoost at the default depth); a
second batch arrives and a training run at depth 2 registers v2, which passes the gates but is
kept (not better on the same rows), so the registry's `challenger` alias names v2, its
predictions differ from the champion's, and so do its stored fill values (learnt from more
rows), as they do for almost any retrain. Each test sets the rollout it needs through
`mlops rollout`, or writes a broken one, and the running service follows the file without a
restart. The last tests move the champion itself (a promotion on live evidence, then
`mlops rollback`) while clients keep asking, and the running service follows.
"""

import itertools
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
import mlflow
import numpy as np
import pytest

from mlops_assets.cli import main
from mlops_assets.core.storage import write_json_atomic
from mlops_assets.model_registry.rollout import Rollout, read_rollout, write_rollout
from mlops_assets.serving.predictor import Predictor, load_bundle
from mlops_assets.serving.traffic import sticky_points
from tests.servers import bento_service

pytestmark = pytest.mark.server

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
RUN = [sys.executable, "-m", "mlops_assets.cli", "run"]
SECOND_CANDIDATE = """
from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.runner import ingest_batch, open_instance, run_pipeline
instance = open_instance(PlatformPaths(resolve_home()))
assert ingest_batch(instance, "more", {"rows": 1500, "seed": 7}).success
config = {
    "families": ["xgboost"],
    "max_depth": 2,
    "search_trials": 0,
    "protocol": "cross_validation",
}
run = run_pipeline(instance, model_config=config)
print(run.success, run.metadata.get("promoted_model", {}).get("promoted"), run.error)
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("rollout") / "mlops_home"
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    env.pop("MLOPS_SPEC", None)
    for command in (
        # Shuffled folds: the champion is XGBoost there, as the service checks below assume.
        [*RUN, "--rows", "3000", "--protocol", "cross_validation"],
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


def _logged(served, request_ids: set[str], expected: int, timeout_s: float = 30.0) -> list[dict]:
    """The prediction log's lines of these requests, once `expected` of them are written.

    The log is flushed by a background thread; this waits for the lines, not for a time.
    """
    deadline, lines = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        lines = []
        for path in sorted((served["home"] / "predictions").glob("*.jsonl")):
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                if entry["request_id"] in request_ids:
                    lines.append(entry)
        if len(lines) >= expected:
            return lines
        time.sleep(0.2)
    raise AssertionError(f"{len(lines)} of {expected} log lines written within {timeout_s} s")


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

    lines = _logged(served, {a["request_id"] for a in answers}, 2 * len(records))
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
    _differ_in_fill_values(served)
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

    lines = _logged(served, {batch.json()["request_id"]}, 200)
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
    ids = {a["request_id"] for a in answers} | {batch["request_id"]}
    lines = _logged(served, ids, len(answers) + len(records))
    assert {(e["model_version"], e["role"]) for e in lines} == {("1", "champion")}
    capsys.readouterr()
    assert cli("rollout", "status") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Rollout: champion only"


def test_by_key_shadow_scores_a_challenger_with_its_own_fill_values(served, cli, capsys):
    assert cli("rollout", "shadow") == 0
    seen = _wait_for(served, {"mode": "shadow", "challenger_version": "2"})
    assert seen["by_key_error"] is None
    champion, challenger = _differ_in_fill_values(served)
    keys = list(range(1, 121))
    answers = []
    with httpx.Client(base_url=served["url"], timeout=30) as client:
        for start in range(0, len(keys), 4):
            response = client.post("/v1/predict_by_key", json={"keys": keys[start : start + 4]})
            assert response.status_code == 200, response.text
            answers.append(response.json())
    assert {a["model_version"] for a in answers} == {"1"}
    lines = _logged(served, {a["request_id"] for a in answers}, 2 * len(keys))
    shadow = {e["inputs"]["house_id"]: e["output"] for e in lines if e["role"] == "challenger"}
    answered = {int(k): v for a in answers for k, v in a["predictions"].items()}
    rows = _online_rows(served, keys)
    assert sorted(shadow) == keys, "every by-key request was scored in the shadow"
    np.testing.assert_allclose(
        [shadow[k] for k in keys], challenger.predict_matrix(rows), rtol=1e-6
    )
    np.testing.assert_allclose(
        [answered[k] for k in keys], champion.predict_matrix(rows), rtol=1e-6
    )
    metrics = httpx.get(f"{served['url']}/metrics").text
    shadowed = [
        float(row["value"])
        for row in _prometheus_rows(metrics, "mlops_shadow_predictions_total")
        if (row["model_version"], row["endpoint"]) == ("2", "predict_by_key")
    ]
    assert sum(shadowed) == len(keys)
    assert _metric(metrics, "mlops_challenger_unscored_total") == 0
    capsys.readouterr()
    assert cli("rollout", "status") == 0
    said = capsys.readouterr().out
    assert "Service: 2 worker(s); champion answering: v1" in said, said
    scored = [line for line in said.splitlines() if line.startswith("  challenger v2:")]
    assert len(scored) == 1 and scored[0].endswith(" requests scored, 0 not scored"), said


def test_the_service_follows_the_champion_while_clients_keep_asking(served, cli):
    assert cli("rollout", "off") == 0
    _wait_for(served, {"mode": "champion", "requested_mode": "champion"})
    first_tag = _champion_tag(served)
    with _Clients(served["url"]) as clients:
        clients.wait_for_version("1")
        _promote_on_live_evidence(served, "2", "1")
        second_tag = _champion_tag(served)
        assert second_tag != first_tag
        clients.wait_for_version("2")
        info = _wait_for_info(served, "2")
        assert info["champion"] == {
            "model_tag": second_tag,
            "follows": str(served["home"] / "deployment" / "bento.json"),
            "error": None,
        }
        assert cli("rollback", "--reason", "follow test") == 0
        clients.wait_for_version("1")
        _wait_for_info(served, "1")
    assert clients.errors == [], clients.errors[:5]
    versions = clients.versions
    assert clients.sent == len(versions) > 0, "every request answered"
    assert versions[0] == "1" and versions[-1] == "1" and "2" in versions
    changes = [(a, b) for a, b in itertools.pairwise(versions) if a != b]
    assert changes[0] == ("1", "2") and changes[-1] == ("2", "1")
    metrics = httpx.get(f"{served['url']}/metrics").text
    assert _metric(metrics, "mlops_champion_swaps_total") == 4, "both workers, twice"
    assert _metric(metrics, "mlops_model_info{") == 1, "one version answers"
    [serving] = [r for r in _prometheus_rows(metrics, "mlops_model_info") if r["value"] == "1.0"]
    assert serving["model_version"] == "1"
    answered = {
        (row["model_version"], row["endpoint"])
        for row in _prometheus_rows(metrics, "mlops_predictions_total")
    }
    assert {("1", "predict"), ("2", "predict"), ("2", "predict_by_key")} <= answered


def test_a_champion_that_fails_to_load_leaves_the_old_one_answering(served, cli):
    pointer = served["home"] / "deployment" / "bento.json"
    good = pointer.read_text()
    corrupt = _corrupt_model(served)
    metrics = httpx.get(f"{served['url']}/metrics").text
    failures = _metric(metrics, "mlops_champion_load_failures_total")
    write_json_atomic({**json.loads(good), "model_tag": corrupt}, pointer)
    info = _wait_for_error(served, corrupt)
    assert info["model_version"] == "1"
    assert info["champion"]["model_tag"] == json.loads(good)["model_tag"]
    assert {a["model_version"] for a in _post_each(served, _records(50))} == {"1"}
    metrics = httpx.get(f"{served['url']}/metrics").text
    assert _metric(metrics, "mlops_champion_load_failures_total") == failures + 2
    write_json_atomic(json.loads(good), pointer)  # the file is tried again when it changes
    _wait_for_info(served, "1", error=None)


class _Clients:
    """Two client threads asking without pause (`/v1/predict` and `/v1/predict_by_key`)."""

    def __init__(self, url: str) -> None:
        self.url, self.sent = url, 0
        self.versions: list[str] = []
        self.errors: list[str] = []
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._threads = [
            threading.Thread(target=self._ask, args=(path,)) for path in ("predict", "by_key")
        ]

    def __enter__(self) -> "_Clients":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def wait_for_version(self, version: str, timeout_s: float = 300.0) -> None:
        """Until the last 40 answers all came from `version` (bounded)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                recent = self.versions[-40:]
            if len(recent) == 40 and set(recent) == {version}:
                return
            time.sleep(0.1)
        raise AssertionError(f"clients never got v{version} alone; last {recent}")

    def _ask(self, path: str) -> None:
        records, number = _records(50), 0
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                number += 1
                with self._lock:
                    self.sent += 1
                try:
                    if path == "predict":
                        response = client.post("/v1/predict", json=records[number % 50])
                    else:
                        keys = {"keys": [number % 200 + 1, number % 200 + 2]}
                        response = client.post("/v1/predict_by_key", json=keys)
                    body = response.json()
                    if response.status_code != 200:
                        raise AssertionError(f"{response.status_code}: {body}")
                except Exception as error:  # every failure is kept for the assertion
                    with self._lock:
                        self.errors.append(f"{path}: {error!r}")
                    continue
                with self._lock:
                    self.versions.append(body["model_version"])


def _promote_on_live_evidence(served, challenger: str, champion: str) -> None:
    """What `live_decision` does when the evidence says promote."""
    from mlops_assets.deployment.live_rollout import promote_on_evidence
    from mlops_assets.model_registry.champion import ChampionRegistry
    from mlops_assets.paths import PlatformPaths
    from mlops_assets.resources import resolve_spec_path

    paths = PlatformPaths(served["home"])
    uri = f"sqlite:///{paths.mlflow_db}"
    registry = ChampionRegistry(mlflow.MlflowClient(uri, uri), "house_prices", paths)
    record = {"reason": "live evidence (test)"}
    promote_on_evidence(registry, paths, resolve_spec_path(paths), challenger, champion, record)


def _wait_for_info(served, version: str, error=None, timeout_s: float = 30.0) -> dict:
    """`/v1/model_info` on fresh connections, until 12 answers in a row name `version`."""
    deadline, streak, info = time.monotonic() + timeout_s, 0, {}
    while time.monotonic() < deadline:
        info = httpx.get(f"{served['url']}/v1/model_info", timeout=10).json()
        matches = info["model_version"] == version and info["champion"]["error"] == error
        streak = streak + 1 if matches else 0
        if streak >= 12:
            return info
        time.sleep(0.1)
    raise AssertionError(f"model_info never settled on v{version}; last {info}")


def _wait_for_error(served, tag: str, timeout_s: float = 30.0) -> dict:
    """`/v1/model_info` until 12 answers in a row report that `tag` failed to load."""
    deadline, streak, info = time.monotonic() + timeout_s, 0, {}
    while time.monotonic() < deadline:
        info = httpx.get(f"{served['url']}/v1/model_info", timeout=10).json()
        error = info["champion"]["error"] or ""
        streak = streak + 1 if error.startswith(f"champion {tag} named by ") else 0
        if streak >= 12:
            assert "v1 keeps answering" in error, error
            return info
        time.sleep(0.1)
    raise AssertionError(f"model_info never reported {tag}; last {info}")


def _differ_in_fill_values(served) -> tuple[Predictor, Predictor]:
    """The champion and the challenger, whose stored fill values differ (checked)."""
    rollout = read_rollout(served["home"] / "deployment" / "rollout.json")
    champion = _model(served, _champion_tag(served))
    challenger = _model(served, rollout.challenger_tag)
    mine, theirs = champion.bundle.manifest["imputation"], challenger.bundle.manifest["imputation"]
    assert mine["lot_size"] != theirs["lot_size"], (mine, theirs)
    return champion, challenger


def _online_rows(served, keys: list[int]) -> np.ndarray:
    """The online store's rows of `keys`, read as the service reads them."""
    from mlops_assets.features.feast_repo import feature_store
    from mlops_assets.features.online_lookup import OnlineFeatureLookup
    from mlops_assets.paths import PlatformPaths

    paths = PlatformPaths(served["home"])
    spec = _model(served, _champion_tag(served)).spec
    found = OnlineFeatureLookup(feature_store(paths, online_only=True), spec).lookup(keys)
    assert found.keys == keys
    return found.matrix


def _prometheus_rows(text: str, name: str) -> list[dict[str, str]]:
    """The labels of each sample of `name` in a Prometheus text exposition."""
    rows = []
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels = line[len(name) + 1 : line.index("}")]
            row = {k: v.strip('"') for k, v in (p.split("=", 1) for p in labels.split(","))}
            rows.append({**row, "value": line.rsplit(" ", 1)[-1]})
    return rows


def _metric(text: str, name: str) -> float:
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    return sum(values)


def _corrupt_model(served) -> str:
    """A copy of the champion in the BentoML store whose model file is not a model."""
    import bentoml
    from bentoml._internal.models.model import ModelStore

    if (served["home"] / "bentoml" / "models" / "house_prices" / "corrupt").exists():
        return "house_prices:corrupt"
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
