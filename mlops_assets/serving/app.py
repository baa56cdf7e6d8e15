"""The prediction API: a lean FastAPI app that the BentoML service mounts for its hot path.

BentoML's own `@bentoml.api` endpoints add several milliseconds a request here; mounting this
app inside the `@bentoml.service` keeps `bentoml serve`, `bentoml build` and the container as
they are while predictions skip that overhead. Every answer names the model version that gave
it (the champion, or during a canary possibly the challenger: `routing.py` decides per record
under the rollout the worker follows), every client error is a 4xx that names the problem, and
nothing a client sends can cause a 5xx.
"""

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

import orjson
from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops_assets.core.features import MissingHistoryError
from mlops_assets.profile import redact_url
from mlops_assets.serving.answers import answer_by_key, answer_many, answer_one
from mlops_assets.serving.batch import ColumnRecords, validate_batch
from mlops_assets.serving.explain import add_explanations
from mlops_assets.serving.metrics import labelled_metrics
from mlops_assets.serving.routing import Routed, log_part, route
from mlops_assets.serving.schema import MAX_BATCH, batch_model, keys_model, record_model
from mlops_assets.serving.traffic import Traffic
from mlops_assets.spec import DatasetSpec

MAX_BODY_BYTES = 2 * 1024 * 1024
BODY_TIMEOUT_S = 15.0
LOG = logging.getLogger(__name__)


def build_app(
    spec: DatasetSpec, state: Callable[[], Any], body_timeout_s: float = BODY_TIMEOUT_S
) -> FastAPI:
    """The API for one dataset spec; `state()` returns the live service (model, lookup, log).

    A request body must arrive whole within `body_timeout_s` of the request's start.
    """
    record, batch, keys_request = record_model(spec), batch_model(spec), keys_model(spec)
    # The docs page's scripts and styles come from a package, not a CDN: it renders offline.
    app = FastAPIOffline(
        title=f"{spec.name} predictions",
        description=f"Predictions of the champion model for dataset {spec.name!r}.",
        version=str(spec.version),
    )
    app.router.route_class = FastJsonRoute
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(BodyDeadline, timeout_s=body_timeout_s)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(MissingHistoryError, _missing_history)

    @app.post("/predict", summary="Predict one record", responses=_ERRORS)
    async def predict(payload: record) -> Response:  # type: ignore[valid-type]
        started = time.perf_counter()
        service = state()
        values = [payload.model_dump()]
        columns = {name: [value] for name, value in values[0].items()}
        routed = _route(service, "predict", columns=columns, keys=columns.get(spec.entity_key))
        body = answer_one(spec, routed.predictions[0])
        return _answer(service, "predict", values, routed, body, started)

    @app.post(
        "/predict_batch",
        summary=f"Predict up to {MAX_BATCH} records",
        responses=_ERRORS,
        openapi_extra=_json_body(batch),
    )
    async def predict_batch(payload: Annotated[Any, Body()]) -> Response:
        # Validated column by column (`batch.py`) with the batch model's rules and messages;
        # the batch model itself only documents the body here.
        started = time.perf_counter()
        service = state()
        columns = validate_batch(payload, spec)
        keys = columns.get(spec.entity_key)
        routed = _route(service, "predict_batch", columns=columns, keys=keys)
        body: dict[str, Any] = answer_many(spec, routed.predictions)
        if routed.canary:
            body["model_versions"] = routed.versions()
        inputs = ColumnRecords(columns)
        return _answer(service, "predict_batch", inputs, routed, body, started)

    @app.post("/predict_by_key", summary="Predict from the online feature store", responses=_ERRORS)
    async def predict_by_key(payload: keys_request) -> Response:  # type: ignore[valid-type]
        started = time.perf_counter()
        service = state()
        if service.lookup is None:
            return _error(503, "the online feature store is not configured for this service")
        try:  # a network read: off the event loop, so /v1/predict keeps answering meanwhile
            found = await run_in_threadpool(service.lookup.lookup, payload.keys)
        except Exception as exc:  # Redis, SQLite and the registry raise their own errors
            LOG.warning("online feature lookup failed: %s", redact_url(f"{exc!r}"))
            return _error(503, f"the online feature store is unavailable ({type(exc).__name__})")
        if found.unknown:
            return _error(404, "unknown entity keys", keys=found.unknown)
        routed = _route(service, "predict_by_key", rows=found.matrix, keys=list(found.keys))
        keys = [str(k) for k in found.keys]
        body = answer_by_key(spec, keys, routed.predictions)
        if routed.canary:
            body["model_versions"] = dict(zip(keys, routed.versions(), strict=True))
        values = [{spec.entity_key: k} for k in found.keys]
        return _answer(service, "predict_by_key", values, routed, body, started)

    add_explanations(app, spec, state)

    @app.get("/model_info", summary="Which model answers, and where it came from")
    async def model_info() -> Response:
        traffic = _traffic(state())
        info = traffic.champion.bundle.info
        return JSONResponse({**info, "champion": traffic.following, "rollout": traffic.describe()})

    return app


def _route(service: Any, endpoint: str, **request: Any) -> Routed:
    """The request's predictions under the champion and rollout this worker applies now.

    The worker's `Traffic` is read once: a swap meanwhile affects the next request only.
    """
    return route(_traffic(service), endpoint, **request)


def _traffic(service: Any) -> Traffic:
    watcher = getattr(service, "rollout", None)
    return watcher.traffic if watcher is not None else Traffic(champion=service.predictor)


def _answer(
    service: Any,
    endpoint: str,
    inputs: Iterable[dict],
    routed: Routed,
    body: dict,
    started: float,
) -> Response:
    request_id = uuid.uuid4().hex
    elapsed = time.perf_counter() - started
    for part in routed.parts:
        rows, latency = labelled_metrics(part.version, endpoint)
        rows.inc(len(part.predictions))
        latency.observe(elapsed)
        log_part(service.log, request_id, endpoint, inputs, part, elapsed)
    if routed.shadow is not None and getattr(service, "shadow", None) is not None:
        service.shadow.submit(routed.shadow, request_id, inputs)  # scored after, elsewhere
    payload = {**body, "model_version": routed.version, "request_id": request_id}
    return Response(orjson.dumps(payload), media_type="application/json")


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """An OpenAPI request body documenting `model` (its definitions inlined)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"content": content, "required": True}}


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request: the body names each field and the problem."},
    404: {"description": "Unknown entity keys (named in the body)."},
    413: {"description": "Request body too large."},
}


async def docs_redirect(scope: Scope, receive: Receive, send: Send) -> None:
    """`/docs`, where FastAPI users look first, leads to the API's page under `/v1`."""
    await RedirectResponse("/v1/docs", status_code=307)(scope, receive, send)


def _error(
    status: int, message: str, headers: dict[str, str] | None = None, **details: Any
) -> JSONResponse:
    return JSONResponse({"error": message, **details}, status_code=status, headers=headers)


async def _missing_history(request: Request, exc: MissingHistoryError) -> JSONResponse:
    """A request without the entity's history a window feature needs: 400, naming them."""
    return _error(400, str(exc))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ()) if p != "body"]
        field = "body" if error.get("type") == "json_invalid" else ".".join(location) or "body"
        problems.append({"field": field, "problem": error.get("msg", "invalid")})
    fields = ", ".join(p["field"] for p in problems[:10])
    return _error(400, f"invalid request: {fields}", problems=problems[:50])


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return _error(exc.status_code, str(exc.detail), headers=exc.headers)


class FastJsonRequest(Request):
    """A request whose JSON body orjson reads: a 1,000-record batch in a third of the time.

    orjson refuses a few documents the standard library reads (NaN, integers beyond 64 bits,
    other encodings); those are read again by `json`, so every body means what it meant, and a
    broken one fails with FastAPI's usual error.
    """

    async def json(self) -> Any:
        """The body as JSON (read once)."""
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                self._json = json.loads(body)
        return self._json


class FastJsonRoute(APIRoute):
    """FastAPI's route, handing its endpoint a `FastJsonRequest` (FastAPI's custom-route way)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The usual handler, called with the faster request."""
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(FastJsonRequest(request.scope, request.receive))

        return route


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413, whether or not Content-Length says so."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting body bytes as they arrive."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # Raised inside FastAPI's body reading, so it must be an HTTP error to survive.
                raise HTTPException(413, f"request body larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


class BodyDeadline:
    """Answer 408 and close when a request body does not arrive whole within `timeout_s`.

    The server itself waits for a body as long as the client keeps the connection open, so a
    client that declares more bytes than it sends (or drips them) would hold a connection and
    a request slot forever. The deadline covers the whole body, not each read.
    """

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app, self.timeout_s = app, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, bounding the time its body may take to arrive."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s  # the loop's clock: uvloop's is not monotonic()'s
        complete = False

        async def bounded() -> Message:
            nonlocal complete
            if complete:  # after the body, receive() waits for a disconnect: not ours to bound
                return await receive()
            try:
                # A timer on the running task, not `wait_for`'s extra task and loop iteration
                # for every read of every request.
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408,
                    f"request body not received within {self.timeout_s:g} s",
                    headers={"connection": "close"},
                ) from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, bounded, send)


def _too_large(limit: int) -> JSONResponse:
    return _error(413, f"request body larger than {limit} bytes")
