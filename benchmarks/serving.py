"""Benchmark: the platform's BentoML service against a hand-written FastAPI service, one run.

Both serve the same champion on loopback; one client (keep-alive connections with
TCP_NODELAY, so Nagle's algorithm does not add ~40 ms) measures:
  - single-row /predict: p50/p99 at concurrency 1 and throughput at concurrency 32;
  - a 1,000-row batch (platform only: the baseline has no batch endpoint): p50/p99;
  - by-key prediction through the online store (platform only): p50/p99.
Targets: throughput at c=32 >= the baseline; p99 at c=1 <= 10 ms; batch <= 25 ms; by-key p99
<= 12 ms. It needs a state folder with a champion: pass --home, or it runs `mlops run` in a
temporary one.

    uv run python benchmarks/serving.py [--home .mlops_home] [--requests 3000]
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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RECORD = {
    "sqft": 1800.0,
    "bedrooms": 3,
    "bathrooms": 2.0,
    "location": "urban",
    "year_built": 1990,
    "condition": "good",
    "lot_size": 5000.0,
}


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
    per_worker = max(total // concurrency, 1)

    async def worker() -> None:
        reader, writer = await _connection(port)
        for _ in range(per_worker):
            started = time.perf_counter()
            status = await _roundtrip(reader, writer, raw)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def measure(port: int, path: str, body: bytes, concurrency: int, total: int) -> dict[str, float]:
    """Warm up, then run `total` requests over `concurrency` keep-alive connections."""
    asyncio.run(_load(port, path, body, min(concurrency, 4), min(200, total)))
    latencies, seconds = asyncio.run(_load(port, path, body, concurrency, total))
    values = np.asarray(latencies) * 1e3
    return {
        "rps": len(values) / seconds,
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
    }


def _wait_ready(port: int, path: str, process: subprocess.Popen, timeout: float = 120) -> None:
    import urllib.error
    import urllib.request

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


def _print(name: str, figures: dict[str, float]) -> None:
    rps, p50, p99 = figures["rps"], figures["p50"], figures["p99"]
    print(f"{name:44s} {rps:8.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", help="state folder with a champion (default: build one)")
    parser.add_argument("--requests", type=int, default=3_000)
    args = parser.parse_args()
    home = _state(args.home)
    pointer = json.loads((home / "deployment" / "bento.json").read_text())
    name, version = pointer["model_tag"].split(":")
    model_dir = home / "bentoml" / "models" / name / version
    env = {**os.environ, "MLOPS_HOME": str(home), "BENTOML_HOME": str(home / "bentoml")}
    ours_port, theirs_port = _free_port(), _free_port()
    ours = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "bentos.service:PredictionService",
            "--port",
            str(ours_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    theirs = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "serving_baseline:app",
            "--port",
            str(theirs_port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT / "benchmarks",
        env={**env, "BASELINE_MODEL_DIR": str(model_dir), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(ours_port, "/readyz", ours)
        _wait_ready(theirs_port, "/predict", theirs)
        body = json.dumps(RECORD).encode()
        n = args.requests
        results = {
            "baseline c=1": measure(theirs_port, "/predict", body, 1, n),
            "platform c=1": measure(ours_port, "/v1/predict", body, 1, n),
            "baseline c=32": measure(theirs_port, "/predict", body, 32, n * 2),
            "platform c=32": measure(ours_port, "/v1/predict", body, 32, n * 2),
        }
        batch = json.dumps({"records": [RECORD] * 1_000}).encode()
        results["platform batch of 1,000 rows c=1"] = measure(
            ours_port, "/v1/predict_batch", batch, 1, 200
        )
        keys = json.dumps({"keys": [1]}).encode()
        results["platform by-key c=1"] = measure(ours_port, "/v1/predict_by_key", keys, 1, n)
        for label, figures in results.items():
            _print(label, figures)
        for c in (1, 32):
            ratio = results[f"platform c={c}"]["rps"] / results[f"baseline c={c}"]["rps"]
            print(f"throughput ratio platform/baseline at c={c}: {ratio:.2f}")
        print(
            "targets: c=32 ratio >= 1.0; p99 c=1 <= 10 ms; batch p99 <= 25 ms; by-key p99 <= 12 ms"
        )
    finally:
        for process in (ours, theirs):
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
