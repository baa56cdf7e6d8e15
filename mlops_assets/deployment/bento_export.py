"""Exporting the champion into BentoML's model store and building the bento.

BentoML's store lives in the state folder (`$MLOPS_HOME/bentoml`). The exported model is a
plain folder (the model file: XGBoost's format or JSON coefficients; dataset spec, manifest,
registry facts), so the
service loads it without pickle; its tag names the registry version and run, so each champion
is exported once and the export is idempotent.

`bento.json` names the exported champion for `mlops serve`. It follows the registry's alias,
like `champion.json`: `reconcile_export` exports the alias's version whenever the file names
another (a run killed between promotion and export), under the promotion lock.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops_assets.core.storage import read_json, write_json_atomic
from mlops_assets.crash_points import crash_point
from mlops_assets.model_registry.champion import ChampionInfo, ChampionRegistry
from mlops_assets.model_registry.model_store import SPEC_FILE, load_manifest
from mlops_assets.model_registry.state_setup import setup_lock
from mlops_assets.paths import PROJECT_ROOT, PlatformPaths
from mlops_assets.serving.predictor import write_bundle
from mlops_assets.signing import ModelSignatureError, state_keys, verify_folder

BENTOFILE = PROJECT_ROOT / "bentos" / "bentofile.yaml"
BUILD_TIMEOUT_S = 600
BENTO_NAME = "mlops_predictions"  # as in bentos/bentofile.yaml


@dataclass(frozen=True)
class ExportedModel:
    """A champion in BentoML's store."""

    tag: str
    path: str
    created: bool


def reconcile_export(
    registry: ChampionRegistry, paths: PlatformPaths, spec_path: Path, *, always: bool = False
) -> tuple[ChampionInfo | None, ExportedModel | None]:
    """The champion, with history, `champion.json` and `bento.json` all following the alias.

    The export runs when `bento.json` names another model, or `always`; else it is None.
    `spec_path` is used only for a model saved without the spec it was trained with.
    """
    with registry.locked():
        champion = registry.reconcile_locked()
        if champion is None or (not always and export_names(paths, champion)):
            return champion, None
        return champion, export_champion(registry, champion, paths, spec_path)


def export_champion(
    registry: ChampionRegistry,
    champion: ChampionInfo,
    paths: PlatformPaths,
    spec_path: Path,
    *,
    pointer: bool = True,
) -> ExportedModel:
    """Export `champion` into BentoML's store (once) and point `bento.json` at it.

    With `pointer=False` the version is only exported (a challenger staged for shadow or
    canary serving, which the service loads by tag from the rollout file), and `bento.json`
    keeps naming the champion.
    """
    manifest = load_manifest(paths, champion.run_id)
    promoted = registry.promotion_of(champion.version)
    info = {
        "model_name": registry.name,
        "model_version": champion.version,
        "family": manifest.family,
        "mlflow_run_id": champion.run_id,
        "data_hash": manifest.data_hash,
        "feature_service": manifest.feature_service,
        "code_version": manifest.code_version,
        "promoted_at": promoted.get("at", ""),
        "metrics": promoted.get("metrics", {}),
    }
    labels = {
        "mlflow_version": champion.version,
        "data_hash": manifest.data_hash[:16],
        "feature_service": manifest.feature_service,
    }
    folder = paths.model(champion.run_id)
    try:  # only the bytes that were trained and judged are exported
        verify_folder(folder, state_keys(paths.root).public_key())
    except ModelSignatureError as error:
        raise ModelSignatureError(f"not exporting v{champion.version}: {error}") from None
    trained_with = folder / SPEC_FILE  # the spec this model was trained with, not today's
    return export_model(
        paths,
        model_tag(registry.name, champion.version, champion.run_id),
        folder / manifest.model_file,
        trained_with if trained_with.exists() else spec_path,
        asdict(manifest),
        info,
        labels,
        pointer=pointer,
    )


def export_names(paths: PlatformPaths, champion: ChampionInfo) -> bool:
    """Whether `bento.json` names this champion (False when it is missing or unreadable)."""
    try:
        pointer = read_json(paths.bento_pointer)
    except (OSError, ValueError):
        return False
    return str(pointer.get("model_version")) == champion.version and pointer.get(
        "mlflow_run_id"
    ) == (champion.run_id)


def model_tag(dataset: str, version: str, run_id: str) -> str:
    """`<dataset>:v<registry version>-<run id prefix>`: never `latest`."""
    return f"{dataset}:v{version}-{run_id[:12]}"


def export_model(
    paths: PlatformPaths,
    tag: str,
    model_path: Path,
    spec_path: Path,
    manifest: dict[str, Any],
    info: dict[str, Any],
    labels: dict[str, str],
    *,
    pointer: bool = True,
) -> ExportedModel:
    """Create the BentoML model for `tag` unless it exists; `pointer`: record it as the export."""
    import bentoml
    from bentoml._internal.models.model import ModelStore  # the public API takes one
    from bentoml.exceptions import NotFound

    store = ModelStore(str(paths.bentoml_home / "models"))
    try:
        existing = bentoml.models.get(tag, _model_store=store)
        exported = ExportedModel(str(existing.tag), str(existing.path), created=False)
    except NotFound:
        with bentoml.models.create(
            tag, labels=labels, metadata=_flat(info), _model_store=store
        ) as ref:
            key = state_keys(paths.root).private_key()
            write_bundle(Path(ref.path), model_path, spec_path, manifest, info, key)
        created = bentoml.models.get(tag, _model_store=store)
        exported = ExportedModel(str(created.tag), str(created.path), created=True)
    if not pointer:
        return exported
    crash_point("export:before_pointer")
    write_json_atomic({"model_tag": exported.tag, **info}, paths.bento_pointer)
    return exported


@dataclass(frozen=True)
class BuiltBento:
    """The bento serving a champion, and whether this call had to build it."""

    tag: str
    built: bool


def build_bento(paths: PlatformPaths, tag: str) -> BuiltBento:
    """`bentoml build` of `bentos/`, pinned to the model `tag`, unless already built.

    The bento's version is the champion's plus a hash of everything the build packs (the
    bentofile and the files it includes), so the same champion with the same code is built
    once, and a change of either builds a new bento.
    """
    version = f"{tag.split(':', 1)[1]}-{build_inputs_hash()[:8]}"
    # Two runs that export the same champion build the same version: one builds, one waits.
    with setup_lock(paths, "bentoml"):
        existing = paths.bentoml_home / "bentos" / BENTO_NAME / version
        if (existing / "bento.yaml").exists():
            return BuiltBento(f"{BENTO_NAME}:{version}", built=False)
        return _build(paths, tag, version)


def _build(paths: PlatformPaths, tag: str, version: str) -> BuiltBento:
    env = {**os.environ, "BENTOML_HOME": str(paths.bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
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
    return BuiltBento(lines[-1].removeprefix("__tag__:"), built=True)


def build_inputs_hash(bentofile: Path = BENTOFILE, root: Path = PROJECT_ROOT) -> str:
    """SHA-256 of the bentofile and of every file its `include` patterns pack, by path."""
    import yaml

    config = yaml.safe_load(bentofile.read_text())
    excluded = {p for pattern in config.get("exclude", []) for p in root.glob(pattern)}
    files = {
        path
        for pattern in config.get("include", [])
        for path in root.glob(pattern)
        if path.is_file() and "__pycache__" not in path.parts and path not in excluded
    }
    digest = hashlib.sha256(bentofile.read_bytes())
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _flat(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if isinstance(v, str | int | float | bool)}
