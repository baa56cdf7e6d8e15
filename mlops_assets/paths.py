"""Where every piece of platform state lives: one folder, `MLOPS_HOME`.

Deleting the folder is a clean start; pointing `MLOPS_HOME` elsewhere isolates a test. The
environment is read when a path is asked for, never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.profile import active_profile, write_dagster_yaml

HOME_ENV = "MLOPS_HOME"
DEFAULT_HOME_NAME = ".mlops_home"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def resolve_home(explicit: str | Path | None = None) -> Path:
    """Explicit path, else `$MLOPS_HOME`, else `.mlops_home` in the project checkout."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    from_env = os.environ.get(HOME_ENV)
    if from_env:
        return Path(from_env).expanduser().resolve()
    base = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else Path.cwd()
    return (base / DEFAULT_HOME_NAME).resolve()


def validate_batch_key(batch: str) -> str:
    """The batch key, checked (`sources.landing`; imported here only when a path needs it).

    Importing the sources package brings pandas; naming the state folder's parts must not,
    or every `mlops` command, `--help` included, pays for it.
    """
    from mlops_assets.sources.landing import validate_batch_key as validate

    return validate(batch)


@dataclass(frozen=True)
class PlatformPaths:
    """Named locations under one `MLOPS_HOME`."""

    root: Path

    @property
    def dagster_home(self) -> Path:
        """The Dagster instance folder (`DAGSTER_HOME`)."""
        return self.root / "dagster"

    @property
    def saved_spec(self) -> Path:
        """The dataset spec this state folder was set up with (`mlops run --spec`)."""
        return self.root / "dataset_spec.yaml"

    @property
    def landing(self) -> Path:
        """Where new batches arrive as files."""
        return self.root / "landing"

    @property
    def landing_processed(self) -> Path:
        """Landed files that were ingested."""
        return self.landing / "processed"

    @property
    def landing_failed(self) -> Path:
        """Landed files whose ingestion failed."""
        return self.landing / "failed"

    @property
    def data(self) -> Path:
        """Parquet tables of the ingestion stage."""
        return self.root / "data"

    def raw(self, batch: str) -> Path:
        """The raw table of one batch."""
        return self.data / "raw" / f"{validate_batch_key(batch)}.parquet"

    def cleaned(self, batch: str) -> Path:
        """The cleaned table of one batch."""
        return self.data / "cleaned" / f"{validate_batch_key(batch)}.parquet"

    def cleaned_dir(self) -> Path:
        """Folder of all cleaned batches (what the feature stage reads)."""
        return self.data / "cleaned"

    def quarantine(self, batch: str, *, rejected: bool = False) -> Path:
        """Quarantined rows of one batch; `rejected` for an attempt the checks blocked."""
        suffix = ".rejected" if rejected else ""
        return self.data / "quarantine" / f"{validate_batch_key(batch)}{suffix}.parquet"

    def manifest(self, batch: str) -> Path:
        """Small JSON record of a batch: source, first ingestion time, content hash."""
        return self.data / "batches" / f"{validate_batch_key(batch)}.json"

    def staging(self, batch: str, run: str) -> Path:
        """Where one run writes a batch's new set before it is published."""
        return self.data / "staging" / validate_batch_key(batch) / run

    @property
    def publish_journals(self) -> Path:
        """Journals of publications in progress (what to finish after a crash)."""
        return self.data / "publishing"

    @property
    def batch_manifests(self) -> Path:
        """Folder of the batch manifests (one JSON record per batch)."""
        return self.data / "batches"

    @property
    def feast(self) -> Path:
        """Feast's file registry, SQLite online store and offline Parquet files (embedded)."""
        return self.root / "feast"

    @property
    def feast_data(self) -> Path:
        """The offline feature tables Feast's file source reads."""
        return self.feast / "data"

    @property
    def online_state(self) -> Path:
        """The record of what the online store holds (see `features/online_state.py`)."""
        return self.feast / "online_state"

    @property
    def feast_registry(self) -> Path:
        """Feast's file registry (embedded profile); absent until `feast_registry` runs."""
        return self.feast / "registry.db"

    @property
    def training(self) -> Path:
        """The point-in-time training set and its reference statistics."""
        return self.root / "training"

    @property
    def training_set(self) -> Path:
        """The training set: features joined to labels, with its split column."""
        return self.training / "training_set.parquet"

    @property
    def feature_statistics(self) -> Path:
        """Reference statistics (and fill values) of the current training set."""
        return self.training / "feature_statistics.json"

    @property
    def federated_run(self) -> Path:
        """The last federated training's folder: site status, aggregates and the model."""
        return self.training / "federated_run"

    @property
    def models(self) -> Path:
        """Local copies of trained models, one folder per model id."""
        return self.root / "models"

    def model(self, model_id: str) -> Path:
        """One trained model's folder: model file, manifest, spec, evaluation rows."""
        return self.models / model_id

    def model_report(self, model_id: str) -> Path:
        """One model's validation report: Markdown, plots and the decision."""
        return self.model(model_id) / "report"

    @property
    def mlflow(self) -> Path:
        """The embedded MLflow tracking store and registry."""
        return self.root / "mlflow"

    @property
    def mlflow_db(self) -> Path:
        """The embedded MLflow SQLite database."""
        return self.mlflow / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        """Where embedded MLflow experiments keep their artifacts."""
        return self.mlflow / "artifacts"

    @property
    def deployment(self) -> Path:
        """Promotion history, the promotion lock and the champion and bento pointers."""
        return self.root / "deployment"

    @property
    def promotion_history(self) -> Path:
        """Append-only JSON lines: every promotion, kept champion and rollback."""
        return self.deployment / "promotions.jsonl"

    @property
    def champion_pointer(self) -> Path:
        """The champion's last recorded move (follows the registry's alias)."""
        return self.deployment / "champion.json"

    @property
    def promotion_lock(self) -> Path:
        """The file lock promotions take on one machine (embedded profile)."""
        return self.deployment / ".promotion.lock"

    @property
    def bento_pointer(self) -> Path:
        """The BentoML model tag of the exported champion."""
        return self.deployment / "bento.json"

    @property
    def rollout(self) -> Path:
        """How the service splits traffic between champion and challenger (`rollout.py`)."""
        return self.deployment / "rollout.json"

    @property
    def serving_status(self) -> Path:
        """One status file per running service worker (`serving/worker_status.py`)."""
        return self.deployment / "serving"

    @property
    def bentoml_home(self) -> Path:
        """BentoML's model and bento store (`BENTOML_HOME`)."""
        return self.root / "bentoml"

    @property
    def predictions(self) -> Path:
        """The service's prediction log (JSON lines), unless `$MLOPS_PREDICTION_LOG_DIR` says."""
        return self.root / "predictions"

    @property
    def monitoring(self) -> Path:
        """Drift reports and the log of failed runs."""
        return self.root / "monitoring"

    @property
    def drift_reports(self) -> Path:
        """Drift reports: Markdown and plot per batch."""
        return self.monitoring / "reports"

    @property
    def failures(self) -> Path:
        """One JSON line per failed run (the run-failure sensor writes it)."""
        return self.monitoring / "failures.jsonl"

    @property
    def scoring(self) -> Path:
        """Batch scoring: files to score land here, predictions and rejects are kept here."""
        return self.root / "scoring"

    @property
    def scoring_landing(self) -> Path:
        """Where a file of unlabelled rows is dropped to be scored (`<batch>.csv|parquet`)."""
        return self.scoring / "landing"

    def scored(self, batch: str) -> Path:
        """The scored rows of one scoring batch, each with its prediction and model version."""
        return self.scoring / "predictions" / f"{validate_batch_key(batch)}.parquet"

    def score_rejected(self, batch: str) -> Path:
        """The rows of one scoring batch that could not be scored, each with its reasons."""
        return self.scoring / "rejected" / f"{validate_batch_key(batch)}.parquet"

    def ensure_dagster_home(self) -> Path:
        """Create the Dagster instance folder with the active profile's `dagster.yaml`."""
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        write_dagster_yaml(self.dagster_home, active_profile())
        return self.dagster_home
