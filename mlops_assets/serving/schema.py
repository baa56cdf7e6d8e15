"""Request models generated from the dataset spec, so the service enforces the data contract.

Ranges become `ge`/`le`, categories become a `Literal` of the spec's values (integers for
integer-coded categories: `"cp": 3` is accepted, `"cp": "3"`, `3.0` and `true` are not), nullable
and imputed columns become optional (an imputed one is filled with the model's stored value),
NaN and infinity are refused, and unknown fields are an error, so a bad request gets a 400 that
names the field instead of a prediction on nonsense. Numbers and booleans are strict: `true` is
not an integer and `"1800"` is not a number (a client sending them has a bug worth hearing
about); an integer is still a valid float.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
)

from mlops_assets.spec import DatasetSpec, DType

MAX_BATCH = 1_000
MAX_KEYS = 1_000
MAX_KEY_LENGTH = 200  # characters of a text entity key
EARLIEST, LATEST = datetime(1800, 1, 1), datetime(2200, 1, 1)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # entity keys and integer features are int64


@functools.lru_cache(maxsize=8)
def record_model(spec: DatasetSpec) -> type[BaseModel]:
    """One prediction request: the spec's feature columns plus an optional event time."""
    fields: dict[str, Any] = {}
    for name in spec.feature_columns:
        column = spec.column(name)
        annotation, constraints = _annotation(column.dtype, column.categories)
        if column.min is not None:
            constraints["ge"] = column.min
        if column.max is not None:
            constraints["le"] = column.max
        if column.nullable or column.imputes:
            fields[name] = (
                annotation | None,
                Field(default=None, description=column.description, **constraints),
            )
        else:
            fields[name] = (annotation, Field(description=column.description, **constraints))
    fields[spec.event_timestamp] = (
        Annotated[datetime, AfterValidator(_plausible_time)] | None,
        Field(
            default=None,
            description="When the prediction is for, between 1800 and 2200 (default: now, UTC).",
        ),
    )
    if spec.entity_key_column:
        fields[spec.entity_key] = (
            key_type(spec) | None,
            Field(
                default=None,
                description="The entity the prediction is for (optional, not a model input): "
                "logged, so a label that arrives later can judge this prediction.",
            ),
        )
    return create_model(
        f"{_camel(spec.name)}Record",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=200),
        **fields,
    )


@functools.lru_cache(maxsize=8)
def batch_model(spec: DatasetSpec) -> type[BaseModel]:
    """A batch of records, between 1 and `MAX_BATCH` of them."""
    return create_model(
        f"{_camel(spec.name)}Batch",
        __config__=ConfigDict(extra="forbid"),
        records=(list[record_model(spec)], Field(min_length=1, max_length=MAX_BATCH)),
    )


def key_type(spec: DatasetSpec) -> Any:
    """An entity key as a request holds it: a JSON integer, or a JSON string for text keys.

    Strict either way: `"7"` is not the integer key 7, and `7` is not the text key "7".
    """
    if spec.text_entity_key:
        return Annotated[StrictStr, Field(min_length=1, max_length=MAX_KEY_LENGTH)]
    return Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]


@functools.lru_cache(maxsize=8)
def keys_model(spec: DatasetSpec) -> type[BaseModel]:
    """Entity keys whose features the online store holds, typed as the spec's key."""
    return create_model(
        f"{_camel(spec.name)}Keys",
        __config__=ConfigDict(extra="forbid"),
        keys=(list[key_type(spec)], Field(min_length=1, max_length=MAX_KEYS)),
    )


def _plausible_time(moment: datetime) -> datetime:
    """Naive UTC within 1800-2200: outside it, nanosecond time arithmetic would wrap."""
    try:
        naive = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    except (OverflowError, ValueError) as exc:
        raise ValueError("timestamp out of range") from exc
    if not EARLIEST <= naive <= LATEST:
        raise ValueError(f"timestamp must be between {EARLIEST.year} and {LATEST.year}")
    return naive


def _annotation(dtype: DType, categories: tuple[Any, ...] | None) -> tuple[Any, dict[str, Any]]:
    if dtype == DType.CATEGORY:
        choices = Literal[tuple(categories or ())]
        if categories and isinstance(categories[0], int):
            return Annotated[choices, BeforeValidator(_exact_integer)], {}
        return choices, {}
    if dtype == DType.INT:
        return StrictInt, {"ge": INT64_MIN, "le": INT64_MAX}
    if dtype == DType.BOOL:
        return StrictBool, {}
    if dtype == DType.FLOAT:
        return StrictFloat, {}  # strict, yet an int is accepted: 1800 is a valid 1800.0
    return str, {"max_length": 200}


def _exact_integer(value: Any) -> Any:
    """An integer category must arrive as a JSON integer: never "3", 3.0 or true.

    Pydantic's lax `Literal` would take 3.0 and true for 3; one accepted form keeps the
    prediction log and drift statistics in the data's own type.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer category, not {type(value).__name__} {value!r}")
    return value


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
