from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlops_assets.spec import HOUSE_PRICES_SPEC, DType, Role, SpecError, TaskType, load_spec
from mlops_assets.spec.derived import DerivedExpression, ExpressionError


def test_default_spec_roles(house_spec):
    assert house_spec.task == TaskType.REGRESSION
    assert house_spec.entity_key == "house_id"
    assert house_spec.event_timestamp == "event_timestamp"
    assert house_spec.target == "price"
    assert house_spec.categorical_columns == ["location", "condition"]
    assert house_spec.gates.rules, "the default spec carries promotion gates"


def test_second_spec_has_a_different_shape(cancer_spec):
    assert cancer_spec.task == TaskType.BINARY_CLASSIFICATION
    assert cancer_spec.entity_key_column is None and cancer_spec.entity_key == "row_id"
    assert cancer_spec.event_timestamp_column is None
    assert cancer_spec.event_timestamp == "ingested_at"
    assert len(cancer_spec.feature_columns) == 30


def _write_spec(tmp_path: Path, mutate) -> Path:
    document = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())
    mutate(document)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["columns"][2].update(dtype="decimal"), "column 'sqft': dtype: Input"),
        (lambda d: d["columns"][2].update(min=10, max=1), "min 10.0 > max 1.0"),
        (lambda d: d["columns"][5].pop("categories"), "must list categories"),
        (lambda d: d.update(task="ranking"), "task"),
        (
            lambda d: d["columns"][2].update(colour="red"),
            "column 'sqft': unknown field 'colour'; allowed fields: name, dtype, role,",
        ),
        (lambda d: d["derived"][0].update(expr="sqft / rooms"), "unknown columns ['rooms']"),
        (lambda d: d["derived"][0].update(expr="__import__('os')"), "only these functions"),
        (lambda d: d["columns"].append({"name": "price", "dtype": "float"}), "duplicate column"),
        (lambda d: d["columns"][9].update(role="feature"), "no column has role 'target'"),
        (lambda d: d["columns"][2].update(name="sqft[m2]"), "contains"),
        (lambda d: d["gates"]["rules"].append({"metric": "r2"}), "needs min or max"),
        (lambda d: d["training"].update(folds=1), "training.folds"),
        (lambda d: d["training"].update(protocol="kfold"), "training.protocol"),
        (
            lambda d: d["training"].update(families=["xgboost", "forest"]),
            "training.families[1]: Input should be 'xgboost' or 'linear'",
        ),
        (lambda d: d["training"].update(families=["linear", "linear"]), "families listed twice"),
        (
            lambda d: d["training"].update(split={"train": 0.8, "validation": 0.15, "test": 0.15}),
            "train + validation + test must be 1",
        ),
        (
            lambda d: d["training"].update(search=3),
            "training: unknown field 'search'; allowed fields: protocol, cv_below_rows,",
        ),
        (lambda d: d["gates"].update(champion_tolerance=0.02), "set training.min_improvement"),
    ],
)
def test_invalid_spec_fails_at_load_naming_the_problem(tmp_path, mutate, expected):
    path = _write_spec(tmp_path, mutate)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_missing_and_malformed_spec_files(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)


def test_column_lookup_and_roles(house_spec):
    assert house_spec.column("sqft").dtype == DType.FLOAT
    assert house_spec.column("house_id").role == Role.ENTITY_KEY
    with pytest.raises(KeyError, match="nope"):
        house_spec.column("nope")


def test_derived_expression_is_vectorised_and_safe():
    frame = pd.DataFrame({"a": [4.0, 1.0, 0.0], "b": [2.0, 0.0, -1.0]})
    assert DerivedExpression.parse("a / b").evaluate(frame)[0] == 2.0
    assert np.isnan(DerivedExpression.parse("a / b").evaluate(frame)[1]), "x/0 is NaN, not inf"
    logs = DerivedExpression.parse("log(b)").evaluate(frame)
    assert np.isnan(logs[2]) and logs[0] == pytest.approx(np.log(2))
    combined = DerivedExpression.parse("maximum(a, 1) ** 2 - -b").evaluate(frame)
    np.testing.assert_allclose(combined, [18.0, 1.0, 0.0])
    assert DerivedExpression.parse("sqrt(a) + 1").columns == frozenset({"a"})


@pytest.mark.parametrize(
    "source",
    ["a.real", "a if b else 1", "[a]", "lambda: 1", "open('x')", "a < b", "'text'", "log", "a; b"],
)
def test_derived_expression_rejects_anything_but_arithmetic(source):
    with pytest.raises(ExpressionError):
        DerivedExpression.parse(source)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sqft + 9 ** 9 ** 9 ** 9", "exponent in '9 ** 9 ** 9 ** 9' must be a number"),
        ("sqft ** 1000", "exponent in 'sqft ** 1000' must be a number between -8 and 8"),
        ("sqft ** bedrooms", "must be a number between"),
        ("sqft * 1e300", "out of bounds"),
        ("sqft + 1e999", "out of bounds"),
        (" + ".join(["sqft"] * 40), "has 79 syntax nodes; the limit is 64"),
        ("log(" * 13 + "sqft" + ")" * 13, "levels deep; the limit is 12"),
        ("sqft" + " + 1" * 200, "characters long; the limit is 500"),
        ("log(sqft, sqft)", "log() takes 1 argument(s), got 2"),
    ],
)
def test_unbounded_derived_expression_fails_at_load_naming_it(tmp_path, expr, expected):
    path = _write_spec(tmp_path, lambda d: d["derived"][0].update(expr=expr))
    with pytest.raises(SpecError) as error:
        load_spec(path)
    name = yaml.safe_load(HOUSE_PRICES_SPEC.read_text())["derived"][0]["name"]
    assert f"derived column {name!r} = '{expr[:100]}" in str(error.value)
    assert expected in str(error.value)


def test_bounded_powers_evaluate_in_float64_without_growing():
    frame = pd.DataFrame({"a": [2.0, 3.0]})
    np.testing.assert_allclose(
        DerivedExpression.parse("a ** 8 + a ** -2").evaluate(frame), [256.25, 6561 + 1 / 9]
    )
    np.testing.assert_allclose(DerivedExpression.parse("a ** 0.5").evaluate(frame), np.sqrt([2, 3]))
    overflow = DerivedExpression.parse("a * exp(exp(exp(1e12))) * 1e12 ** 8").evaluate(frame)
    assert np.isnan(overflow).all(), "float64 overflow becomes NaN instead of a huge integer"
