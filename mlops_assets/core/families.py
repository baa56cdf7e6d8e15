"""The model families as stored and served: one file each, loaded without pickle.

XGBoost keeps its own binary JSON format; the linear model is a JSON document of coefficients
(see `linear_model.py`). Both answer `predict(matrix)` on the same model matrix, so training,
the report and the service call one method whatever family won.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Protocol as TypingProtocol

import numpy as np

from mlops_assets.core.linear_model import LinearModel, SoftmaxModel, linear_from_dict
from mlops_assets.spec import DatasetSpec, Family

if TYPE_CHECKING:  # XGBoost takes seconds to import: only loading a booster needs it
    import xgboost as xgb

MODEL_FILES = {Family.XGBOOST: "model.ubj", Family.LINEAR: "linear_model.json"}


class Model(TypingProtocol):
    """What every family offers the platform."""

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Regression values, positive-class probabilities or an (n, k) matrix, float64."""
        ...

    def importance(self) -> dict[str, float]:
        """A non-negative importance per feature, for the report's plot."""
        ...


@dataclass(frozen=True)
class BoosterModel:
    """An XGBoost booster, cut to the trees that are served."""

    booster: xgb.Booster

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """`inplace_predict` as float64 (our code owns the column order).

        A multiclass booster's (n, k) probabilities are renormalised in float64, so each row
        sums to 1 to the last bit rather than to XGBoost's float32 rounding.
        """
        predicted = np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64)
        if predicted.ndim == 2:
            predicted /= predicted.sum(axis=1, keepdims=True)
        return predicted

    def importance(self) -> dict[str, float]:
        """Total gain per feature."""
        return {
            k: float(v) for k, v in self.booster.get_score(importance_type="total_gain").items()
        }


def family_of(model: Model) -> Family:
    """The family a model object belongs to."""
    return Family.LINEAR if isinstance(model, LinearModel | SoftmaxModel) else Family.XGBOOST


def save_model_file(model: Model, folder: Path, spec: DatasetSpec) -> Path:
    """Write the model's one file into `folder`; returns its path."""
    path = folder / MODEL_FILES[family_of(model)]
    if isinstance(model, LinearModel | SoftmaxModel):
        path.write_text(json.dumps(model.to_dict(spec), indent=2) + "\n")
    else:
        assert isinstance(model, BoosterModel)
        model.booster.save_model(str(path))
    return path


def load_model_file(folder: Path, family: Family | str, threads: int | None = None) -> Model:
    """Load the model file of `family` from `folder`."""
    family = Family(family)
    path = folder / MODEL_FILES[family]
    if family == Family.LINEAR:
        return linear_from_dict(json.loads(path.read_text()))
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(str(path))
    if threads is not None:
        booster.set_param({"nthread": threads})
    return BoosterModel(booster)
