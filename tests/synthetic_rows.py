"""Synthetic rows whose answer is known, for the training and candidate tests."""

import numpy as np

from mlops_assets.core.candidates import Rows
from mlops_assets.core.protocols import Folds, assign_folds, plan_for
from mlops_assets.core.training import TrainParams
from mlops_assets.spec import DatasetSpec

FAST = TrainParams(learning_rate=0.2, max_rounds=300, early_stopping_rounds=20)


def synthetic_spec(task: str = "regression", **training) -> DatasetSpec:
    """Three numbers and a category; the label's shape is up to the test."""
    return DatasetSpec.model_validate(
        {
            "name": "synthetic",
            "task": task,
            "columns": [
                {"name": "a", "dtype": "float"},
                {"name": "b", "dtype": "float"},
                {"name": "c", "dtype": "float"},
                {"name": "kind", "dtype": "category", "categories": ["x", "y", "z"]},
                {"name": "label", "dtype": "float", "role": "target"},
            ],
            "training": training,
        }
    )


def synthetic_rows(spec: DatasetSpec, label, rows: int = 600, seed: int = 0) -> Rows:
    rng = np.random.default_rng(seed)
    a, b, c = (rng.uniform(-3, 3, rows) for _ in range(3))
    kind = rng.integers(0, 3, rows).astype(np.float32)
    x = np.column_stack([a, b, c, kind]).astype(np.float32)
    y = label(a, b, c, kind, rng)
    return Rows(x, y.astype(np.float64), np.arange(rows))


def linear_label(a, b, c, kind, rng):
    return (
        3 * a
        - 2 * b
        + 0.5 * c
        + np.array([0.0, 2.0, -1.0])[kind.astype(int)]
        + rng.normal(0, 0.3, len(a))
    )


def nonlinear_label(a, b, c, kind, rng):
    return 4 * np.sign(a * b) + 3 * (np.abs(c) > 1.5) + rng.normal(0, 0.3, len(a))


def cv_plan(spec: DatasetSpec, rows: Rows):
    """The spec's validation plan for these rows and the fold of each row."""
    plan = plan_for(len(rows.y), spec.training, "spec.yaml")
    folds = Folds(assign_folds(rows.y, rows.groups, spec, plan))
    return plan, folds
