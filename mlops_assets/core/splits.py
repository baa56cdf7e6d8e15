"""Deterministic train/validation/test split by entity.

Every row of an entity lands in the same split (a house sold twice is never in train and test
at once), the assignment depends only on the key (so it is stable as batches arrive and
reproducible without a seed), and the shares follow the configured fractions. Integer keys
and text keys (hashed by their UTF-8 bytes) alike.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from mlops_assets.core.entity_keys import is_text, text_hashes

SPLITS = ("train", "validation", "test")
SPLIT_COLUMN = "split"  # the training set's column naming each row's split
HASH_KEY = "mlops-split-v1.0"  # 16 characters, as pandas' hash requires; change = reshuffle
BUCKETS = 10_000
SALT = np.uint64(int.from_bytes(hashlib.sha256(HASH_KEY.encode()).digest()[:8], "little"))


def entity_split(
    keys: np.ndarray, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> np.ndarray:
    """`train` / `validation` / `test` for each key, by a salted hash of the key."""
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    hashed = _key_hashes(np.asarray(keys))
    position = (hashed % BUCKETS) / BUCKETS
    train_end, validation_end = fractions[0], fractions[0] + fractions[1]
    labels = np.where(position < train_end, 0, np.where(position < validation_end, 1, 2))
    return np.asarray(SPLITS, dtype=object)[labels]


def _key_hashes(keys: np.ndarray) -> np.ndarray:
    """A salted 64-bit hash of each key: integers as before, text by its UTF-8 bytes."""
    if is_text(keys):
        return text_hashes(keys, HASH_KEY)  # keyed by the salt itself
    # pandas ignores `hash_key` for integers, so the salt is mixed into the keys themselves.
    salted = np.asarray(keys, dtype=np.int64).view(np.uint64) ^ SALT
    return pd.util.hash_array(salted)


UNUSED = "unused"  # a row in the horizon's gap, or of an entity judged later (unseen_entities)
ENTITY_HASH = "entity hash (salted): all rows of an entity in one split"
LATEST_PERIOD = "event time: train on the earliest rows, validate and test on later periods"


def time_split(
    times: np.ndarray,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    gap_ns: int = 0,
    keys: np.ndarray | None = None,
) -> np.ndarray:
    """`train` / `validation` / `test` by event time (ns): the latest rows are judged.

    Cut-offs fall on distinct times at the fractions' row quantiles, so rows of one instant
    share a split. Training rows within `gap_ns` (the forecast horizon) of the validation
    period, and, when `keys` are given, rows of entities that appear in a judged period, are
    `unused`: a deployed model predicts that far ahead, for entities it may never have seen.
    """
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    times = np.asarray(times, dtype=np.int64)
    labels = np.full(len(times), SPLITS[0], dtype=object)
    if len(times) == 0:
        return labels
    ordered = np.sort(times)
    last = len(ordered) - 1
    validation_from = ordered[min(last, int(len(ordered) * fractions[0]))]
    test_from = ordered[min(last, int(len(ordered) * (fractions[0] + fractions[1])))]
    labels[times >= validation_from] = SPLITS[1]
    labels[times >= test_from] = SPLITS[2]
    training = labels == SPLITS[0]
    labels[training & (times >= validation_from - np.int64(gap_ns))] = UNUSED
    if keys is not None:
        judged_keys = keys[labels != SPLITS[0]]
        labels[(labels == SPLITS[0]) & np.isin(keys, judged_keys)] = UNUSED
    return labels
