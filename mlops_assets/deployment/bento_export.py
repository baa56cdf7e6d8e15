"""Exporting the champion into BentoML's model store and building the bento.

BentoML's store lives in the state folder (`$MLOPS_HOME/bentoml`). The exported model is a
plain folder (booster in XGBoost's format, dataset spec, manifest, registry facts), so the
service loads it without pickle; its tag names the registry version and run, so each champion
is exported once and the export is idempotent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_assets.core.storage import write_json_atomic
from mlops_assets.paths import PROJECT_ROOT, PlatformPaths
from mlops_assets.serving.predictor import write_bundle
from mlops_assets.serving.runtime import bentoml_home, export_pointer

BENTOFILE = PROJECT_ROOT / "bentos" / "bentofile.yaml"
BUILD_TIMEOUT_S = 600
BENTO_NAME = "mlops_predictions"  # as in bentos/bentofile.yaml


@dataclass(frozen=True)
class ExportedModel:
    """A champion in BentoML's store."""

    tag: str
    path: str
    created: bool


def model_tag(dataset: str, version: str, run_id: str) -> str:
    """`<dataset>:v<registry version>-<run id prefix>`: never `latest`."""
    return f"{dataset}:v{version}-{run_id[:12]}"


def export_model(
    paths: PlatformPaths,
    tag: str,
    booster_path: Path,
    spec_path: Path,
    manifest: dict[str, Any],
    info: dict[str, Any],
    labels: dict[str, str],
) -> ExportedModel:
    """Create the BentoML model for `tag` unless it exists, and record it as the export."""
    import bentoml
    from bentoml._internal.models.model import ModelStore  # the public API takes one
    from bentoml.exceptions import NotFound

    store = ModelStore(str(bentoml_home(paths) / "models"))
    try:
        existing = bentoml.models.get(tag, _model_store=store)
        exported = ExportedModel(str(existing.tag), str(existing.path), created=False)
    except NotFound:
        with bentoml.models.create(
            tag, labels=labels, metadata=_flat(info), _model_store=store
        ) as ref:
            write_bundle(Path(ref.path), booster_path, spec_path, manifest, info)
        created = bentoml.models.get(tag, _model_store=store)
        exported = ExportedModel(str(created.tag), str(created.path), created=True)
    write_json_atomic({"model_tag": exported.tag, **info}, export_pointer(paths))
    return exported


def build_bento(paths: PlatformPaths, tag: str) -> str:
    """`bentoml build` of `bentos/`, pinned to the model `tag`; returns the bento tag."""
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home(paths)), "BENTOML_DO_NOT_TRACK": "true"}
    version = tag.split(":", 1)[1]
    existing = bentoml_home(paths) / "bentos" / BENTO_NAME / version
    if (existing / "bento.yaml").exists():
        return f"{BENTO_NAME}:{version}"  # this champion's bento is built already
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "build",
        str(PROJECT_ROOT),
        "-f",
        str(BENTOFILE),
        "--arg",
        f"model_tag={tag}",
        "--version",
        version,
        "-o",
        "tag",
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=BUILD_TIMEOUT_S, check=False
    )
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip()[-2000:]
        raise RuntimeError(f"bentoml build failed: {detail}")
    lines = [line.strip() for line in completed.stdout.splitlines() if line.strip()]
    return lines[-1].removeprefix("__tag__:")


def _flat(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if isinstance(v, str | int | float | bool)}
