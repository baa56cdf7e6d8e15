"""What live performance is measured on: logged predictions with an entity key, and labels.

A prediction can be judged only if the log says which entity it was for: by-key requests always
do, and records that carry the entity key field. A label is a cleaned batch's target for an
entity; it became known when its batch was ingested (the batch manifest's `ingested_at`).
"""

from __future__ import annotations

import json

import pandas as pd

from mlops_assets.core.live_performance import KEY, KNOWN_AT, LABEL, PREDICTED_AT, PREDICTION
from mlops_assets.core.storage import read_json
from mlops_assets.features.inputs import cleaned_batch_paths
from mlops_assets.paths import PlatformPaths
from mlops_assets.spec import DatasetSpec


def keyed_predictions(paths: PlatformPaths, spec: DatasetSpec) -> tuple[pd.DataFrame, int]:
    """(logged predictions that name their entity, how many logged rows did not)."""
    folder = paths.predictions
    rows, unkeyed = [], 0
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            key = (entry.get("inputs") or {}).get(spec.entity_key)
            if key is None:
                unkeyed += 1
                continue
            rows.append((key, entry["timestamp"], str(entry["model_version"]), entry["output"]))
    frame = pd.DataFrame(rows, columns=[KEY, PREDICTED_AT, "model_version", PREDICTION])
    frame[PREDICTED_AT] = pd.to_datetime(frame[PREDICTED_AT], utc=True, format="ISO8601")
    frame[KEY] = frame[KEY].astype("int64")
    frame[PREDICTION] = frame[PREDICTION].astype("float64")
    return frame, unkeyed


def known_labels(paths: PlatformPaths, spec: DatasetSpec) -> pd.DataFrame:
    """Every cleaned row's label, with the time its batch was ingested."""
    frames = []
    for path in cleaned_batch_paths(paths):
        known = read_json(paths.manifest(path.stem))["ingested_at"]
        batch = pd.read_parquet(path, columns=[spec.entity_key, spec.target])
        frames.append(
            pd.DataFrame(
                {
                    KEY: batch[spec.entity_key].astype("int64"),
                    KNOWN_AT: pd.Timestamp(known).tz_convert("UTC"),
                    LABEL: batch[spec.target].astype("float64"),
                }
            )
        )
    if not frames:
        return pd.DataFrame({KEY: [], KNOWN_AT: pd.to_datetime([], utc=True), LABEL: []})
    return pd.concat(frames, ignore_index=True)
