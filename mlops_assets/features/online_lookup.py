"""Online feature lookup for serving: entity keys in, model-ordered feature rows out.

Reads go through the online store's own `online_read` (the same path `get_online_features`
uses, minus its request-building overhead), so whatever store the repo configures (SQLite by
default, Redis in production) serves them. Unknown keys are reported by name, never turned
into rows of NaN that a model would happily score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.features import feast_internals
from mlops_assets.features.feast_repo import FeastNames
from mlops_assets.spec import DatasetSpec

if TYPE_CHECKING:
    from feast import FeatureStore


class UnknownEntityError(KeyError):
    """Some requested entity keys have no features in the online store."""

    def __init__(self, keys: Sequence[Any]) -> None:
        super().__init__(f"unknown entity keys: {list(keys)}")
        self.keys = list(keys)


@dataclass(frozen=True)
class LookupResult:
    """Model-ordered features of the known keys, and the keys that were not found."""

    keys: list[int] | list[str]
    matrix: np.ndarray
    unknown: list[int] | list[str]

    def require_all(self) -> LookupResult:
        """Raise `UnknownEntityError` naming the keys that were not found."""
        if self.unknown:
            raise UnknownEntityError(self.unknown)
        return self


class OnlineFeatureLookup:
    """Looks up a dataset's features by entity key in the online store."""

    def __init__(self, store: FeatureStore, spec: DatasetSpec) -> None:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        self._entity_key_proto, self._value_proto = EntityKey, Value
        self._store, self._spec = store, spec
        self._key_type = str if spec.text_entity_key else int
        self._value_field = "string_val" if spec.text_entity_key else "int64_val"
        self._view = store.get_feature_view(FeastNames.for_spec(spec).view)
        self._provider = feast_internals.provider(store)
        self._features = list(spec.model_features)
        self._categories = {  # Feast holds categories as text, integer ones included
            name: {
                str(value): float(code)
                for code, value in enumerate(spec.column(name).categories or ())
            }
            for name in spec.categorical_columns
        }

    @property
    def feature_names(self) -> list[str]:
        """Column order of the returned matrices (the model's input order)."""
        return list(self._features)

    def lookup(self, keys: Sequence[int] | Sequence[str]) -> LookupResult:
        """Features of `keys` as a float matrix in model order (categories as spec codes).

        Keys are integers or text, as the spec's entity key is.
        """
        keys = [self._key_type(k) for k in keys]
        entity_keys = [self._entity_key(k) for k in keys]
        rows = self._provider.online_read(
            config=self._store.config,
            table=self._view,
            entity_keys=entity_keys,
            requested_features=list(self._features),  # Feast's Redis store appends to it
        )
        found, matrix_rows, unknown = [], [], []
        for key, (_, values) in zip(keys, rows, strict=True):
            if not _has_values(values):  # SQLite answers None, Redis a row of unset values
                unknown.append(key)
                continue
            found.append(key)
            matrix_rows.append([self._as_float(name, values.get(name)) for name in self._features])
        matrix = np.asarray(matrix_rows, dtype=np.float32).reshape(len(found), len(self._features))
        return LookupResult(keys=found, matrix=matrix, unknown=unknown)

    def _entity_key(self, key: int | str) -> Any:
        value = self._value_proto(**{self._value_field: key})
        return self._entity_key_proto(join_keys=[self._spec.entity_key], entity_values=[value])

    def _as_float(self, name: str, value: Any) -> float:
        if value is None:
            return np.nan
        kind = value.WhichOneof("val")
        if kind is None:
            return np.nan
        if kind == "string_val":
            return self._categories.get(name, {}).get(value.string_val, np.nan)
        return float(getattr(value, kind))


def _has_values(values: dict[str, Any] | None) -> bool:
    return bool(values) and any(v.WhichOneof("val") is not None for v in values.values())
