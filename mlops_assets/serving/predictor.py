"""The champion as the service holds it: model, spec and lineage, loaded from one folder.

The folder is a BentoML model's directory (written by the `bento_model` asset): the model file
(XGBoost's own format, or the linear model's JSON coefficients, as the manifest's `family`
says), the dataset spec it was trained with, its manifest and its registry facts.
No pickle anywhere on this path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mlops_assets.core.families import Model, load_model_file
from mlops_assets.core.features import arrays_to_matrix, engineer_arrays
from mlops_assets.serving.feature_rows import FeatureRows
from mlops_assets.serving.verification import verify_bundle
from mlops_assets.signing import sign_folder
from mlops_assets.spec import DatasetSpec, Family, load_spec

SPEC_FILE = "dataset_spec.yaml"
MANIFEST_FILE = "manifest.json"
INFO_FILE = "model_info.json"


@dataclass(frozen=True)
class ModelBundle:
    """Everything needed to predict and to say which model answered."""

    model: Model
    spec: DatasetSpec
    manifest: dict[str, Any]
    info: dict[str, Any]

    @property
    def version(self) -> str:
        """The registry version of this model (what every answer carries)."""
        return str(self.info["model_version"])


def load_bundle(folder: Path) -> ModelBundle:
    """Load a bundle written by `write_bundle`, once its signature verified.

    Raises `ModelSignatureError` for a bundle whose files changed after it was signed.
    """
    verify_bundle(folder)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    family = manifest.get("family", Family.XGBOOST)
    return ModelBundle(
        model=load_model_file(folder, family, threads=1),  # one request, one thread
        spec=load_spec(folder / SPEC_FILE),
        manifest=manifest,
        info=json.loads((folder / INFO_FILE).read_text()),
    )


def write_bundle(
    folder: Path,
    model_path: Path,
    spec_path: Path,
    manifest: dict,
    info: dict,
    signing_key: Ed25519PrivateKey,
) -> None:
    """Lay out a bundle folder and sign it (used when exporting the champion to BentoML)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / model_path.name).write_bytes(model_path.read_bytes())
    (folder / SPEC_FILE).write_text(spec_path.read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str))
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2, default=str))
    signed = [model_path.name, SPEC_FILE, MANIFEST_FILE, INFO_FILE]
    sign_folder(folder, signed, signing_key)


class Predictor:
    """Turns validated records (or looked-up feature rows) into predictions."""

    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        self.spec = bundle.spec
        self._features = list(self.spec.feature_columns)
        self._categorical = frozenset(self.spec.categorical_columns)
        self._timestamp = self.spec.event_timestamp
        self._imputation = dict(bundle.manifest.get("imputation") or {})

    def predict_records(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Predictions for validated request records, in order."""
        names = [*self._features, self._timestamp]
        return self.predict_columns({n: [r.get(n) for r in records] for n in names})

    def predict_columns(self, columns: Mapping[str, list[Any]]) -> np.ndarray:
        """Predictions for validated request values, one list per field, in record order."""
        return self.predict_matrix(self.matrix(columns))

    def matrix(self, columns: Mapping[str, list[Any]]) -> np.ndarray:
        """The model matrix of validated request values, one list per field.

        A missing or null imputed field is filled with the value stored in the model's
        manifest, the one its training rows were filled with; a missing event time is now.
        """
        arrays: dict[str, Any] = {}
        for name in self._features:
            values = columns[name]
            if name in self._categorical:
                arrays[name] = values
                continue
            if None in values:
                values = [np.nan if v is None else v for v in values]
            arrays[name] = np.asarray(values, dtype="float64")
        times = _times(columns.get(self._timestamp), len(columns[self._features[0]]))
        features = engineer_arrays(arrays, times, self.spec, self._imputation)
        return arrays_to_matrix(features, self.spec)

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Predictions for a model matrix already in the model's column order."""
        return self.bundle.model.predict(matrix)

    def online_rows(self, source: DatasetSpec) -> FeatureRows:
        """How this model reads online feature rows stored in `source`'s model order."""
        return FeatureRows(source, self.spec, self._imputation)

    def warm(self) -> None:
        """One prediction through the whole request path (a record of missing values).

        Proves that the spec, the feature code and the model file fit together before the
        model answers anyone, and pays the first call's one-off costs here.
        """
        if self.spec.windows.history_features:  # its requests come by key, from stored rows
            width = len(self.spec.model_features)
            predictions = self.predict_matrix(np.full((1, width), np.nan, dtype=np.float32))
        else:
            empty: dict[str, list[Any]] = {name: [None] for name in self._features}
            predictions = self.predict_columns(empty)
        if predictions.shape != (1,):
            raise ValueError(f"one record gave predictions of shape {predictions.shape}")

    def reads_matrix_of(self, other: Predictor) -> bool:
        """Whether `other`'s model matrix is exactly this model's input for the same request.

        True when both engineer the same features the same way (columns, categories and
        their codes, derived columns, stored imputation): a challenger then scores the
        champion's matrix instead of building its own, and can score by-key requests.
        """
        return _matrix_contract(self) == _matrix_contract(other)


def _matrix_contract(predictor: Predictor) -> tuple[Any, ...]:
    spec = predictor.spec
    columns = tuple(spec.column(name) for name in spec.feature_columns)
    return (columns, tuple(spec.derived), tuple(spec.model_features), predictor._imputation)


def _times(values: list[datetime | None] | None, size: int) -> np.ndarray:
    """Event times as naive UTC `datetime64[ns]`, now where a record gave none.

    A naive time is UTC (as the request model reads it); pandas converts the whole list at
    once, several times faster than numpy's conversion of datetime objects one by one.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    if values is None or values.count(None) == size:
        return np.full(size, np.datetime64(now, "ns"))
    given = [now if v is None else v for v in values]
    return pd.to_datetime(given, utc=True).tz_localize(None).as_unit("ns").to_numpy()
