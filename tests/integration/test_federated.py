"""Federated training across site processes on loopback: quality, isolation, failures, TLS.

Each site is a folder of synthetic house sales; the sites differ on purpose (each sells mostly
one kind of location), so a model from one site alone misses what the others know.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_assets.core.evaluation import compute_metrics
from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.core.imputation import learn_imputation
from mlops_assets.core.splits import entity_split
from mlops_assets.core.training import TrainParams, predict, train
from mlops_assets.federated.certificates import write_certificates
from mlops_assets.federated.coordinator import FederatedRunFailed, train_federated
from mlops_assets.federated.site_data import load_site_rows
from mlops_assets.federated.site_worker import pid_path
from mlops_assets.sources.synthetic import SyntheticConfig, generate_house_sales
from mlops_assets.spec import HOUSE_PRICES_SPEC, FederatedSettings, SpecError, load_spec

pytestmark = pytest.mark.server

SPEC = load_spec(HOUSE_PRICES_SPEC)
MIXES = ((0.96, 0.02, 0.02), (0.02, 0.96, 0.02), (0.02, 0.02, 0.96))
FAST = TrainParams(learning_rate=0.1, max_rounds=400, early_stopping_rounds=30)


def make_sites(root: Path, rows: int = 4_000) -> dict[str, str]:
    """Three site folders, disjoint houses, each mostly one location."""
    sites = {}
    for i, mix in enumerate(MIXES):
        folder = root / f"site_{i}"
        folder.mkdir(parents=True)
        config = SyntheticConfig(
            rows=rows, seed=100 + i, first_house_id=1 + i * 1_000_000, location_mix=mix
        )
        generate_house_sales(config).to_csv(folder / "sales.csv", index=False)
        sites[f"site_{i}"] = str(folder)
    return sites


def central_model(frames: list[pd.DataFrame]):
    """The same spec, split and parameters, trained on the union of the rows in one place."""
    union = pd.concat(frames, ignore_index=True)
    x = to_matrix(engineer(union, SPEC, learn_imputation(union, SPEC)), SPEC)
    y = union[SPEC.target].to_numpy(dtype=np.float64)
    split = entity_split(union[SPEC.entity_key].to_numpy(), SPEC.training.split.as_tuple())
    part = {name: np.flatnonzero(split == name) for name in ("train", "validation", "test")}
    model = train(
        x[part["train"]], y[part["train"]], x[part["validation"]], y[part["validation"]], SPEC, FAST
    )
    return model.booster, x[part["test"]], y[part["test"]]


def test_federated_model_matches_pooled_training_and_beats_one_site(tmp_path):
    sites = make_sites(tmp_path / "sites")
    result = train_federated(SPEC, FederatedSettings(sites=sites), FAST, tmp_path / "run")

    frames = [load_site_rows(SPEC, name, location) for name, location in sites.items()]
    pooled_booster, x_test, y_test = central_model(frames)
    central = compute_metrics(y_test, predict(pooled_booster, x_test), SPEC.task)
    alone, _, _ = central_model(frames[:1])
    one_site = compute_metrics(y_test, predict(alone, x_test), SPEC.task)

    # Same test rows on both sides: every site's test split is the union's test split.
    assert sum(s["rows"]["test"] for s in result.sites.values()) == len(y_test)
    assert abs(result.pooled["r2"] - central["r2"]) < 0.01
    assert result.pooled["r2"] > one_site["r2"] + 0.05
    assert result.pooled["r2"] > result.pooled_baseline["r2"] + 0.5
    assert set(result.sites) == set(sites)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """Three small sites and their plain (no TLS) federated run."""
    root = tmp_path_factory.mktemp("federated")
    sites = make_sites(root / "sites", rows=1_500)
    return sites, train_federated(SPEC, FederatedSettings(sites=sites), FAST, root / "run")


def test_each_site_reads_only_its_own_files(small_run):
    sites, result = small_run
    for name, summary in result.sites.items():
        own = Path(sites[name]).resolve()
        assert summary["files"] == [str(own / "sales.csv")]
    # One model, held identically by every site.
    assert len({s["model_sha256"] for s in result.sites.values()}) == 1
    assert result.model[:1] == b"{"  # XGBoost's UBJSON booster, as central training saves


def test_a_site_with_bad_data_stops_the_run_naming_site_and_check(tmp_path):
    sites = make_sites(tmp_path / "sites", rows=1_500)
    bad = Path(sites["site_1"]) / "sales.csv"
    pd.read_csv(bad).head(5).to_csv(bad, index=False)  # far below the spec's minimum rows

    started = time.monotonic()
    with pytest.raises(FederatedRunFailed, match=r"site 'site_1'.*check 'row_count' failed"):
        train_federated(SPEC, FederatedSettings(sites=sites), FAST, tmp_path / "run")
    assert time.monotonic() - started < 120


def test_a_killed_site_fails_the_run_in_bounded_time(tmp_path):
    sites = make_sites(tmp_path / "sites", rows=1_500)
    slow = TrainParams(learning_rate=0.001, max_rounds=20_000, early_stopping_rounds=20_000)
    run = tmp_path / "run"
    killed = threading.Event()

    def kill_when_boosting(message: str) -> None:
        if message.startswith("site 'site_2': boosting round") and not killed.is_set():
            os.kill(int(pid_path(run, "site_2").read_text()), signal.SIGKILL)
            killed.set()

    started = time.monotonic()
    with pytest.raises(FederatedRunFailed, match=r"site 'site_2' was killed by signal 9"):
        train_federated(SPEC, FederatedSettings(sites=sites), slow, run, kill_when_boosting)
    assert killed.is_set()
    assert time.monotonic() - started < 120


def test_tls_run_trains_the_same_model_as_plain(small_run, tmp_path):
    sites, plain = small_run
    tls = write_certificates(tmp_path / "certs")
    secure = train_federated(SPEC, FederatedSettings(sites=sites, tls=tls), FAST, tmp_path / "run")
    assert secure.model == plain.model


def test_spec_needs_two_named_sites(tmp_path):
    def spec_with(sites: dict[str, str]) -> Path:
        document = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
        document["training"]["federated"] = {"sites": sites}
        path = tmp_path / "spec.yaml"
        path.write_text(yaml.safe_dump(document))
        return path

    assert load_spec(spec_with({"north": "a", "south": "b"})).training.federated is not None
    with pytest.raises(SpecError, match=r"training\.federated\.sites"):
        load_spec(spec_with({"north": "data/north"}))
    with pytest.raises(SpecError, match="North"):
        load_spec(spec_with({"North": "a", "south": "b"}))


def _standalone(*args: str) -> subprocess.Popen:
    """`python -m mlops_assets.federated ...`, as a site or server started apart runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "mlops_assets.federated", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_standalone_site_and_server_stop_within_the_timeout_when_a_site_is_killed(tmp_path):
    """A site killed once it joined: its peer and the server stop on --timeout, saying why."""
    from mlops_assets.federated.site_worker import error_path, status_path

    timeout = 20
    sites = make_sites(tmp_path / "sites", rows=1_500)
    port = _free_port()
    common = ("--sites", "2", "--timeout", str(timeout))
    server = _standalone("server", "--port", str(port), *common)
    run = tmp_path / "run"
    workers = {
        name: _standalone(
            "site", "--site", name, "--rank", str(rank), "--server", f"127.0.0.1:{port}",
            "--location", sites[name], "--folder", str(run), "--spec", str(HOUSE_PRICES_SPEC),
            *common,
        )
        for rank, name in enumerate(("site_0", "site_1"))
    }  # fmt: skip
    try:
        status = status_path(run, "site_1")
        while not (status.exists() and status.read_text().startswith("connected")):
            assert workers["site_1"].poll() is None, workers["site_1"].communicate()
            time.sleep(0.01)  # polls a file another process writes
        os.kill(workers["site_1"].pid, signal.SIGKILL)
        killed_at = time.monotonic()
        assert workers["site_0"].wait(timeout=timeout + 60) == 1
        site_seconds = time.monotonic() - killed_at
        assert server.wait(timeout=timeout + 60) == 1
        server_seconds = time.monotonic() - killed_at
    finally:
        for process in (server, *workers.values()):
            process.kill()
            process.wait()
    assert site_seconds < timeout + 15 and server_seconds < timeout + 15
    # Whichever comes first: its own watchdog, or the server's stop breaking its connection.
    error = error_path(run, "site_0").read_text().split("\n\n")[0]
    assert error.startswith("site 'site_0': "), error
    assert f"the federated server at 127.0.0.1:{port} or another site is gone" in error, error
    assert status_path(run, "site_0").read_text().startswith("stopped")
    said = server.stderr.read()
    assert "error: a site left the federated server mid-training" in said or (
        "error: only 1 of 2 sites connected" in said
    ), said


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_server_port_and_address_are_settings(small_run, tmp_path):
    import socket

    sites, plain = small_run
    port = _free_port()
    settings = FederatedSettings(sites=sites, server_address="127.0.0.1", server_port=port)
    assert train_federated(SPEC, settings, FAST, tmp_path / "run").model == plain.model
    with socket.socket() as taken:  # bound, not listening: the server cannot have the port
        taken.bind(("0.0.0.0", port))
        with pytest.raises(FederatedRunFailed) as failed:
            train_federated(SPEC, settings, FAST, tmp_path / "again")
    assert str(failed.value).startswith("the federated server exited with code ")
    assert str(failed.value).endswith(
        f"before listening on port {port} (is the port, training.federated.server_port, taken?)"
    )


def test_a_server_that_does_not_listen_in_time_fails_with_the_setting_named(tmp_path):
    sites = {"north": str(tmp_path / "north"), "south": str(tmp_path / "south")}
    settings = FederatedSettings(sites=sites, server_start_seconds=0.001)
    with pytest.raises(FederatedRunFailed) as failed:
        train_federated(SPEC, settings, FAST, tmp_path / "run")
    assert str(failed.value).startswith("the federated server did not accept connections at ")
    assert "within 0.001 s (training.federated.server_start_seconds): raise it" in str(failed.value)
