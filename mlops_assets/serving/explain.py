"""`/v1/explain` and `/v1/explain_by_key`: why the champion predicts what it does.

Each answer gives every model feature's contribution (`core/explanations.py`: exact tree SHAP
from XGBoost, weight x centred value for the linear family), the base value they start from,
and what they add up to: the prediction for regression, its log-odds for classification
(`scale` says which). The features are the model's own inputs, derived ones included, built
by the same feature function as the prediction. The champion is explained whatever the
rollout: a canary's challenger answers some predictions, but its explanations would come from
another model than the one the docs describe. Explanations are not written to the
prediction log.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mlops_assets.core.explanations import Explanation, explain
from mlops_assets.serving.schema import keys_model, record_model
from mlops_assets.spec import DatasetSpec

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request: the body names each field and the problem."},
    404: {"description": "Unknown entity keys (named in the body)."},
    503: {"description": "The online feature store is not available (by key only)."},
}


def add_explanations(app: FastAPI, spec: DatasetSpec, state: Callable[[], Any]) -> None:
    """Add the two explanation endpoints to the prediction API of `spec`."""
    record, keys_request = record_model(spec), keys_model(spec)

    @app.post("/explain", summary="Each feature's contribution to a prediction", responses=_ERRORS)
    async def explain_record(payload: record) -> JSONResponse:  # type: ignore[valid-type]
        predictor = state().predictor
        columns = {name: [value] for name, value in payload.model_dump().items()}
        explained = _explain(predictor, predictor.matrix(columns), spec)
        return JSONResponse({**_row(explained, 0), "model_version": _version(state)})

    @app.post(
        "/explain_by_key",
        summary="Each feature's contribution, for entities in the online store",
        responses=_ERRORS,
    )
    async def explain_by_key(payload: keys_request) -> JSONResponse:  # type: ignore[valid-type]
        service = state()
        if service.lookup is None:
            return _error(503, "the online feature store is not configured for this service")
        try:
            found = await run_in_threadpool(service.lookup.lookup, payload.keys)
        except Exception as exc:  # Redis, SQLite and the registry raise their own errors
            return _error(503, f"the online feature store is unavailable ({type(exc).__name__})")
        if found.unknown:
            return _error(404, "unknown entity keys", keys=found.unknown)
        explained = _explain(service.predictor, found.matrix, spec)
        answers = {str(key): _row(explained, index) for index, key in enumerate(found.keys)}
        return JSONResponse({"explanations": answers, "model_version": _version(state)})


class Explained(NamedTuple):
    """The explanation of some rows and the model's predictions for them."""

    explanation: Explanation
    predictions: np.ndarray


def _explain(predictor: Any, matrix: np.ndarray, spec: DatasetSpec) -> Explained:
    model = predictor.bundle.model
    return Explained(explain(model, matrix, list(spec.model_features)), model.predict(matrix))


def _row(explained: Explained, index: int) -> dict[str, Any]:
    """One row's answer: the prediction, and the base value and contributions that sum to it."""
    explanation = explained.explanation
    return {
        "prediction": float(explained.predictions[index]),
        "base_value": float(explanation.base_value[index]),
        "contributions": explanation.row(index),
        "sum": float(explanation.margin[index]),
        "scale": explanation.scale,
    }


def _version(state: Callable[[], Any]) -> str:
    return state().predictor.bundle.version


def _error(status: int, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": message, **details}, status_code=status)
