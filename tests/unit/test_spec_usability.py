"""Integer categories, spec errors that name the column, and imputation learned once."""

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from mlops_assets.core.cleaning import REASON_COLUMN, clean
from mlops_assets.core.drift import detect_drift
from mlops_assets.core.features import engineer, engineer_arrays, to_matrix
from mlops_assets.core.imputation import learn_imputation
from mlops_assets.core.raw import prepare_raw
from mlops_assets.core.statistics import feature_statistics
from mlops_assets.monitoring.inputs import monitored_columns
from mlops_assets.serving.schema import record_model
from mlops_assets.spec import SpecError, load_spec
from tests.spec_files import HEART_SPEC

NOW = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def heart_spec():
    return load_spec(HEART_SPEC)


def _frame(**overrides) -> pd.DataFrame:
    rows = 6
    frame = pd.DataFrame(
        {
            "age": [40, 50, 60, 45, 55, 65],
            "sex": [0, 1, 1, 0, 1, 0],
            "cp": [1, 2, 3, 4, 3, 2],
            "trestbps": [120.0] * rows,
            "chol": [200.0, 240.0, np.nan, 300.0, 220.0, 260.0],
            "thalach": [150.0] * rows,
            "target": [0, 1, 1, 0, 1, 0],
        }
    )
    for name, values in overrides.items():
        frame[name] = values
    return frame


def _clean(frame, spec):
    return clean(prepare_raw(frame, spec, "test", NOW).frame, spec)


def _write(tmp_path: Path, mutate) -> Path:
    document = yaml.safe_load(HEART_SPEC.read_text())
    mutate(document)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_integer_categories_load_as_integers(heart_spec):
    assert heart_spec.column("cp").categories == (1, 2, 3, 4)
    assert heart_spec.column("cp").integer_categories
    assert heart_spec.threshold == 0.4
    assert heart_spec.imputed_columns == ["chol"]


def _set_cp(document, **fields):
    next(c for c in document["columns"] if c["name"] == "cp").update(fields)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: _set_cp(d, categories=[1.5, 2]), "column 'cp': categories[0]: 1.5 is a float"),
        (lambda d: _set_cp(d, categories=[1, 2, 2]), "column 'cp': categories repeat ['2']"),
        (lambda d: _set_cp(d, categories=[1, "two"]), "column 'cp': categories mix integers"),
        (lambda d: _set_cp(d, categories=[True, 2]), "column 'cp': categories[0]: True is a bool"),
        (lambda d: _set_cp(d, impute="constant", impute_value=9), "impute_value 9 is not one"),
        (lambda d: _set_cp(d, dtype="decimal"), "column 'cp': dtype: Input should be"),
        (
            lambda d: d["derived"][0].update(colour=1),
            "derived column 'chol_per_age': unknown field 'colour'; allowed fields: name, expr,",
        ),
        (lambda d: d.update(decision_threshold=1.0), "decision_threshold: Input should be less"),
        (lambda d: d["columns"][-1].update(impute="mode"), "only feature columns can be imputed"),
    ],
)
def test_spec_errors_name_the_column_and_the_field(tmp_path, mutate, expected):
    path = _write(tmp_path, mutate)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert expected in str(error.value)
    assert "columns.2" not in str(error.value)


def test_threshold_belongs_to_classification(tmp_path):
    path = _write(tmp_path, lambda d: d.update(task="regression"))
    with pytest.raises(SpecError, match="decision_threshold applies to task binary_classification"):
        load_spec(path)


def test_csv_integer_codes_match_whatever_type_the_reader_guessed(heart_spec):
    """Text "3", " 3" and "3.0" are the category 3; 7 is unknown; "3.5" does not parse."""
    frame = _frame(cp=["3", " 3", "3.0", "7", "3.5", "1"])
    result = _clean(frame, heart_spec)
    assert result.cleaned["cp"].tolist() == [3, 3, 3, 1]
    assert result.cleaned["cp"].dtype.categories.tolist() == [1, 2, 3, 4]
    assert result.quarantine[REASON_COLUMN].tolist() == ["unknown_category:cp", "unparseable:cp"]
    features = engineer(result.cleaned, heart_spec, learn_imputation(result.cleaned, heart_spec))
    codes = to_matrix(features, heart_spec)[:, heart_spec.model_features.index("cp")]
    np.testing.assert_array_equal(codes, [2, 2, 2, 0])


def test_float_and_integer_columns_give_the_same_codes(heart_spec):
    as_int = _clean(_frame(), heart_spec).cleaned
    as_float = _clean(_frame(cp=[1.0, 2.0, 3.0, 4.0, 3.0, 2.0]), heart_spec).cleaned
    pd.testing.assert_series_equal(as_int["cp"], as_float["cp"])


def test_cleaning_keeps_imputed_nulls_and_the_feature_stage_fills_them(heart_spec):
    result = _clean(_frame(), heart_spec)
    assert result.quarantine.empty and result.cleaned["chol"].isna().sum() == 1
    imputation = learn_imputation(result.cleaned, heart_spec)
    assert imputation == {"chol": 240.0}  # median of 200, 240, 300, 220, 260
    features = engineer(result.cleaned, heart_spec, imputation)
    assert features.loc[2, "chol"] == 240.0
    assert features.loc[2, "chol_per_age"] == 240.0 / 60, "derived columns see the filled value"


def test_imputation_strategies():
    document = yaml.safe_load(HEART_SPEC.read_text())
    columns = {c["name"]: c for c in document["columns"]}
    columns["trestbps"]["impute"] = "mean"
    columns["cp"]["impute"] = "mode"
    columns["thalach"].update(impute="constant", impute_value=150)
    from mlops_assets.spec.model import DatasetSpec

    spec = DatasetSpec.model_validate(document)
    frame = _frame(
        trestbps=[100.0, 110.0, np.nan, 130.0, np.nan, 160.0],
        cp=pd.Categorical([2, 3, 3, 2, None, 1], categories=[1, 2, 3, 4]),
    )
    values = learn_imputation(frame, spec)
    assert values == {"cp": 2, "trestbps": 125.0, "chol": 240.0, "thalach": 150}
    assert isinstance(values["cp"], int), "a tie goes to the smallest category, stored as an int"
    json.dumps(values)  # stored in JSON manifests


def test_request_path_fills_exactly_like_the_offline_path(heart_spec):
    cleaned = _clean(_frame(), heart_spec).cleaned
    imputation = learn_imputation(cleaned, heart_spec)
    offline = to_matrix(engineer(cleaned, heart_spec, imputation), heart_spec)
    records = cleaned.astype({"cp": "object", "sex": "object"}).to_dict("records")
    columns = {
        name: [None if pd.isna(r[name]) else r[name] for r in records]
        for name in heart_spec.feature_columns
    }
    for name in ("age", "trestbps", "chol", "thalach"):
        columns[name] = np.array([np.nan if v is None else v for v in columns[name]], dtype=float)
    arrays = engineer_arrays(columns, cleaned["ingested_at"], heart_spec, imputation)
    online = np.column_stack([arrays[n] for n in heart_spec.model_features]).astype(np.float32)
    np.testing.assert_array_equal(online, offline)


def test_request_model_takes_integer_categories_as_json_integers(heart_spec):
    record = record_model(heart_spec)
    good = {"age": 50, "sex": 1, "cp": 3, "trestbps": 120.0, "chol": 230.0, "thalach": 150.0}
    assert record.model_validate_json(json.dumps(good)).cp == 3
    for bad in ("3", 3.0, True, 7):
        with pytest.raises(ValidationError) as error:
            record.model_validate_json(json.dumps({**good, "cp": bad}))
        assert error.value.errors()[0]["loc"][0] == "cp"
    without_chol = {k: v for k, v in good.items() if k != "chol"}
    assert record.model_validate_json(json.dumps(without_chol)).chol is None
    assert record.model_validate_json(json.dumps({**good, "chol": None})).chol is None
    with pytest.raises(ValidationError, match="thalach"):  # not imputed: still required
        record.model_validate_json(json.dumps({k: v for k, v in good.items() if k != "thalach"}))


def test_drift_of_integer_categories_compares_like_with_like(heart_spec):
    """Reference shares go through JSON (keys become text); the batch holds integers."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(30, 70, 2000),
            "sex": rng.integers(0, 2, 2000),
            "cp": rng.integers(1, 5, 2000),
            "trestbps": rng.normal(130, 15, 2000).round(),
            "chol": rng.normal(240, 40, 2000).round(),
            "thalach": rng.normal(150, 20, 2000).round(),
            "target": rng.integers(0, 2, 2000),
        }
    )
    cleaned = _clean(frame, heart_spec).cleaned
    features = engineer(cleaned, heart_spec, learn_imputation(cleaned, heart_spec))
    reference = json.loads(json.dumps(feature_statistics(features, heart_spec)))
    assert set(reference["categorical"]["cp"]["shares"]) == {"1", "2", "3", "4"}
    same = detect_drift(reference, monitored_columns(cleaned, heart_spec))
    cp = next(c for c in same.columns if c.column == "cp")
    assert cp.psi < 0.01 and not cp.drifted
    shifted = cleaned.assign(cp=pd.Categorical([4] * len(cleaned), categories=[1, 2, 3, 4]))
    moved = detect_drift(reference, monitored_columns(shifted, heart_spec))
    assert next(c for c in moved.columns if c.column == "cp").drifted
