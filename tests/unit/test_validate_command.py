"""`mlops validate`: a spec's every problem, and a data sample judged by the cleaning rules.

It runs as a user types it, in its own process, which also shows what it imports: none of the
heavy libraries the pipeline needs, so the answer comes in about a second.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from mlops_assets.spec import DIABETES_SPEC

HEAVY = ("dagster", "feast", "mlflow", "bentoml", "xgboost", "sklearn")


def mlops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MLOPS_HOME": os.devnull + "-never-written"},
        check=False,
    )


@pytest.fixture
def diabetes_csv(tmp_path):
    """The 442-row diabetes table (read from scikit-learn's bundled copy) with three bad rows."""
    from mlops_assets.sources import SklearnSource

    frame = SklearnSource("diabetes").load().astype({"bmi": "object"})
    frame.loc[3, "bmi"] = "abc"
    frame.loc[5, "target"] = -4.0
    frame.loc[7, "age"] = None
    path = tmp_path / "diabetes.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_valid_spec_and_its_data(diabetes_csv):
    completed = mlops("validate", str(DIABETES_SPEC), "--data", str(diabetes_csv))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.splitlines() == [
        f"{DIABETES_SPEC}: spec 'diabetes' v1 is valid (regression, 11 columns)",
        "data: 442 rows checked",
        "  quarantine: 1 rows: column 'age' has missing values; allowed: dtype float, no nulls "
        "(set nullable: true, or impute: for a feature) (e.g. row 8: <NA>)",
        "  quarantine: 1 rows: column 'bmi' has values that do not read as float; allowed: dtype "
        "float, no nulls (set nullable: true, or impute: for a feature) (e.g. row 4: 'abc')",
        "  quarantine: 1 rows: column 'target' has values outside its range; allowed: dtype "
        "float, min 0, no nulls (set nullable: true, or impute: for a feature) "
        "(e.g. row 6: '-4.0')",
        "data: would be accepted: 439 rows clean, 3 quarantined",
    ]


def test_data_the_checks_would_refuse(tmp_path, diabetes_csv):
    frame = pd.read_csv(diabetes_csv).drop(columns=["s6"]).head(100)
    missing = tmp_path / "missing.csv"
    frame.to_csv(missing, index=False)
    completed = mlops("validate", str(DIABETES_SPEC), "--data", str(missing))
    assert completed.returncode == 1
    assert completed.stdout.splitlines()[2] == (
        "  problem: column 's6' (dtype float, no nulls (set nullable: true, or impute: for a "
        "feature)) is missing; the data has ['age', 'sex', 'bmi', 'bp', 's1', 's2', 's3', 's4', "
        "'s5', 'target']"
    )

    few = tmp_path / "few.csv"
    pd.read_csv(diabetes_csv).head(50).to_csv(few, index=False)
    completed = mlops("validate", str(DIABETES_SPEC), "--data", str(few))
    assert completed.returncode == 1
    problems = [line for line in completed.stdout.splitlines() if "problem:" in line]
    assert problems == ["  problem: row_count: 47 rows < minimum 200 (spec: quality.min_rows)"]
    # A sample of a longer file is not judged by its row count.
    completed = mlops("validate", str(DIABETES_SPEC), "--data", str(few), "--rows", "40")
    assert completed.returncode == 0
    assert "row_count" not in completed.stdout
    assert "data: 40 rows checked (a sample)" in completed.stdout


def test_every_problem_of_a_spec_with_its_field_and_allowed_values(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: Shop\ntask: forecasting\nrows: 3\ncolumns:\n"
        "  - {name: region, dtype: str}\n"
        "  - {name: sales, dtype: float, role: label, colour: red}\n"
        "training: {folds: 1}\n"
    )
    completed = mlops("validate", str(spec))
    assert completed.returncode == 2
    lines = completed.stdout.splitlines()
    assert lines[0] == f"{spec}: 7 problem(s) in the spec:"
    problems = "\n".join(lines[1:])
    for expected in (
        "  - name: String should match pattern '^[a-z][a-z0-9_]*$'",
        "  - task: Input should be ",
        "  - column 'region': dtype: Input should be 'int', 'float', 'category', 'string', "
        "'datetime' or 'bool'",
        "  - column 'sales': role: Input should be 'entity_key', 'event_timestamp', 'feature' "
        "or 'target'",
        "  - column 'sales': unknown field 'colour'; allowed fields: name, dtype, role,",
        "  - training.folds: Input should be greater than or equal to 2",
        "  - top level: unknown field 'rows'; allowed fields: name, version, description, task,",
    ):
        assert expected in problems, problems


def test_validate_does_not_import_the_heavy_libraries(diabetes_csv):
    script = (
        "import json, sys\n"
        "from mlops_assets.cli import main\n"
        f"code = main(['validate', {str(DIABETES_SPEC)!r}, '--data', {str(diabetes_csv)!r}])\n"
        f"print(json.dumps([code, sorted(m for m in {HEAVY!r} if m in sys.modules)]))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    code, imported = json.loads(completed.stdout.splitlines()[-1])
    assert code == 0
    assert imported == []
