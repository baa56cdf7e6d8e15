"""Text entity keys beside integer ones: spec, splits, canary points and Feast's key bytes."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.cleaning import REASON_COLUMN, clean
from mlops_assets.core.entity_keys import key_array
from mlops_assets.core.raw import prepare_raw
from mlops_assets.core.splits import entity_split
from mlops_assets.features.value_encoding import serialize_keys, serialize_string_keys
from mlops_assets.serving.traffic import canary_mask, sticky_points
from mlops_assets.spec import DatasetSpec, SpecError, load_spec

NAMES = ["Acme Ltd", "Globex GmbH", "Initech Inc", "Ünïcode Oy", "007", "x" * 150]


def panel_spec(key_dtype: str = "string") -> DatasetSpec:
    """A yearly panel of companies named by text."""
    return DatasetSpec.model_validate(
        {
            "name": "company_panel",
            "task": "regression",
            "columns": [
                {"name": "company", "dtype": key_dtype, "role": "entity_key"},
                {"name": "year_end", "dtype": "datetime", "role": "event_timestamp"},
                {"name": "revenue", "dtype": "float"},
                {"name": "profit", "dtype": "float", "role": "target"},
            ],
        }
    )


def test_an_entity_key_is_int_or_string(tmp_path):
    assert panel_spec().text_entity_key and not panel_spec("int").text_entity_key
    path = tmp_path / "spec.yaml"
    path.write_text(
        "name: p\ntask: regression\ncolumns:\n"
        "  - {name: company, dtype: float, role: entity_key}\n"
        "  - {name: revenue, dtype: float}\n"
        "  - {name: profit, dtype: float, role: target}\n"
    )
    with pytest.raises(SpecError) as refused:
        load_spec(path)
    assert str(refused.value) == (
        f"dataset spec {path} is invalid: column 'company': an entity key needs dtype 'int' or "
        "'string', not 'float'; use 'string' for names and codes, 'int' for numbers"
    )


def test_integer_keys_keep_their_split():
    """The assignment the integer path gave before text keys existed, pinned."""
    split = entity_split(np.arange(1, 21))
    assert [i + 1 for i, s in enumerate(split) if s != "train"] == [6, 11, 18]
    assert split[17] == "test" and split[5] == split[10] == "validation"
    assert list(entity_split(np.array([-5, 0, 2**40 + 3, 9_999_999_999]))) == [
        "train",
        "validation",
        "train",
        "train",
    ]


def test_text_keys_split_by_a_stable_hash_of_their_bytes():
    keys = np.array([f"company {i}" for i in range(20_000)], dtype=object)
    split = entity_split(keys)
    shares = pd.Series(split).value_counts(normalize=True)
    assert shares["train"] == pytest.approx(0.70, abs=0.01)
    assert shares["test"] == pytest.approx(0.15, abs=0.01)
    # The same key gets the same split whatever else is in the batch, and in another process
    # with another string-hash seed (Python's own hash() would differ there).
    assert list(entity_split(keys[::-1][:500])) == list(split[::-1][:500])
    code = (
        "import numpy as np; from mlops_assets.core.splits import entity_split; "
        f"print(','.join(entity_split(np.array({NAMES!r}, dtype=object))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert other.stdout.strip().split(",") == list(entity_split(np.array(NAMES, dtype=object)))
    # Pinned: a change of the hash would move every text-keyed entity to another split.
    assert list(entity_split(np.array(NAMES, dtype=object))) == [
        "train", "train", "validation", "train", "train", "test",
    ]  # fmt: skip


def test_text_keys_get_sticky_canary_points():
    keys = np.array([f"customer-{i}" for i in range(10_000)], dtype=object)
    points = sticky_points(keys)
    assert np.array_equal(points, sticky_points(keys.copy()))
    assert points.min() >= 0 and points.max() < 1
    assert np.mean(points < 0.2) == pytest.approx(0.2, abs=0.015)
    listed = [*keys[:50], None]
    mask = canary_mask(listed, len(listed), 0.2)
    assert np.array_equal(mask[:50], points[:50] < 0.2)


def test_text_keys_serialise_as_feast_does():
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    ours = serialize_string_keys("company", np.array(NAMES, dtype=object))
    assert serialize_keys("company", key_array(pd.Series(NAMES, dtype="string"), True)) == ours
    for name, encoded in zip(NAMES, ours, strict=True):
        proto = EntityKey(join_keys=["company"], entity_values=[Value(string_val=name)])
        assert encoded == serialize_entity_key(proto, entity_key_serialization_version=3)


def test_a_text_key_keeps_digits_and_an_integer_key_refuses_names_row_by_row():
    spec, int_spec = panel_spec(), panel_spec("int")
    delivered = pd.DataFrame(
        {
            "company": ["Acme Ltd", "007", "12", "Globex GmbH"],
            "year_end": ["2020-12-31", "2020-12-31", "2021-12-31", "2021-12-31"],
            "revenue": [1.0, 2.0, 3.0, 4.0],
            "profit": [0.1, 0.2, 0.3, 0.4],
        }
    )
    at = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    text = clean(prepare_raw(delivered, spec, "test", at).frame, spec)
    assert text.cleaned["company"].tolist() == ["Acme Ltd", "007", "12", "Globex GmbH"]
    assert str(text.cleaned["company"].dtype) == "string" and text.quarantine.empty
    numbers = clean(prepare_raw(delivered, int_spec, "test", at).frame, int_spec)
    assert numbers.cleaned["company"].tolist() == [7, 12]
    assert numbers.quarantine["company"].tolist() == ["Acme Ltd", "Globex GmbH"]
    assert numbers.quarantine[REASON_COLUMN].tolist() == ["unparseable:company"] * 2
