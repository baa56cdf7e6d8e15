"""Entity keys as arrays: 64-bit integers, or text for entities named by text.

Every stage that handles keys as arrays (the online writers and their state, the lookup, the
splits, the live join) takes them through here, so an integer key stays an `int64` and a text
key a Python `str`, never a float, a pandas `NA` or a number written as text.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


def key_array(values: Iterable[object] | pd.Series | np.ndarray, text: bool) -> np.ndarray:
    """`int64` keys, or an object array of `str` keys when `text`."""
    if not text:
        if isinstance(values, pd.Series):  # nullable Int64: exact, never through float64
            return values.to_numpy(dtype=np.int64)
        return np.asarray(values, dtype=np.int64)
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype="object")
    return series.astype("string").to_numpy(dtype=object)


def is_text(keys: np.ndarray) -> bool:
    """Whether an array of keys holds text (object or string dtype) rather than integers."""
    return keys.dtype == object or keys.dtype.kind in "OUS"


def column_keys(column: pd.Series) -> np.ndarray:
    """A table's key column as keys: an integer column as `int64`, any other as text."""
    return key_array(column, text=not pd.api.types.is_integer_dtype(column.dtype))


def text_hashes(keys: np.ndarray, hash_key: str) -> np.ndarray:
    """A 64-bit keyed hash (SipHash-2-4 of the UTF-8 text, by pandas) of each text key.

    The same in every process and on every machine: no Python `hash()` and its per-process
    seed. `hash_key` has 16 characters, as pandas requires; another key gives other hashes.
    """
    return pd.util.hash_array(np.asarray(keys, dtype=object), hash_key=hash_key, categorize=True)
