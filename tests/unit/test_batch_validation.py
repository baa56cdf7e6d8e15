"""Column-wise batch validation against the batch model it replaces on the hot path.

Every batch is validated both ways: the column-wise validator must accept exactly what the
batch model accepts, with the same values (and Python types), and refuse exactly what it
refuses, with the same errors in the same order. The batches mix valid values with every kind
of bad value the request model knows about, for a spec with string categories and an imputed
field, one with integer categories, and one with a boolean and a nullable field.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from mlops_assets.serving.batch import ColumnRecords, validate_batch
from mlops_assets.serving.schema import MAX_BATCH, batch_model
from mlops_assets.spec import HOUSE_PRICES_SPEC, DatasetSpec, DType, load_spec
from tests.spec_files import HEART_SPEC

FLAGS_SPEC = """
name: flags
task: regression
columns:
  - {name: id, dtype: int, role: entity_key}
  - {name: event_timestamp, dtype: datetime, role: event_timestamp}
  - {name: active, dtype: bool}
  - {name: score, dtype: float, nullable: true}
  - {name: count, dtype: int, min: -5, max: 5, impute: constant, impute_value: 0}
  - {name: label, dtype: float, role: target}
"""

GOOD_TIMES = [
    "2024-03-01T12:00:00+00:00",
    "2024-03-01T12:00:00+05:30",
    "2024-03-01T12:00:00Z",
    "2024-03-01T12:00:00",
    "2024-03-01",
    1_700_000_000,
    None,
]
BAD_TIMES = ["yesterday-ish", "0001-01-01T00:00:00+05:00", "9999-12-31T00:00:00", True, [], 1e20]
BAD_ANYWHERE = [None, [], {}, "x" * 300, float("nan"), float("inf"), -float("inf")]


def _good(column, rng: random.Random) -> Any:
    if column.dtype == DType.CATEGORY:
        return rng.choice(list(column.categories))
    if column.dtype == DType.BOOL:
        return rng.choice([True, False])
    low = -1e6 if column.min is None else column.min
    high = 1e6 if column.max is None else column.max
    if column.dtype == DType.INT:
        return rng.randint(int(low), int(high))
    return rng.choice([rng.uniform(low, high), int(rng.uniform(low, high))])


def _bad(column, rng: random.Random) -> Any:
    choices = list(BAD_ANYWHERE)
    if column.dtype == DType.CATEGORY:
        numeric = isinstance(column.categories[0], int)
        first = column.categories[0]
        choices += [str(first), float(first), True, 99] if numeric else ["moon", 1, first.upper()]
    elif column.dtype == DType.BOOL:
        choices += [1, 0, "true", 1.0]
    elif column.dtype == DType.INT:
        choices += [3.5, 3.0, True, "3", 2**70, -(2**70)]
    else:
        choices += ["1800", True, 10**400]
    if column.min is not None:
        choices += [column.min - 1, column.min - 0.5]
    if column.max is not None:
        choices += [column.max + 1]
    return rng.choice(choices)


def _record(spec: DatasetSpec, rng: random.Random, bad_share: float) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name in spec.feature_columns:
        column = spec.column(name)
        roll = rng.random()
        if roll < bad_share / 3:
            continue  # missing: fine if nullable or imputed, else refused
        record[name] = _bad(column, rng) if roll < bad_share else _good(column, rng)
    if rng.random() < 0.5:
        bad = rng.random() < bad_share
        record[spec.event_timestamp] = rng.choice(BAD_TIMES if bad else GOOD_TIMES)
    if rng.random() < bad_share / 4:
        record[rng.choice(["colour", "", "SQFT", "0"])] = 1
    return record


def _flags_spec(tmp_path) -> DatasetSpec:
    path = tmp_path / "flags.yaml"
    path.write_text(FLAGS_SPEC)
    return load_spec(path)


def _reference(payload: Any, spec: DatasetSpec) -> tuple[str, Any]:
    """What validating the whole batch model answers: values per field, or its errors."""
    try:
        batch = batch_model(spec).model_validate(payload)
    except ValidationError as error:
        return "refused", [(("body", *e["loc"]), e["type"], e["msg"]) for e in error.errors()]
    dumped = [r.model_dump() for r in batch.records]
    return "accepted", dumped


def _columnwise(payload: Any, spec: DatasetSpec) -> tuple[str, Any]:
    try:
        columns = validate_batch(payload, spec)
    except RequestValidationError as error:
        return "refused", [(tuple(e["loc"]), e["type"], e["msg"]) for e in error.errors()]
    return "accepted", list(ColumnRecords(columns))


def _typed(outcome: tuple[str, Any]) -> tuple[str, Any]:
    """Values with their types: 1800 and 1800.0 are equal, but a client sees the difference."""
    kind, value = outcome
    if kind == "refused":
        return outcome
    return kind, [{k: (type(v).__name__, v) for k, v in record.items()} for record in value]


@pytest.mark.parametrize("which", ["house", "heart", "flags"])
@pytest.mark.parametrize("bad_share", [0.0, 0.002, 0.05, 0.4])
def test_columns_accept_and_refuse_exactly_what_the_batch_model_does(which, bad_share, tmp_path):
    spec = {
        "house": lambda: load_spec(HOUSE_PRICES_SPEC),
        "heart": lambda: load_spec(HEART_SPEC),
        "flags": lambda: _flags_spec(tmp_path),
    }[which]()
    rng = random.Random(f"{which}-{bad_share}")
    outcomes = set()
    for _ in range(12):
        size = rng.choice([1, 2, 7, 300, MAX_BATCH])
        payload = {"records": [_record(spec, rng, bad_share) for _ in range(size)]}
        expected = _typed(_reference(payload, spec))
        assert _typed(_columnwise(payload, spec)) == expected
        outcomes.add(expected[0])
    assert outcomes == ({"accepted"} if bad_share == 0 else outcomes | {"refused"})


@pytest.mark.parametrize(
    "payload",
    [
        None,
        [],
        "records",
        {},
        {"records": []},
        {"records": None},
        {"records": {"sqft": 1.0}},
        {"records": [1, 2]},
        {"records": [[]]},
        {"records": [{}] * (MAX_BATCH + 1)},
        {"records": [{"sqft": 1800.0}], "extra": 1},
        {"rows": [{"sqft": 1800.0}]},
    ],
)
def test_odd_shapes_get_the_batch_models_errors(payload, house_spec):
    refused, errors = _columnwise(payload, house_spec)
    assert refused == "refused"
    assert errors == _reference(payload, house_spec)[1]


def test_a_bad_value_in_record_537_is_named_with_its_field(house_spec):
    good = {
        "sqft": 1800.0,
        "bedrooms": 3,
        "bathrooms": 2.0,
        "location": "urban",
        "year_built": 1990,
        "condition": "good",
    }
    records = [dict(good) for _ in range(MAX_BATCH)]
    records[537]["bedrooms"] = 3.5
    records[900]["location"] = "moon"
    with pytest.raises(RequestValidationError) as raised:
        validate_batch({"records": records}, house_spec)
    located = [(e["loc"], e["msg"]) for e in raised.value.errors()]
    assert located == [
        (("body", "records", 537, "bedrooms"), "Input should be a valid integer"),
        (("body", "records", 900, "location"), "Input should be 'urban', 'suburban' or 'rural'"),
    ]
