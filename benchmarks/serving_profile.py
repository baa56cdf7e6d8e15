"""Where one single-record /predict request spends its time, layer by layer, in process.

Started by `benchmarks/serving.py` in a process of its own (it imports the BentoML service,
which configures BentoML globally). Each layer is called directly as an ASGI app with the
same request, no sockets, so the differences between layers are their own costs:

  - the peer's FastAPI app (`serving_baseline.py`);
  - the platform's FastAPI app that BentoML mounts under `/v1`;
  - BentoML's whole app around it (its middleware: request metrics, tracing, timeout,
    concurrency limit, request context; then the mount);

and inside the platform's endpoint: request validation, features, the model, and the answer
(metrics, prediction log, request id, JSON). What the HTTP figures add on top of the whole app
is the server (uvicorn), the kernel's loopback and the load client.

    .venv/bin/python benchmarks/serving_profile.py --home .mlops_home [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BATCH_ROWS = 1_000
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


RECORD = {
    "sqft": 1800.0,
    "bedrooms": 3,
    "bathrooms": 2.0,
    "location": "urban",
    "year_built": 1990,
    "condition": "good",
    "lot_size": 5000.0,
}


def batch_records(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Valid, varied records as clients send them: every field across its range, whole numbers
    as integers, `lot_size` sometimes missing or null, event times with and without offsets."""
    rng = np.random.default_rng(seed)
    offsets = ("+00:00", "Z", "+05:30", "")
    records = []
    for i in range(count):
        record: dict[str, Any] = {
            "sqft": round(float(rng.uniform(400, 6000)), 1),
            "bedrooms": int(rng.integers(0, 8)),
            "bathrooms": float(rng.integers(2, 9) / 2),
            "location": str(rng.choice(["urban", "suburban", "rural"])),
            "year_built": int(rng.integers(1850, 2024)),
            "condition": str(rng.choice(["poor", "fair", "good", "excellent"])),
            "lot_size": float(rng.integers(500, 40_000)),
            "event_timestamp": f"20{15 + i % 10}-{1 + i % 12:02d}-{1 + i % 28:02d}T10:30:00"
            + offsets[i % len(offsets)],
        }
        if i % 10 == 0:
            del record["lot_size"]
        elif i % 10 == 1:
            record["lot_size"] = None
        records.append(record)
    return records


def _scope(path: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 3000),
        "state": {},
    }


async def _call(app: Any, path: str, body: bytes) -> int:
    """One request straight into an ASGI app; returns the status."""
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client never disconnects mid-request
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(path, body), receive, send)
    return status


async def _time_apps(
    apps: dict[str, tuple[Any, str]], body: bytes, requests: int, block: int = 50
) -> dict[str, float]:
    """CPU microseconds of one request through each app: the median over interleaved blocks.

    CPU time of this thread, not wall time: on a machine shared with other work, the time this
    process waits for a core is not the app's cost. Interleaving spreads what remains (caches
    shared with other processes, frequency) evenly over the apps compared.
    """
    for app, path in apps.values():
        for _ in range(200):
            status = await _call(app, path, body)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
    spent: dict[str, list[float]] = {label: [] for label in apps}
    for _ in range(max(requests // block, 1)):
        for label, (app, path) in apps.items():
            started = time.thread_time()
            for _ in range(block):
                await _call(app, path, body)
            spent[label].append((time.thread_time() - started) / block)
    return {label: float(np.median(values) * 1e6) for label, values in spent.items()}


def _time_call(function: Callable[[], Any], requests: int, block: int = 50) -> float:
    """CPU microseconds of one call (median over blocks), as `_time_apps` measures."""
    for _ in range(200):
        function()
    spent = []
    for _ in range(max(requests // block, 1)):
        started = time.thread_time()
        for _ in range(block):
            function()
        spent.append((time.thread_time() - started) / block)
    return float(np.median(spent) * 1e6)


def _batch_stages(service: Any, rows: int, requests: int) -> dict[str, float]:
    """A batch's steps inside its endpoint (CPU microseconds): parse, validate, features, model."""
    from mlops_assets.serving.batch import validate_batch

    predictor = service.predictor
    body = json.dumps({"records": batch_records(rows)}).encode()
    payload = json.loads(body)
    columns = validate_batch(payload, predictor.spec)
    matrix = predictor.matrix(columns)
    repeats = max(requests // 100, 10)
    return {
        "batch parse": _time_call(lambda: json.loads(body), repeats, block=5),
        "batch validate": _time_call(lambda: validate_batch(payload, predictor.spec), repeats, 5),
        "batch features": _time_call(lambda: predictor.matrix(columns), repeats, block=5),
        "batch model": _time_call(lambda: predictor.predict_matrix(matrix), repeats, block=5),
    }


def _stages(service: Any, record: dict[str, Any], requests: int) -> dict[str, float]:
    """The platform endpoint's own steps, each timed alone (microseconds, medians)."""
    from mlops_assets.serving import app as serving_app
    from mlops_assets.serving.routing import Part, Routed
    from mlops_assets.serving.schema import record_model

    predictor = service.predictor
    model = record_model(predictor.spec)
    values = [model.model_validate(record).model_dump()]
    columns = {n: [v[n] for v in values] for n in values[0]}
    matrix = predictor.matrix(columns)
    routed = Routed(predictor.predict_matrix(matrix), [])
    routed.parts.append(Part(predictor.bundle.version, "champion", routed.predictions))
    return {
        "validate": _time_call(lambda: [model.model_validate(record).model_dump()], requests),
        "features": _time_call(lambda: predictor.matrix(columns), requests),
        "model": _time_call(lambda: predictor.predict_matrix(matrix), requests),
        "answer": _time_call(
            lambda: serving_app._answer(
                service, "profile", values, routed, {"prediction": 1.0}, time.perf_counter()
            ),
            requests,
        ),
    }


async def profile(home: Path, record: dict[str, Any], requests: int) -> dict[str, float]:
    """CPU microseconds per request of each layer and stage (medians of blocks)."""
    pointer = json.loads((home / "deployment" / "bento.json").read_text())
    name, version = pointer["model_tag"].split(":")
    os.environ.update(
        MLOPS_HOME=str(home),
        BENTOML_HOME=str(home / "bentoml"),
        BASELINE_MODEL_DIR=str(home / "bentoml" / "models" / name / version),
        MLOPS_PREDICTION_LOG_DIR=str(home / "profile-predictions"),
    )
    import serving_baseline

    from bentos import service as bento

    body = json.dumps(record).encode()
    whole = bento.PredictionService.to_asgi()
    async with whole.router.lifespan_context(whole):
        live = bento._LIVE["service"]
        apps = {
            "peer app": (serving_baseline.app, "/predict"),
            "platform app": (bento.api, "/predict"),
            "BentoML app": (whole, "/v1/predict"),
        }
        figures = await _time_apps(apps, body, requests)
        figures.update(_stages(live, record, requests))
        figures.update(_batch_stages(live, BATCH_ROWS, requests))
    return figures


def report(figures: dict[str, float]) -> list[str]:
    """The profile as printed lines."""
    stages = ("validate", "features", "model", "answer")
    batch = ("batch parse", "batch validate", "batch features", "batch model")
    inside = sum(figures[s] for s in stages)
    return [
        "one /predict request in process (CPU microseconds, medians of blocks; no sockets):",
        f"  peer FastAPI app                         {figures['peer app']:7.0f} us",
        f"  platform FastAPI app (/v1)               {figures['platform app']:7.0f} us",
        f"  BentoML's app around it                  {figures['BentoML app']:7.0f} us",
        f"  -> BentoML's layers add                  "
        f"{figures['BentoML app'] - figures['platform app']:7.0f} us",
        f"  -> platform app minus peer app           "
        f"{figures['platform app'] - figures['peer app']:7.0f} us",
        "  inside the platform endpoint: "
        + ", ".join(f"{s} {figures[s]:.0f} us" for s in stages)
        + f" (sum {inside:.0f} us)",
        f"a {BATCH_ROWS:,}-row batch inside its endpoint (CPU ms): "
        + ", ".join(f"{s.split()[1]} {figures[s] / 1e3:.2f}" for s in batch)
        + f" (sum {sum(figures[s] for s in batch) / 1e3:.2f} ms)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", required=True)
    parser.add_argument("--requests", type=int, default=3_000)
    args = parser.parse_args()
    figures = asyncio.run(profile(Path(args.home).resolve(), RECORD, args.requests))
    print(json.dumps(figures))
    for line in report(figures):
        print(line)


if __name__ == "__main__":
    main()
