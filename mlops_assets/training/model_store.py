"""Local copies of trained models: the booster in XGBoost's format plus a manifest.

The MLflow registry is the source of truth for which model is champion; the local copy under
`MLOPS_HOME/models/<model id>/` lets the report, promotion and serving stages load a model and
its lineage without a round trip to the tracking server. Written to a temporary folder and
renamed, so a model folder is either complete or absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import xgboost as xgb

from mlops_assets.core.storage import read_json, write_json_atomic
from mlops_assets.paths import PROJECT_ROOT, PlatformPaths

BOOSTER_FILE = "model.ubj"
MANIFEST_FILE = "manifest.json"
SPEC_FILE = "dataset_spec.yaml"


@dataclass(frozen=True)
class ModelManifest:
    """Lineage and facts of one trained model."""

    model_id: str
    mlflow_run_id: str
    mlflow_model_uri: str
    dataset: str
    spec_version: int
    task: str
    target: str
    features: list[str]
    feature_types: list[str]
    categories: dict[str, list[Any]]
    feature_service: str
    data_hash: str
    code_version: str
    params: dict[str, Any]
    best_iteration: int
    validation_score: float
    baseline_test_metrics: dict[str, dict[str, float]]
    trained_at: str
    # The fill values of imputed columns, learned by the feature stage: the service fills a
    # missing field with exactly the value the training rows were filled with.
    imputation: dict[str, Any] = field(default_factory=dict)


def models_dir(paths: PlatformPaths) -> Path:
    """Folder of all local model copies."""
    return paths.root / "models"


def save_model(
    paths: PlatformPaths, booster: xgb.Booster, manifest: ModelManifest, spec_path: Path
) -> Path:
    """Write a model folder atomically and mark it the candidate.

    The folder holds the booster, the manifest and the dataset spec it was trained with.
    """
    final = models_dir(paths) / manifest.model_id
    staging = models_dir(paths) / f".{manifest.model_id}.{uuid.uuid4().hex}.tmp"
    staging.mkdir(parents=True)
    try:
        booster.save_model(str(staging / BOOSTER_FILE))
        write_json_atomic(asdict(manifest), staging / MANIFEST_FILE)
        shutil.copyfile(spec_path, staging / SPEC_FILE)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_json_atomic({"model_id": manifest.model_id}, models_dir(paths) / "candidate.json")
    return final


def load_manifest(paths: PlatformPaths, model_id: str) -> ModelManifest:
    """The manifest of a saved model."""
    return ModelManifest(**read_json(models_dir(paths) / model_id / MANIFEST_FILE))


def load_booster(paths: PlatformPaths, model_id: str) -> xgb.Booster:
    """The saved booster (XGBoost's own format; no pickle)."""
    booster = xgb.Booster()
    booster.load_model(str(models_dir(paths) / model_id / BOOSTER_FILE))
    return booster


def candidate_id(paths: PlatformPaths) -> str:
    """The id of the most recently trained model."""
    pointer = models_dir(paths) / "candidate.json"
    if not pointer.exists():
        raise FileNotFoundError(
            f"no trained model yet ({pointer} missing): materialize model first"
        )
    return str(read_json(pointer)["model_id"])


def code_version() -> str:
    """The checkout's git commit (`+dirty` with local changes), else the package version."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        return f"{commit}+dirty" if dirty else commit
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"mlops-assets {version('mlops-assets')}"
        except PackageNotFoundError:
            return "unknown"
