"""The process of one site: its rows in, a share of one federated model out.

Runs in its own process (spawned by the coordinator) with the site's location and nothing of
any other site. Everything it writes to the run folder is aggregate: its status, its test
metrics and sums for the new model, the constant baseline and the current champion (no rows),
the joint feature statistics, a hash of its rows, and, from the first site only, the model
every site holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from xgboost import collective

from mlops_assets.core.evaluation import compute_metrics
from mlops_assets.core.families import load_model_file
from mlops_assets.core.features import engineer, to_matrix
from mlops_assets.core.splits import entity_split
from mlops_assets.core.storage import content_hash
from mlops_assets.core.training import TrainParams, booster_bytes, model_dmatrix, predict
from mlops_assets.federated.aggregates import (
    global_feature_statistics,
    global_imputation,
    global_sum,
)
from mlops_assets.federated.site_data import load_site_rows, site_files
from mlops_assets.spec import DatasetSpec

MODEL_FILE = "model.ubj"
ROUND_REPORT_EVERY = 50


@dataclass(frozen=True)
class ChampionModel:
    """The serving model every site scores on its own test rows, beside the new one.

    A saved model folder (model file and manifest facts), not data: each site fills, engineers
    and orders its rows the way this model was trained, then predicts.
    """

    folder: str
    family: str
    features: list[str]
    imputation: dict[str, Any]
    run_id: str
    version: str


@dataclass(frozen=True)
class SiteTask:
    """What one site's process is given: its own location, the server, the shared settings."""

    site: str
    rank: int
    world_size: int
    location: str
    server: str  # host:port of the federated server
    folder: str  # the run folder, where status and aggregate results go
    spec: DatasetSpec
    params: TrainParams
    tls: dict[str, str] | None = None  # ca_cert, client_cert, client_key
    timeout_seconds: int = 600
    champion: ChampionModel | None = None

    def communicator(self) -> dict[str, Any]:
        """XGBoost's communicator arguments for this site."""
        args: dict[str, Any] = {
            "dmlc_communicator": "federated",
            "federated_server_address": self.server,
            "federated_world_size": self.world_size,
            "federated_rank": self.rank,
            "dmlc_timeout": self.timeout_seconds,
        }
        if self.tls:
            args["federated_server_cert_path"] = self.tls["ca_cert"]
            args["federated_client_cert_path"] = self.tls["client_cert"]
            args["federated_client_key_path"] = self.tls["client_key"]
        return args


def status_path(folder: Path, site: str) -> Path:
    """Where a site reports what it is doing (one line, rewritten)."""
    return folder / f"site-{site}.status"


def summary_path(folder: Path, site: str) -> Path:
    """Where a site leaves its aggregate results."""
    return folder / f"site-{site}.json"


def pid_path(folder: Path, site: str) -> Path:
    """Where a site writes its process id, so an operator (or a test) can find it."""
    return folder / f"site-{site}.pid"


def error_path(folder: Path, site: str) -> Path:
    """Where a site leaves the reason it stopped."""
    return folder / f"site-{site}.error"


def run_site(task: SiteTask) -> None:
    """Process entry point: train this site's share; on failure leave the reason and exit 1.

    A watchdog thread bounds every wait: XGBoost blocks in native code while a peer or the
    server is gone, so when nothing has moved for `timeout_seconds` the site writes why, with
    what it was doing, and ends its own process.
    """
    folder = Path(task.folder)
    pid_path(folder, task.site).write_text(str(os.getpid()))
    _beat()  # the clock starts now, not when a fork server imported this module
    threading.Thread(target=_watchdog, args=(task,), name="site-watchdog", daemon=True).start()
    try:
        _report(task, "reading its rows")
        frame = load_site_rows(task.spec, task.site, task.location)
        _report(task, f"connecting to the federated server at {task.server}")
        with collective.CommunicatorContext(**task.communicator()):
            _report(task, "connected: agreeing on imputation with the other sites")
            summary = _train(task, frame)
        summary_path(folder, task.site).write_text(json.dumps(summary, indent=2))
        _report(task, "done")
    except BaseException as exc:  # any failure, even an interrupt, must reach the coordinator
        doing = status_path(folder, task.site).read_text()
        message = _failure_message(task, exc, doing)
        error_path(folder, task.site).write_text(message + "\n\n" + traceback.format_exc())
        status_path(folder, task.site).write_text(f"stopped while {doing}")
        raise SystemExit(1) from exc


def _failure_message(task: SiteTask, exc: BaseException, doing: str) -> str:
    """One sentence naming the site; a lost server or peer said as such, not as a C++ trace."""
    text = str(exc)
    if text.startswith(f"site '{task.site}'"):
        return text
    if isinstance(exc, xgb.core.XGBoostError) and "federated" in text:
        # XGBoost's message is a stack of "- [file.cc:line|time]: what" lines; keep the whats.
        said = "; ".join(
            line.split("]: ", 1)[1] for line in text.splitlines() if line.startswith("- [")
        )
        return (
            f"site '{task.site}': the federated server at {task.server} or another site is "
            f"gone or refused this site while {doing} ({said or text.splitlines()[0]}); stopped"
        )
    return f"site '{task.site}': {text}"


def _train(task: SiteTask, frame) -> dict[str, Any]:
    spec, params = task.spec, task.params
    imputation = global_imputation(frame, spec)
    features = engineer(frame, spec, imputation)
    x = to_matrix(features, spec)
    y = frame[spec.target].to_numpy(dtype=np.float64)
    split = entity_split(frame[spec.entity_key].to_numpy(), spec.training.split.as_tuple())
    parts = {name: np.flatnonzero(split == name) for name in ("train", "validation", "test")}
    statistics = global_feature_statistics(features.iloc[parts["train"]], spec)
    _report(task, f"training on {len(parts['train']):,} rows")
    booster = xgb.train(
        params.booster_params(spec.task),
        model_dmatrix(x[parts["train"]], y[parts["train"]], spec),
        num_boost_round=params.max_rounds,
        evals=[(model_dmatrix(x[parts["validation"]], y[parts["validation"]], spec), "validation")],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
        callbacks=[_Progress(task)],
    )
    best = int(booster.best_iteration)
    booster = booster[: best + 1]
    raw = booster_bytes(booster)
    if task.rank == 0:
        (Path(task.folder) / MODEL_FILE).write_bytes(raw)
    test = parts["test"]
    scored = {
        "": predict(booster, x[test]),
        "baseline_": _baseline(y[parts["train"]], len(test)),
    }
    if task.champion is not None:
        scored["champion_"] = _champion_predictions(task, frame.iloc[test])
    return {
        "site": task.site,
        "files": [str(p) for p in site_files(task.location)],
        "rows": {name: len(rows) for name, rows in parts.items()},
        "data_hash": content_hash(frame),
        "best_iteration": best,
        "model_sha256": hashlib.sha256(raw).hexdigest(),
        "imputation": imputation,
        "statistics": statistics,
        **{
            f"{prefix}metrics": compute_metrics(y[test], values, spec.task, spec.threshold)
            for prefix, values in scored.items()
        },
        "champion": task.champion.run_id if task.champion else None,
        "sums": _sums(y[test], scored),
        "params": params.model_dump(),
    }


def _champion_predictions(task: SiteTask, rows) -> np.ndarray:
    """The champion on this site's test rows, filled and ordered as the champion was trained."""
    champion = task.champion
    assert champion is not None
    features = engineer(rows, task.spec, champion.imputation)
    missing = [f for f in champion.features if f not in features.columns]
    if missing:
        raise ValueError(
            f"site '{task.site}': champion v{champion.version} needs features {missing} that "
            "this spec no longer produces; it cannot be compared on the same rows"
        )
    model = load_model_file(Path(champion.folder), champion.family, threads=task.params.threads)
    return model.predict(to_matrix(features, task.spec, columns=champion.features))


def _baseline(y_train: np.ndarray, rows: int) -> np.ndarray:
    """The constant predictor: the mean (or positive share) of ALL sites' training labels."""
    total, count = global_sum(np.array([y_train.sum(), y_train.size]))
    return np.full(rows, total / count)


def _sums(y: np.ndarray, scored: dict[str, np.ndarray]) -> dict[str, float]:
    """What pooled metrics need from a site: sums over its test rows, no row itself.

    One set of error sums per scored model, its keys prefixed as its metrics are ("" for the
    new model, "baseline_", "champion_").
    """
    sums = {"n": float(y.size), "y": float(y.sum()), "y2": float((y**2).sum())}
    for prefix, predicted in scored.items():
        clipped = np.clip(predicted, 1e-7, 1 - 1e-7)
        sums[f"{prefix}squared_error"] = float(((y - predicted) ** 2).sum())
        sums[f"{prefix}absolute_error"] = float(np.abs(y - predicted).sum())
        sums[f"{prefix}log_loss"] = float(
            -(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)).sum()
        )
    return sums


def _report(task: SiteTask, message: str) -> None:
    _beat()
    status_path(Path(task.folder), task.site).write_text(message)


_last_progress = [time.monotonic()]  # this site process's last sign of progress


def _beat() -> None:
    _last_progress[0] = time.monotonic()


def _watchdog(task: SiteTask) -> None:
    """End this process once nothing has moved for `timeout_seconds`, saying what was awaited."""
    timeout = task.timeout_seconds
    while True:
        silent = time.monotonic() - _last_progress[0]
        if silent > timeout:
            break
        time.sleep(min(1.0, timeout - silent + 0.05))
    folder = Path(task.folder)
    doing = status_path(folder, task.site).read_text()
    message = (
        f"site '{task.site}': no progress for {timeout} s (the timeout) while {doing}: the "
        f"federated server at {task.server} or another site is gone or refused this site; "
        "stopped"
    )
    error_path(folder, task.site).write_text(message + "\n")
    status_path(folder, task.site).write_text(f"stopped: no progress for {timeout} s while {doing}")
    os._exit(1)  # the main thread is blocked inside XGBoost; nothing else would end it


class _Progress(xgb.callback.TrainingCallback):
    """Tell the coordinator how far boosting is, every 50 rounds."""

    def __init__(self, task: SiteTask) -> None:
        super().__init__()
        self.task = task

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        _beat()  # every round is progress; the status file is rewritten every 50
        if epoch % ROUND_REPORT_EVERY == 0:
            _report(self.task, f"boosting round {epoch:,}")
        return False
