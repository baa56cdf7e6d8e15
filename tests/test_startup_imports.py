"""`mlops --help` imports only what it needs: no heavy library, so it answers within a second.

Run in a fresh interpreter: the test process itself has imported everything already.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("feast", "mlflow", "bentoml", "xgboost", "sklearn", "dagster", "pandas")
PROBE = f"""
import sys
from mlops_assets.cli import main
try:
    main(["--help"])
except SystemExit as exit:
    assert exit.code == 0, exit.code
print("heavy:" + ",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_mlops_help_imports_no_heavy_library():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert "usage: mlops" in done.stdout
    [heavy] = [line for line in done.stdout.splitlines() if line.startswith("heavy:")]
    assert heavy == "heavy:", f"`mlops --help` imported {heavy.removeprefix('heavy:')}"


def test_loading_a_model_file_module_does_not_import_xgboost():
    """`core.families` (the service's and the code location's model loader) loads XGBoost late."""
    probe = "import sys, mlops_assets.core.families; print('xgboost' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False"


def test_loading_the_code_location_imports_no_training_or_serving_library():
    """Dagster's code server loads this module before it can answer: it must stay small."""
    heavy = ("feast", "mlflow", "bentoml", "xgboost", "sklearn")
    probe = (
        "import sys, mlops_assets.definitions\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.strip().splitlines()[-1:] in ([], [""]), done.stdout
