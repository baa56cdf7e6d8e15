"""How a model reads the online store's feature rows: the model matrix of a by-key request.

A by-key request carries no values, only keys; its features are the online store's rows,
engineered with the spec the store was materialized with (the service's lookup returns them in
that spec's model order, categories as that spec's codes) and with imputed columns already
filled by the feature run that wrote them. Any model whose features are all there, defined the
same way, can score them, whatever fill values its own manifest stores: `FeatureRows` picks its
columns in its own order, translates category codes to its own category order, and fills a
value still missing in one of its imputed columns with its own stored value (what a request
leaving that field out would get). A derived column keeps the value the store computed.

A model needing a feature the store does not hold, or one defined differently (another
expression, dtype or category list it cannot translate), cannot read the rows: `problem` says
which, and nothing is guessed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_assets.spec import DatasetSpec, DType


class UnreadableRows(ValueError):
    """A model cannot score the online store's rows; the message says which feature."""


class FeatureRows:
    """Online feature rows (in `source`'s model order) as one model's matrix."""

    def __init__(self, source: DatasetSpec, target: DatasetSpec, imputation: dict[str, Any]):
        self.problem = _problem(source, target)
        names = list(source.model_features)
        wanted = list(target.model_features)
        self._columns = [] if self.problem else [names.index(n) for n in wanted]
        self._reorder = self._columns != list(range(len(names)))
        self._codes = {} if self.problem else _code_maps(source, target)
        self._fills = _fills(target, imputation)
        self._filled_source = [self._columns[p] for p in self._fills] if self._columns else []

    @property
    def readable(self) -> bool:
        """Whether the target model can score these rows at all."""
        return not self.problem

    def matrix(self, rows: np.ndarray) -> np.ndarray:
        """The target model's matrix of `rows`; raises `UnreadableRows` when it has none."""
        if self.problem:
            raise UnreadableRows(self.problem)
        if not (self._reorder or self._codes or self._has_gaps(rows)):
            return rows  # the usual case: nothing to translate, nothing to copy
        matrix = rows[:, self._columns] if self._reorder else rows.copy()
        for position, codes in self._codes.items():
            column = matrix[:, position]
            known = ~np.isnan(column)
            column[known] = codes[column[known].astype(np.int64)]
        for position, fill in self._fills.items():
            column = matrix[:, position]
            column[np.isnan(column)] = fill
        return matrix

    def _has_gaps(self, rows: np.ndarray) -> bool:
        """Whether an imputed column this model fills is missing somewhere in `rows`."""
        if not self._fills:
            return False
        return bool(np.isnan(rows[:, self._filled_source]).any())


def _problem(source: DatasetSpec, target: DatasetSpec) -> str:
    """Why the target cannot read the source's rows ('' when it can)."""
    stored = set(source.model_features)
    missing = [n for n in target.model_features if n not in stored]
    if missing:
        return f"it needs features the online store does not hold: {missing}"
    expressions = {d.name: d.expr for d in source.derived}
    for derived in target.derived:
        if expressions.get(derived.name) != derived.expr:
            return f"it computes {derived.name!r} differently from the online store"
    for name in target.feature_columns:
        if name in expressions:
            return f"the online store holds {name!r} as a derived column, the model as a field"
        mine, theirs = target.column(name), source.column(name)
        if (mine.dtype == DType.CATEGORY) != (theirs.dtype == DType.CATEGORY):
            return f"{name!r} is categorical in one spec and not in the other"
    return ""


def _code_maps(source: DatasetSpec, target: DatasetSpec) -> dict[int, np.ndarray]:
    """For each categorical feature whose category order differs: source code -> target code."""
    maps = {}
    for position, name in enumerate(target.model_features):
        if name not in target.categorical_columns:
            continue
        theirs = list(source.column(name).categories or ())
        mine = list(target.column(name).categories or ())
        if theirs != mine:
            maps[position] = np.array(
                [float(mine.index(c)) if c in mine else np.nan for c in theirs]
            )
    return maps


def _fills(target: DatasetSpec, imputation: dict[str, Any]) -> dict[int, float]:
    """Position and fill value of each imputed feature with a stored one (categories: a code)."""
    fills = {}
    for position, name in enumerate(target.model_features):
        value = imputation.get(name)
        if name not in target.imputed_columns or value is None:
            continue
        if name in target.categorical_columns:
            categories = list(target.column(name).categories or ())
            if value in categories:
                fills[position] = float(categories.index(value))
        else:
            fills[position] = float(value)
    return fills
