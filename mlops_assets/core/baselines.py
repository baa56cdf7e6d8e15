"""Baselines trained alongside the model, so the report says how much the model adds.

A constant predictor (mean or majority class) and a linear model (ridge or logistic regression
on standardised numbers and one-hot categories). They are fit on the train split and scored on
the test split like the model; they are never deployed, so they are not persisted.
"""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops_assets.spec import DatasetSpec, TaskType


def fit_baselines(
    x_train: np.ndarray, y_train: np.ndarray, spec: DatasetSpec
) -> dict[str, Pipeline]:
    """Constant and linear baselines fitted on the train split."""
    categorical = [i for i, n in enumerate(spec.model_features) if n in spec.categorical_columns]
    numeric = [i for i in range(len(spec.model_features)) if i not in categorical]
    encode = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                categorical,
            ),
        ]
    )
    if spec.task == TaskType.REGRESSION:
        models = {"mean": DummyRegressor(strategy="mean"), "linear": Ridge(alpha=1.0)}
    else:
        models = {
            "majority": DummyClassifier(strategy="most_frequent"),
            "linear": LogisticRegression(max_iter=2_000),
        }
    fitted = {}
    for name, estimator in models.items():
        pipeline = Pipeline([("encode", encode), ("model", estimator)])
        fitted[name] = pipeline.fit(x_train, y_train)
    return fitted


def baseline_predictions(
    baselines: dict[str, Pipeline], x: np.ndarray, spec: DatasetSpec
) -> dict[str, np.ndarray]:
    """Each baseline's predictions (probabilities of the positive class for classification)."""
    if spec.task == TaskType.REGRESSION:
        return {name: model.predict(x).astype(np.float64) for name, model in baselines.items()}
    return {
        name: model.predict_proba(x)[:, -1].astype(np.float64) for name, model in baselines.items()
    }
