"""What a prediction answers: a value, or a multiclass model's class and its probabilities.

A regression or binary model answers one number (the value, or the positive class's
probability); a multiclass one the most probable class and every class's probability.

A multiclass answer names each class as the spec's categories spell it (JSON keys are text, so
the class `0` is the key `"0"`); the label keeps the category's own type. The probabilities are
the model's own float64 values, so they equal the offline prediction of the same row and sum
to 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_assets.spec import DatasetSpec


def answer_one(spec: DatasetSpec, prediction: np.ndarray) -> dict[str, Any]:
    """`{"prediction": value}`, or `{"prediction": label, "probabilities": {class: p}}`."""
    if not spec.task.is_multiclass:
        return {"prediction": float(prediction)}
    return {
        "prediction": spec.classes[int(np.argmax(prediction))],
        "probabilities": _named(spec, prediction),
    }


def answer_many(spec: DatasetSpec, predictions: np.ndarray) -> dict[str, Any]:
    """`{"predictions": [...]}`; multiclass adds `"probabilities": [{class: p}, ...]`."""
    if not spec.task.is_multiclass:
        return {"predictions": predictions.tolist()}
    return {
        "predictions": labels(spec, predictions),
        "probabilities": [_named(spec, row) for row in predictions],
    }


def answer_by_key(spec: DatasetSpec, keys: list[str], predictions: np.ndarray) -> dict[str, Any]:
    """`{"predictions": {key: ...}}`; multiclass adds `"probabilities": {key: {class: p}}`."""
    answers = answer_many(spec, predictions)
    return {name: dict(zip(keys, values, strict=True)) for name, values in answers.items()}


def labels(spec: DatasetSpec, probabilities: np.ndarray) -> list[Any]:
    """The most probable class of each row, as the spec's categories spell it."""
    classes = spec.classes
    return [classes[i] for i in np.argmax(probabilities, axis=1).tolist()]


def _named(spec: DatasetSpec, row: np.ndarray) -> dict[str, float]:
    return dict(zip((str(c) for c in spec.classes), row.tolist(), strict=True))
