"""The fast online write must produce exactly the bytes Feast's own SQLite store writes."""

import numpy as np
import pandas as pd
import pytest

from mlops_assets.features.online_write import newest_per_entity
from mlops_assets.features.value_encoding import (
    serialize_doubles,
    serialize_int64_keys,
    serialize_strings,
)

feast = pytest.importorskip("feast")


def _feast_value(value, value_type):
    from feast.type_map import python_values_to_proto_values

    [proto] = python_values_to_proto_values([value], value_type)
    return proto


def test_entity_keys_match_feast_serialisation():
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    keys = np.array([0, 1, 255, 2**40 + 7, 9_999_999_999, -3], dtype=np.int64)
    ours = serialize_int64_keys("house_id", keys)
    for key, encoded in zip(keys, ours, strict=True):
        proto = EntityKey(join_keys=["house_id"], entity_values=[Value(int64_val=int(key))])
        assert encoded == serialize_entity_key(proto, entity_key_serialization_version=3)


def test_doubles_match_feast_values_and_text():
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.value_type import ValueType

    values = np.array([0.0, 1611.0, -2.5, 1e16, 2016.8952512, np.nan, 1 / 3])
    encoded, texts = serialize_doubles(values)
    for value, ours, text in zip(values, encoded, texts, strict=True):
        proto = _feast_value(float(value), ValueType.DOUBLE)
        assert ours == proto.SerializeToString()
        assert text == extract_text_and_num(proto, False)[0]


def test_strings_match_feast_values_and_text():
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.value_type import ValueType

    values = pd.Series(["urban", "suburbañ", None, "x" * 300, "urban"], dtype="string")
    encoded, texts = serialize_strings(values)
    for value, ours, text in zip(values, encoded, texts, strict=True):
        proto = _feast_value(None if pd.isna(value) else str(value), ValueType.STRING)
        assert ours == proto.SerializeToString()
        assert text == extract_text_and_num(proto, False)[0]


def test_newest_row_per_entity():
    frame = pd.DataFrame(
        {
            "k": [2, 1, 2, 1, 3],
            "t": pd.to_datetime(["2021", "2020", "2023", "2022", "2020"], utc=True),
            "x": [1, 2, 3, 4, 5],
        }
    )
    newest = newest_per_entity(frame, "k", "t")
    assert newest["k"].tolist() == [1, 2, 3]
    assert newest["x"].tolist() == [4, 3, 5]
