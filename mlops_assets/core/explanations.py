"""Why a prediction came out as it did: each feature's additive contribution, exactly.

For every row, `base_value + sum(contributions) == margin`, where the margin is the
prediction itself for regression and its log-odds for classification (the probability is
the logistic of the margin). Both families give exact, not sampled, contributions:

- XGBoost: tree SHAP values computed by XGBoost itself (`pred_contribs=True`), the base value
  being its expected output over the training data (its bias column);
- linear: weight x centred value for each numeric feature (a missing value takes the stored
  fill value, as in `predict`), centred on the training mean, so the base value is the
  prediction at the mean; a category contributes its own weight (a missing or unknown one
  adds nothing, as in `predict`).

Global importance (the report's) is the mean absolute contribution over a set of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlops_assets.core.families import BoosterModel, Model
from mlops_assets.core.linear_model import LOGISTIC, LinearModel

VALUE, LOG_ODDS = "value", "log-odds"


@dataclass(frozen=True)
class Explanation:
    """Per-row contributions (rows x features), base values, and what they add up to."""

    features: list[str]
    contributions: np.ndarray
    base_value: np.ndarray
    scale: str  # VALUE: they sum to the prediction; LOG_ODDS: to its log-odds

    @property
    def margin(self) -> np.ndarray:
        """Base value plus every contribution: the prediction, or its log-odds."""
        return self.base_value + self.contributions.sum(axis=1)

    def row(self, index: int) -> dict[str, float]:
        """One row's contributions by feature name."""
        return dict(zip(self.features, self.contributions[index].tolist(), strict=True))


def explain(model: Model, matrix: np.ndarray, features: list[str]) -> Explanation:
    """Each feature's contribution to the predictions of `model` on a model matrix."""
    if isinstance(model, LinearModel):
        return _explain_linear(model, matrix, features)
    if isinstance(model, BoosterModel):
        return _explain_tree(model, matrix, features)
    raise TypeError(f"no explanation for a model of type {type(model).__name__}")


def global_importance(explanation: Explanation) -> dict[str, float]:
    """Mean absolute contribution per feature, largest first."""
    means = np.abs(explanation.contributions).mean(axis=0)
    order = np.argsort(-means, kind="stable")
    return {explanation.features[i]: float(means[i]) for i in order}


def sampled_importance(
    model: Model, matrix: np.ndarray, features: list[str], limit: int = 2_000
) -> tuple[dict[str, float], int]:
    """Global importance over at most `limit` rows (a fixed sample), and the rows used.

    Tree SHAP costs a pass over every tree per row: a report on a million rows explains a
    sample, the same one each time for the same rows.
    """
    if len(matrix) > limit:
        picked = np.sort(np.random.default_rng(0).choice(len(matrix), limit, replace=False))
        matrix = matrix[picked]
    return global_importance(explain(model, matrix, features)), len(matrix)


def _explain_tree(model: BoosterModel, matrix: np.ndarray, features: list[str]) -> Explanation:
    import xgboost as xgb

    booster = model.booster
    data = xgb.DMatrix(
        np.asarray(matrix, dtype=np.float32),
        feature_names=booster.feature_names,
        feature_types=booster.feature_types,
        enable_categorical=True,
    )
    values = np.asarray(booster.predict(data, pred_contribs=True), dtype=np.float64)
    objective = _objective(booster)
    scale = LOG_ODDS if objective.startswith("binary:") else VALUE
    return Explanation(list(features), values[:, :-1], values[:, -1], scale)


def _explain_linear(model: LinearModel, matrix: np.ndarray, features: list[str]) -> Explanation:
    x = np.asarray(matrix, dtype=np.float64)
    contributions = np.zeros_like(x)
    numeric = list(model.numeric)
    weights, mean = np.asarray(model.weights), np.asarray(model.mean)
    if numeric:
        numbers = np.where(np.isfinite(x[:, numeric]), x[:, numeric], np.asarray(model.impute))
        contributions[:, numeric] = (numbers - mean) * weights
    for column, table in zip(model.categorical, model.category_weights, strict=True):
        codes = x[:, column]
        known = np.isfinite(codes) & (codes >= 0) & (codes < len(table))
        lookup = np.asarray(table, dtype=np.float64)
        contributions[:, column] = np.where(
            known, lookup[np.where(known, codes, 0).astype(np.int64)], 0.0
        )
    base = model.intercept + float(weights @ mean) if numeric else model.intercept
    scale = LOG_ODDS if model.link == LOGISTIC else VALUE
    return Explanation(list(features), contributions, np.full(len(x), base), scale)


def _objective(booster: object) -> str:
    import json

    config = json.loads(booster.save_config())  # type: ignore[attr-defined]
    return str(config["learner"]["objective"]["name"])
