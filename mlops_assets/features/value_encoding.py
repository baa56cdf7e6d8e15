"""Feast's online-store bytes, produced with numpy a column at a time.

Feast serialises every value through a protobuf object in Python; these functions produce the
same bytes (entity keys in serialisation v3, `Value` messages, protobuf `Timestamp`s) for a whole
column at once. Both fast writers (`sqlite_write.py`, `redis_write.py`) use them, and the tests
compare their output with Feast's, byte for byte.
"""

from __future__ import annotations

import struct
import time

import numpy as np
import pandas as pd

from mlops_assets.core.entity_keys import is_text

DOUBLE_TAG = b"\x29"  # Value.double_val: field 5, wire type 1 (64-bit)
STRING_TAG = b"\x12"  # Value.string_val: field 2, wire type 2 (length-delimited)
VALUE_TYPE_STRING = 2
VALUE_TYPE_INT64 = 4
UINT64 = 0xFFFF_FFFF_FFFF_FFFF  # protobuf writes a negative int64 as its unsigned 64-bit form


def serialize_int64_keys(join_key: str, values: np.ndarray) -> list[bytes]:
    """Feast's entity-key serialisation v3 for one INT64 join key, vectorised."""
    name = join_key.encode()
    prefix = struct.pack("<II", 1, VALUE_TYPE_STRING) + struct.pack("<I", len(name)) + name
    prefix += struct.pack("<II", VALUE_TYPE_INT64, 8)
    width = len(prefix) + 8
    buffer = np.empty((len(values), width), dtype=np.uint8)
    buffer[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    buffer[:, len(prefix) :] = values.astype("<i8").view(np.uint8).reshape(-1, 8)
    return _split(buffer)


def serialize_string_keys(join_key: str, values: np.ndarray) -> list[bytes]:
    """Feast's entity-key serialisation v3 for one STRING join key (UTF-8 text, length first)."""
    name = join_key.encode()
    prefix = struct.pack("<II", 1, VALUE_TYPE_STRING) + struct.pack("<I", len(name)) + name
    head = prefix + struct.pack("<I", VALUE_TYPE_STRING)
    encoded = [str(value).encode() for value in values]
    return [head + struct.pack("<I", len(data)) + data for data in encoded]


def serialize_keys(join_key: str, values: np.ndarray) -> list[bytes]:
    """Serialised entity keys of an `int64` array, or of an object array of text keys."""
    if is_text(values):
        return serialize_string_keys(join_key, values)
    return serialize_int64_keys(join_key, np.asarray(values, dtype=np.int64))


def serialize_doubles(values: np.ndarray) -> tuple[list[bytes], list[str | None]]:
    """`Value(double_val=x)` bytes and Feast's `value_text` (str(x)); NaN -> empty Value."""
    values = np.asarray(values, dtype="float64")
    buffer = np.empty((len(values), 9), dtype=np.uint8)
    buffer[:, 0] = DOUBLE_TAG[0]
    buffer[:, 1:] = values.astype("<f8").view(np.uint8).reshape(-1, 8)
    encoded = _split(buffer)
    texts: list[str | None] = list(map(repr, values.tolist()))
    missing = np.flatnonzero(np.isnan(values))
    for position in missing:  # missing values are rare; Feast stores an empty Value for them
        encoded[position] = b""
        texts[position] = None
    return encoded, texts


def serialize_strings(values: pd.Series) -> tuple[list[bytes], list[str | None]]:
    """`Value(string_val=s)` bytes, encoded once per distinct value; missing -> empty Value."""
    codes, uniques = pd.factorize(values.astype("object"), use_na_sentinel=True)
    table = [_string_value(str(u)) for u in uniques] + [b""]
    texts_table: list[str | None] = [str(u) for u in uniques] + [None]
    encoded = [table[c] for c in codes.tolist()]
    texts = [texts_table[c] for c in codes.tolist()]
    return encoded, texts


def _string_value(text: str) -> bytes:
    data = text.encode()
    return STRING_TAG + varint(len(data)) + data


def varint(number: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _split(buffer: np.ndarray) -> list[bytes]:
    width = buffer.shape[1]
    raw = buffer.tobytes()
    return [raw[i : i + width] for i in range(0, len(raw), width)]


def epoch_seconds(timestamps: pd.Series) -> list[int]:
    """Event times as Feast's SQLite adapter stores them: `int(naive_utc.timestamp())`.

    Naive datetimes are read as local time, so on a clock that is not UTC the same shift is
    applied here, as Feast's adapter does.
    """
    naive = timestamps.dt.tz_convert("UTC").dt.tz_localize(None)
    utc_seconds = naive.to_numpy(dtype="datetime64[s]").astype(np.int64)
    if time.timezone == 0 and time.daylight == 0:
        return utc_seconds.tolist()
    return [int(d.timestamp()) for d in naive.dt.to_pydatetime()]


def timestamps(column: pd.Series) -> list[bytes]:
    """`google.protobuf.Timestamp` bytes at microsecond precision, as `FromDatetime` gives."""
    micros = column.dt.tz_convert("UTC").to_numpy(dtype="datetime64[us]").astype(np.int64)
    seconds, nanos = np.divmod(micros, 1_000_000)
    nanos *= 1000
    return [
        b"\x08" + varint(s & UINT64) + (b"\x10" + varint(n) if n else b"")
        for s, n in zip(seconds.tolist(), nanos.tolist(), strict=True)
    ]
