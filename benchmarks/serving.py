"""Benchmark: the platform's BentoML service against a hand-written FastAPI peer, fairly.

Both serve the same champion on loopback with the same number of worker processes (each count
in --workers; BentoML's through its `services.<name>.workers` setting, the peer's through
uvicorn's --workers). Both run throughout; each round measures them in turn, the order
alternating from round to round, and every figure printed is the median of --rounds rounds
(at least 3). The load average is printed before each round: the machine's other work shows.

One client (asyncio, keep-alive connections with TCP_NODELAY, so Nagle's algorithm does not
add ~40 ms) on the same machine measures, for each worker count:
  - single-row /predict: requests/s, p50 and p99 at concurrency 1 and 32, platform and peer;
  - a 1,000-row /predict_batch of varied records (some fields missing or null, times with
    offsets) at concurrency 1 (platform only: the peer has none);
  - /predict_by_key through the online store at concurrency 1 (platform only).
In the same rounds, the platform alone answers single-row /predict at c=1 and c=32 under each
rollout mode, in turn and in a rotating order: champion only, shadow (the challenger scores
every request after its response), and canary (a 20 % share answered by the challenger; the
body has no entity key, so routing is random). The service follows the rollout file without a
restart; the challenger is a second copy of the champion's model from the BentoML store, so
it costs exactly what a challenger of the same family and size costs. The file is restored
afterwards.
Then one request is profiled in process, layer by layer (`serving_profile.py`).

Targets: platform/peer throughput at c=32 >= 1.0 at equal workers; single-row p99 at c=1
<= 10 ms; batch p99 <= 25 ms; by-key p99 <= 12 ms; shadow throughput >= 85 % of champion-only,
canary within noise of it. It needs a state folder with a champion:
pass --home, or it runs `mlops run` in a temporary one.

    .venv/bin/python benchmarks/serving.py [--home .mlops_home] [--workers 1 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from serving_profile import BATCH_ROWS, RECORD, batch_records

ROOT = Path(__file__).resolve().parents[1]
SERVICE_NAME = "mlops_predictions"
SINGLE = json.dumps(RECORD).encode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


def _request(path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _roundtrip(reader, writer, raw: bytes) -> int:
    writer.write(raw)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def _load(
    port: int, path: str, body: bytes, concurrency: int, total: int
) -> tuple[list[float], float]:
    raw = _request(path, body)
    latencies: list[float] = []
    per_connection = max(total // concurrency, 1)

    async def connection() -> None:
        reader, writer = await _connection(port)
        for _ in range(per_connection):
            started = time.perf_counter()
            status = await _roundtrip(reader, writer, raw)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def measure(port: int, path: str, body: bytes, concurrency: int, total: int) -> dict[str, float]:
    """A short warm-up, then `total` requests over `concurrency` keep-alive connections."""
    asyncio.run(_load(port, path, body, min(concurrency, 4), max(total // 10, 20)))
    latencies, seconds = asyncio.run(_load(port, path, body, concurrency, total))
    values = np.asarray(latencies) * 1e3
    return {
        "rps": len(values) / seconds,
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
    }


def _wait_ready(port: int, path: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2):
                return
        except urllib.error.HTTPError as error:
            if error.code == 405:  # up, but the path only takes POST
                return
            time.sleep(0.5)
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"server on {port} not ready")


def _state(home: str | None) -> Path:
    if home:
        return Path(home).resolve()
    folder = Path(tempfile.mkdtemp(prefix="mlops-serving-bench-")) / "home"
    env = {**os.environ, "MLOPS_HOME": str(folder)}
    subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "run"], env=env, check=True, capture_output=True
    )
    return folder


def _model_dir(home: Path) -> Path:
    pointer = json.loads((home / "deployment" / "bento.json").read_text())
    name, version = pointer["model_tag"].split(":")
    return home / "bentoml" / "models" / name / version


@contextmanager
def servers(home: Path, workers: int) -> Iterator[tuple[int, int]]:
    """The platform's service and the peer, `workers` processes each; yields their ports."""
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    platform_env = {
        **env,
        "BENTOML_CONFIG_OVERRIDES": json.dumps({"services": {SERVICE_NAME: {"workers": workers}}}),
    }
    ours_port, theirs_port = _free_port(), _free_port()
    ours = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "bentos.service:PredictionService",
            "--host",
            "127.0.0.1",
            "--port",
            str(ours_port),
        ],
        cwd=ROOT,
        env=platform_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    theirs = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "serving_baseline:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(theirs_port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT / "benchmarks",
        env={**env, "BASELINE_MODEL_DIR": str(_model_dir(home)), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(ours_port, "/readyz", ours)
        _wait_ready(theirs_port, "/predict", theirs)
        yield ours_port, theirs_port
    finally:
        for process in (ours, theirs):
            process.terminate()
            process.wait(timeout=60)


def one_round(
    ours: int, theirs: int, args: argparse.Namespace, peer_first: bool
) -> dict[str, dict[str, float]]:
    """Every measurement once; within each, the peer and the platform in the given order."""
    figures: dict[str, dict[str, float]] = {}
    for concurrency, total in ((1, args.requests), (32, args.requests * 2)):
        pairs = [("peer", theirs, "/predict"), ("platform", ours, "/v1/predict")]
        for who, port, path in pairs if peer_first else pairs[::-1]:
            figures[f"{who} c={concurrency}"] = measure(port, path, SINGLE, concurrency, total)
    batch = json.dumps({"records": batch_records(BATCH_ROWS)}).encode()
    figures["platform batch"] = measure(ours, "/v1/predict_batch", batch, 1, args.batches)
    keys = json.dumps({"keys": [1]}).encode()
    figures["platform by key"] = measure(ours, "/v1/predict_by_key", keys, 1, args.requests)
    return figures


ROLLOUT_MODES = ("champion", "shadow", "canary")
CANARY_SHARE = 0.2


def set_rollout(home: Path, port: int, mode: str) -> None:
    """Write the rollout file for `mode` and wait until the service answers with it."""
    pointer = json.loads((home / "deployment" / "bento.json").read_text())
    setting = {"mode": mode, "share": CANARY_SHARE if mode == "canary" else 0.0}
    if mode != "champion":
        setting["challenger_tag"] = pointer["model_tag"]
        setting["challenger_version"] = str(pointer["model_version"])
    path = home / "deployment" / "rollout.json"
    temporary = path.with_name(".rollout.json.benchmark")
    temporary.write_text(json.dumps(setting))
    os.replace(temporary, path)
    deadline, streak = time.monotonic() + 30, 0
    while streak < 12:  # fresh connections, so every worker is asked
        if time.monotonic() > deadline:
            raise SystemExit(f"the service did not switch to {mode}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/model_info", timeout=5) as r:
            streak = streak + 1 if json.load(r)["rollout"]["mode"] == mode else 0
        time.sleep(0.05)


def rollout_round(
    home: Path, ours: int, args: argparse.Namespace, number: int
) -> dict[str, dict[str, float]]:
    """Single-row /predict at c=1 and c=32 under each rollout mode, the order rotating."""
    figures: dict[str, dict[str, float]] = {}
    order = ROLLOUT_MODES[number % 3 :] + ROLLOUT_MODES[: number % 3]
    for mode in order:
        set_rollout(home, ours, mode)
        for concurrency, total in ((1, args.requests), (32, args.requests * 2)):
            figures[f"{mode} c={concurrency}"] = measure(
                ours, "/v1/predict", SINGLE, concurrency, total
            )
    return figures


def summarise_rollout(workers: int, rounds: list[dict[str, dict[str, float]]]) -> None:
    """Medians per mode, and each mode's throughput relative to champion-only per round."""
    print(f"\n{workers} worker(s), platform /v1/predict by rollout mode, medians of "
          f"{len(rounds)} rounds:")  # fmt: skip
    print(f"  {'':40s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for mode in ROLLOUT_MODES:
        for c in (1, 32):
            figures = _median(rounds, f"{mode} c={c}")
            title = f"{mode}, c={c}"
            print(f"  {title:40s} {figures['rps']:8.0f} {figures['p50']:8.2f} "
                  f"{figures['p99']:8.2f}")  # fmt: skip
    for mode in ROLLOUT_MODES[1:]:
        for c in (1, 32):
            ratios = [r[f"{mode} c={c}"]["rps"] / r[f"champion c={c}"]["rps"] for r in rounds]
            each = ", ".join(f"{ratio:.2f}" for ratio in ratios)
            print(f"  throughput {mode}/champion at c={c}: {np.median(ratios):.2f} "
                  f"(rounds: {each})")  # fmt: skip


@contextmanager
def kept_rollout(home: Path) -> Iterator[None]:
    """Put the state folder's rollout file back as it was, whatever the benchmark wrote."""
    path = home / "deployment" / "rollout.json"
    before = path.read_bytes() if path.exists() else None
    try:
        yield
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _median(rounds: list[dict[str, dict[str, float]]], label: str) -> dict[str, float]:
    return {key: float(np.median([r[label][key] for r in rounds])) for key in ("rps", "p50", "p99")}


LABELS = {
    "peer c=1": "FastAPI peer, c=1",
    "platform c=1": "platform, c=1",
    "peer c=32": "FastAPI peer, c=32",
    "platform c=32": "platform, c=32",
    "platform batch": f"platform, batch of {BATCH_ROWS:,} rows, c=1",
    "platform by key": "platform, by key, c=1",
}


def summarise(workers: int, rounds: list[dict[str, dict[str, float]]]) -> None:
    """Print the medians over rounds, and the throughput ratios per round and overall."""
    print(f"\n{workers} worker(s) each, medians of {len(rounds)} rounds:")
    print(f"  {'':40s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for label, title in LABELS.items():
        figures = _median(rounds, label)
        print(f"  {title:40s} {figures['rps']:8.0f} {figures['p50']:8.2f} {figures['p99']:8.2f}")
    for c in (1, 32):
        ratios = [r[f"platform c={c}"]["rps"] / r[f"peer c={c}"]["rps"] for r in rounds]
        each = ", ".join(f"{ratio:.2f}" for ratio in ratios)
        print(f"  throughput platform/peer at c={c}: {np.median(ratios):.2f} (rounds: {each})")


def profile(home: Path, requests: int) -> dict[str, float]:
    """Run `serving_profile.py` in a process of its own; print its report, return its figures."""
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "serving_profile.py"),
            "--home",
            str(home),
            "--requests",
            str(requests),
        ],
        cwd=ROOT,
        env={**os.environ, "MLOPS_ONLINE_FEATURES": "off"},
        capture_output=True,
        text=True,
        check=True,
    )
    figures, *lines = completed.stdout.strip().splitlines()
    print("\n" + "\n".join(lines))
    return json.loads(figures)


def outside_the_app(
    figures: dict[str, float], medians: dict[str, dict[str, float]], workers: int
) -> None:
    """What HTTP adds to the in-process time of one request at c=1 (server, loopback, client)."""
    platform = medians["platform c=1"]["p50"] * 1e3 - figures["BentoML app"]
    peer = medians["peer c=1"]["p50"] * 1e3 - figures["peer app"]
    print(
        f"  over HTTP at c=1 ({workers} worker(s)), p50 minus the app in process: "
        f"platform {platform:.0f} us, peer {peer:.0f} us (uvicorn, loopback, the client)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", help="state folder with a champion (default: build one)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per worker count (>= 3)")
    parser.add_argument("--requests", type=int, default=1_500, help="single-row requests at c=1")
    parser.add_argument("--batches", type=int, default=200, help="batch requests per round")
    parser.add_argument("--profile-requests", type=int, default=3_000)
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds: at least 3, so a median means something")
    home = _state(args.home)
    print(f"{os.cpu_count()} CPU cores; load average (1, 5, 15 min): {_load_average()}")
    medians: dict[int, dict[str, dict[str, float]]] = {}
    for workers in args.workers:
        rounds, rollout_rounds = [], []
        with kept_rollout(home), servers(home, workers) as (ours, theirs):
            for number in range(args.rounds):
                peer_first = number % 2 == 0
                first = "peer" if peer_first else "platform"
                print(f"{workers} worker(s), round {number + 1} ({first} first), load average "
                      f"{_load_average()}")  # fmt: skip
                set_rollout(home, ours, "champion")
                rounds.append(one_round(ours, theirs, args, peer_first))
                rollout_rounds.append(rollout_round(home, ours, args, number))
        summarise(workers, rounds)
        summarise_rollout(workers, rollout_rounds)
        medians[workers] = {label: _median(rounds, label) for label in LABELS}
    figures = profile(home, args.profile_requests)
    fewest = min(medians)
    outside_the_app(figures, medians[fewest], fewest)
    print(f"\nload average at the end: {_load_average()}")
    print(
        "targets: platform/peer at c=32 >= 1.0 at equal workers; p99 c=1 <= 10 ms; "
        "batch p99 <= 25 ms; by-key p99 <= 12 ms; shadow/champion throughput >= 0.85; "
        "canary/champion within noise"
    )


if __name__ == "__main__":
    main()
