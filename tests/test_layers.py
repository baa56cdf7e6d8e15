"""The import-linter contracts of pyproject.toml hold, and each of them can break.

The contracts write the layering down (docs/concepts/layers.md): entry points on top, stages in
the middle that never import each other's assets, shared modules below them, then core and the
spec; no cycles anywhere; no Dagster or MLflow in the prediction service. Every import counts,
one inside a function too. Each contract is also shown to fail on a copy of the package with one
planted import, so a contract that silently matches nothing cannot pass for a kept one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the package under `root`, with the contracts of its pyproject.toml."""
    selected = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *selected, "pyproject.toml"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_contract_is_kept():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken." in result.stdout


PLANTED = [
    # (contract id, module file, import appended to it, what the report names)
    (
        "layers",
        "core/statistics.py",
        "def _late():\n    from mlops_assets.model_registry import model_store\n",
        "mlops_assets.core.statistics -> mlops_assets.model_registry.model_store",
    ),
    (
        "assets",
        "monitoring/assets.py",
        "from mlops_assets.training.assets import model as _model\n",
        "mlops_assets.monitoring.assets -> mlops_assets.training.assets",
    ),
    (
        "acyclic",
        "ingestion/partitions.py",
        "from mlops_assets.features import inputs as _inputs\n",
        ".ingestion -> .features (1 import)",
    ),
    (
        "acyclic",
        "core/coercion.py",
        "def _late():\n    from mlops_assets.core import cleaning\n",
        ".coercion -> .cleaning (1 import)",
    ),
    (
        "serving",
        "serving/schema.py",
        "import dagster as _dagster\n",
        "mlops_assets.serving.schema -> dagster",
    ),
]


@pytest.mark.parametrize(("contract", "module", "planted", "named"), PLANTED)
def test_a_planted_import_breaks_its_contract(tmp_path, contract, module, planted, named):
    shutil.copytree(
        ROOT / "mlops_assets",
        tmp_path / "mlops_assets",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "mlops_assets" / module).open("a") as file:
        file.write("\n" + planted)
    result = _lint(tmp_path, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 0 kept, 1 broken." in result.stdout
    assert named in result.stdout
