"""Local copies of trained models: the model file, its manifest and its evaluation rows.

The model file is XGBoost's own format or the linear model's JSON coefficients (no pickle).

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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_assets.core.families import MODEL_FILES, Model, load_model_file, save_model_file
from mlops_assets.core.storage import read_json, write_json_atomic
from mlops_assets.paths import PROJECT_ROOT, PlatformPaths
from mlops_assets.signing import sign_folder, state_keys, verify_folder
from mlops_assets.spec import DatasetSpec, Family

MANIFEST_FILE = "manifest.json"
SPEC_FILE = "dataset_spec.yaml"
EVALUATION_FILE = "evaluation.parquet"
STATISTICS_FILE = "feature_statistics.json"  # the reference of the model's drift checks


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
    validation_score: float
    trained_at: str
    family: str = Family.XGBOOST.value
    model_file: str = MODEL_FILES[Family.XGBOOST]
    evaluation: dict[str, Any] = field(default_factory=dict)  # protocol, folds, rows, why
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)  # family -> score, settings
    # The fill values of imputed columns, learned by the feature stage: the service fills a
    # missing field with exactly the value the training rows were filled with.
    imputation: dict[str, Any] = field(default_factory=dict)


def save_model(
    paths: PlatformPaths,
    model: Model,
    manifest: ModelManifest,
    spec: DatasetSpec,
    spec_path: Path,
    evaluation: pd.DataFrame,
    documents: dict[str, Any] | None = None,
) -> Path:
    """Write a model folder atomically (the `model` asset's metadata names it to what follows).

    The folder holds the model file, the manifest, the dataset spec it was trained with and
    the evaluation rows (fold, label and every candidate's and baseline's prediction), plus
    any further JSON `documents` (file name -> content) that must appear with it or not at all.
    """
    final = paths.model(manifest.model_id)
    staging = paths.models / f".{manifest.model_id}.{uuid.uuid4().hex}.tmp"
    staging.mkdir(parents=True)
    try:
        save_model_file(model, staging, spec)
        write_json_atomic(asdict(manifest), staging / MANIFEST_FILE)
        shutil.copyfile(spec_path, staging / SPEC_FILE)
        evaluation.to_parquet(staging / EVALUATION_FILE, index=False)
        for name, document in (documents or {}).items():
            write_json_atomic(document, staging / name)
        signed = [MODEL_FILES[Family(manifest.family)], MANIFEST_FILE, SPEC_FILE]
        sign_folder(staging, signed, state_keys(paths.root).private_key())
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def save_statistics(statistics_path: Path, model_folder: Path) -> None:
    """Keep the training statistics with the model, as the reference for its drift checks."""
    (model_folder / STATISTICS_FILE).write_text(statistics_path.read_text())


def load_manifest(paths: PlatformPaths, model_id: str) -> ModelManifest:
    """The manifest of a saved model (fields a newer or older platform wrote are tolerated)."""
    document = read_json(paths.model(model_id) / MANIFEST_FILE)
    known = {f.name for f in fields(ModelManifest)}
    return ModelManifest(**{k: v for k, v in document.items() if k in known})


def load_model(paths: PlatformPaths, model_id: str) -> Model:
    """The saved model of any family (XGBoost's format or JSON coefficients; no pickle)."""
    manifest = load_manifest(paths, model_id)
    return load_model_file(paths.model(model_id), manifest.family)


def load_verified_model(paths: PlatformPaths, model_id: str) -> Model:
    """`load_model` after checking the folder's signature (raises `ModelSignatureError`).

    For the paths that serve predictions: a model whose files changed since training is
    refused before any of its bytes are parsed.
    """
    verify_folder(paths.model(model_id), state_keys(paths.root).public_key())
    return load_model(paths, model_id)


def load_json(paths: PlatformPaths, model_id: str, name: str) -> Any:
    """A JSON document saved in a model's folder (see `save_model`'s `documents`)."""
    return read_json(paths.model(model_id) / name)


def load_evaluation(paths: PlatformPaths, model_id: str) -> pd.DataFrame:
    """The evaluation rows saved with a model."""
    return pd.read_parquet(paths.model(model_id) / EVALUATION_FILE)


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
