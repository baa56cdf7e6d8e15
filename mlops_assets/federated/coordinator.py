"""Run a federated training: the server and one process per site, watched until all finish.

A site that fails (bad data, an error, a kill) stops the whole run at once with its name in
the message; a run in which no site reports progress for `timeout_seconds` stops too, so no
failure ends in a hang. Nothing is registered or promoted here: the caller gets the model
bytes and the aggregate evaluation, or an exception, and the champion is untouched either way.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_assets.core.training import TrainParams
from mlops_assets.federated.pooled import pooled_metrics
from mlops_assets.federated.server import ServerStopped, serve
from mlops_assets.federated.site_worker import (
    MODEL_FILE,
    ChampionModel,
    SiteTask,
    error_path,
    run_site,
    status_path,
    summary_path,
)
from mlops_assets.spec import DatasetSpec
from mlops_assets.spec.model import FederatedSettings

POLL_SECONDS = 0.2
SERVER_LOG = "server.log"


class FederatedRunFailed(RuntimeError):
    """The federated run stopped; the message names the site and why."""


@dataclass(frozen=True)
class FederatedResult:
    """The federated model and its evaluation, each site's and pooled over all sites."""

    model: bytes
    best_iteration: int
    imputation: dict[str, Any]
    sites: dict[str, dict[str, Any]]
    pooled: dict[str, float]
    pooled_baseline: dict[str, float]
    seconds: float
    statistics: dict[str, Any]  # the drift reference, from the sites' shared histograms
    data_hash: str  # over the sites' own row hashes, in the spec's site order
    pooled_champion: dict[str, float] | None = None  # the champion on the same test rows


def train_federated(
    spec: DatasetSpec,
    settings: FederatedSettings,
    params: TrainParams,
    folder: Path,
    progress: Callable[[str], None] = lambda _: None,
    champion: ChampionModel | None = None,
) -> FederatedResult:
    """Train one model across the spec's sites; raises `FederatedRunFailed` naming a site.

    With a `champion`, every site also scores it on its own test rows, so the gates compare
    the two on the same rows without any row leaving its site.
    """
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    started = time.monotonic()
    port = settings.server_port or _free_port()
    context = _process_context()
    sites = list(settings.sites)
    threads = max(1, (os.cpu_count() or 1) // len(sites))
    server = context.Process(
        target=_serve,
        args=(port, len(sites), _server_tls(settings), settings.timeout_seconds, folder),
        name="federated-server",
        daemon=True,
    )
    server.start()
    workers: dict[str, Any] = {}
    try:
        _wait_for_server(settings.server_address, port, server, settings.server_start_seconds)
        for rank, site in enumerate(sites):
            task = SiteTask(
                site=site,
                rank=rank,
                world_size=len(sites),
                location=settings.sites[site],
                server=f"{_host(settings.server_address)}:{port}",
                folder=str(folder),
                spec=spec,
                params=params.with_changes(threads=threads),
                tls=_client_tls(settings),
                timeout_seconds=settings.timeout_seconds,
                champion=champion,
            )
            workers[site] = context.Process(target=run_site, args=(task,), name=f"site-{site}")
            workers[site].start()
        _watch(workers, folder, settings.timeout_seconds, progress, server)
    finally:
        for process in [*workers.values(), server]:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)
    return _collect(folder, sites, time.monotonic() - started, spec)


def _process_context() -> multiprocessing.context.BaseContext:
    """Server and sites fork from a process that has imported XGBoost and the site code once.

    A fresh interpreter per site spends seconds importing them (tens of seconds on a busy
    machine, all sites at once); the fork server pays that once per platform process. It
    forks before any XGBoost thread runs, so each site still starts clean.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _watch(
    workers: dict[str, Any],
    folder: Path,
    timeout: float,
    progress: Callable[[str], None],
    server: Any,
) -> None:
    """Poll until every site has finished; stop at the first failure or a silent timeout."""
    last_change, seen = time.monotonic(), {}
    while True:
        if server.exitcode not in (None, 0):
            raise FederatedRunFailed(_server_failure(folder, server.exitcode))
        for site, process in workers.items():
            if process.exitcode not in (None, 0):
                raise FederatedRunFailed(_failure(folder, site, process.exitcode))
            status = _read(status_path(folder, site))
            if status and status != seen.get(site):
                seen[site], last_change = status, time.monotonic()
                progress(f"site '{site}': {status}")
        if all(p.exitcode == 0 for p in workers.values()):
            return
        if time.monotonic() - last_change > timeout:
            waiting = [s for s, p in workers.items() if p.exitcode is None]
            raise FederatedRunFailed(
                f"no progress from site(s) {waiting} for {timeout:g} s "
                "(training.federated.timeout_seconds); the run was stopped"
            )
        time.sleep(POLL_SECONDS)


def _failure(folder: Path, site: str, exitcode: int) -> str:
    written = _read(error_path(folder, site))
    if written:
        return written.split("\n\n", 1)[0]
    how = f"was killed by signal {-exitcode}" if exitcode < 0 else f"exited with code {exitcode}"
    return f"site '{site}' {how} during federated training; the run was stopped"


def _collect(folder: Path, sites: list[str], seconds: float, spec: DatasetSpec) -> FederatedResult:
    summaries = {s: json.loads(summary_path(folder, s).read_text()) for s in sites}
    hashes = {s: summary["model_sha256"] for s, summary in summaries.items()}
    if len(set(hashes.values())) != 1:
        raise FederatedRunFailed(f"sites ended with different models: {hashes}")
    first = summaries[sites[0]]
    joint = hashlib.sha256("".join(summaries[s]["data_hash"] for s in sites).encode())
    scored_champion = all(s.get("champion_metrics") for s in summaries.values())
    return FederatedResult(
        model=(folder / MODEL_FILE).read_bytes(),
        best_iteration=int(first["best_iteration"]),
        imputation=first["imputation"],
        sites=summaries,
        pooled=pooled_metrics(summaries, spec.task, "metrics"),
        pooled_baseline=pooled_metrics(summaries, spec.task, "baseline_metrics"),
        seconds=seconds,
        statistics=first["statistics"],
        data_hash=joint.hexdigest(),
        pooled_champion=pooled_metrics(summaries, spec.task, "champion_metrics")
        if scored_champion
        else None,
    )


def _serve(port: int, sites: int, tls: dict[str, str], timeout: int, folder: Path) -> None:
    """Server process: XGBoost's federated server, with TLS when certificates are given.

    Its native library prints to the process's own stdout; that goes to `server.log` in the
    run folder so the terminal shows only the platform's progress lines. If its sites go, it
    stops on the run's timeout and leaves the reason as the log's last line.
    """
    log = os.open(folder / SERVER_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        serve(sites, port, timeout, tls)
    except ServerStopped as stopped:
        os.write(2, f"\n{stopped}\n".encode())
        raise SystemExit(1) from None


def _server_failure(folder: Path, exitcode: int) -> str:
    lines = _read(folder / SERVER_LOG).strip().splitlines()
    said = f": {lines[-1]}" if lines else ""
    return (
        f"the federated server exited with code {exitcode}{said} (its log: "
        f"{folder / SERVER_LOG}); the run was stopped"
    )


def _server_tls(settings: FederatedSettings) -> dict[str, str]:
    tls = settings.tls
    if tls is None:
        return {}
    return {
        "server_key_path": str(tls.server_key),
        "server_cert_path": str(tls.server_cert),
        "client_cert_path": str(tls.ca_cert),  # the server trusts clients the CA signed
    }


def _client_tls(settings: FederatedSettings) -> dict[str, str] | None:
    tls = settings.tls
    if tls is None:
        return None
    return {
        "ca_cert": str(tls.ca_cert),
        "client_cert": str(tls.client_cert),
        "client_key": str(tls.client_key),
    }


def _wait_for_server(address: str, port: int, server: Any, seconds: float) -> None:
    """Until the server accepts a connection at `address:port`, at most `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.exitcode is not None:
            raise FederatedRunFailed(
                f"the federated server exited with code {server.exitcode} before listening on "
                f"port {port} (is the port, training.federated.server_port, taken?)"
            )
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(POLL_SECONDS)
    raise FederatedRunFailed(
        f"the federated server did not accept connections at {_host(address)}:{port} within "
        f"{seconds:g} s (training.federated.server_start_seconds): raise it on a busy machine, "
        "or check that the address reaches this machine"
    )


def _host(address: str) -> str:
    """An address as `host:port` wants it (an IPv6 literal in brackets)."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
