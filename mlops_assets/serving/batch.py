"""A batch of records validated column by column, with the record model's own rules.

One pydantic object per record cost more than the prediction itself on a 1,000-row batch, and
left thousands of short-lived objects for the garbage collector. Here each field's values are
validated as one list by a `TypeAdapter` built from that very field of the record model, so
the rules cannot drift apart (strict types, bounds, categories including integer ones, no NaN
or infinity, the timestamp's range, a missing imputed field read as null), and a column of
1,000 numbers is one call into pydantic-core.

Error messages are not re-implemented either: the few records a column refused are validated
again by the record model, which gives exactly the messages, field paths (`records.537.sqft`)
and order that validating the whole batch model would. A body outside the usual shape (not an
object holding one list of 1 to `MAX_BATCH` objects) goes to the batch model itself.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from mlops_assets.serving.schema import MAX_BATCH, batch_model, record_model
from mlops_assets.spec import DatasetSpec

Columns = dict[str, list[Any]]


@functools.lru_cache(maxsize=8)
def column_adapters(spec: DatasetSpec) -> dict[str, TypeAdapter]:
    """Per request field, a validator of the list of its values, from the record model."""
    record = record_model(spec)
    return {
        name: TypeAdapter(list[Annotated[field.annotation, field]], config=record.model_config)
        for name, field in record.model_fields.items()
    }


def validate_batch(payload: Any, spec: DatasetSpec) -> Columns:
    """The batch's validated values, one list per request field, in record order.

    Raises `RequestValidationError` with the batch model's own errors, located under `body`
    as FastAPI locates them, so the service's 400 handler words them as for any request.
    """
    records = _usual_records(payload)
    if records is None:
        return _validate_whole(payload, spec)
    adapters = column_adapters(spec)
    refused: set[int] = set()
    if not set().union(*records) <= adapters.keys():  # an unknown field somewhere
        refused.update(i for i, r in enumerate(records) if not r.keys() <= adapters.keys())
    columns: Columns = {}
    for name, adapter in adapters.items():
        # A field left out reads as null: what the record model's default is for an optional
        # field, and a refusal (then named "Field required" by the record model) otherwise.
        try:
            columns[name] = adapter.validate_python([r.get(name) for r in records])
        except ValidationError as error:
            refused.update(e["loc"][0] for e in error.errors(include_url=False))
    if refused:
        errors = _record_errors(records, sorted(refused), spec)
        if not errors:  # the columns refused what the record model accepts: the batch decides
            return _validate_whole(payload, spec)
        raise RequestValidationError(errors)
    return columns


def _usual_records(payload: Any) -> list[dict[str, Any]] | None:
    """The records of `{"records": [{...}, ...]}` with 1 to MAX_BATCH objects, else None."""
    if type(payload) is not dict or len(payload) != 1:
        return None
    records = payload.get("records")
    if type(records) is not list or not 1 <= len(records) <= MAX_BATCH:
        return None
    if any(type(r) is not dict for r in records):
        return None
    return records


def _record_errors(
    records: list[dict[str, Any]], refused: list[int], spec: DatasetSpec
) -> list[dict[str, Any]]:
    """The record model's errors for the refused records, located as in the batch."""
    record = record_model(spec)
    errors: list[dict[str, Any]] = []
    for index in refused:
        try:
            record.model_validate(records[index])
        except ValidationError as error:
            errors.extend(_located(error, "body", "records", index))
    return errors


def _validate_whole(payload: Any, spec: DatasetSpec) -> Columns:
    """The batch model on the whole payload: its errors for odd shapes, or its values."""
    try:
        batch = batch_model(spec).model_validate(payload)
    except ValidationError as error:
        raise RequestValidationError(_located(error, "body")) from None
    dumped = [r.model_dump() for r in batch.records]
    return {name: [r[name] for r in dumped] for name in record_model(spec).model_fields}


def _located(error: ValidationError, *prefix: Any) -> list[dict[str, Any]]:
    return [{**e, "loc": (*prefix, *e["loc"])} for e in error.errors(include_url=False)]


class ColumnRecords:
    """Validated columns seen as records (for the prediction log), built only when read.

    The log expands its requests in a background thread; building 1,000 dicts there instead
    of in the request keeps them off the request's latency and out of the young generation.
    """

    def __init__(self, columns: Mapping[str, list[Any]]) -> None:
        self._columns = columns
        self._size = len(next(iter(columns.values()), []))

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = list(self._columns)
        for values in zip(*self._columns.values(), strict=True):
            yield dict(zip(names, values, strict=True))
