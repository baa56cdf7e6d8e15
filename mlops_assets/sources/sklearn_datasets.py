"""Tabular datasets that ship inside scikit-learn, as a second shape of data for the platform."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlops_assets.sources.base import SourceError

LOADERS = {
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
    "wine_binary": "load_wine",
    "wine": "load_wine",
}
# The binary wine set keeps its first two cultivars (130 rows); `wine` keeps all three.
KEEP_CLASSES = {"wine_binary": (0, 1)}


def snake_case(name: str) -> str:
    """Column names as a spec can use them: lower case, words joined by underscores."""
    return "_".join(name.strip().lower().replace("-", " ").replace("/", " ").split())


@dataclass(frozen=True)
class SklearnSource:
    """A dataset bundled with scikit-learn (no download), with snake_case column names."""

    dataset: str

    def describe(self) -> str:
        """Name the bundled dataset."""
        return f"sklearn:{self.dataset}"

    def load(self) -> pd.DataFrame:
        """Load the bundled frame; the label column is called `target`."""
        if self.dataset not in LOADERS:
            raise SourceError(
                f"unknown scikit-learn dataset {self.dataset!r}; known: {sorted(LOADERS)}"
            )
        from sklearn import datasets  # deferred: importing scikit-learn costs about a second

        bunch = getattr(datasets, LOADERS[self.dataset])(as_frame=True)
        frame = bunch.frame.copy()
        frame.columns = [snake_case(str(c)) for c in frame.columns]
        if self.dataset in KEEP_CLASSES:
            frame = frame.loc[frame["target"].isin(KEEP_CLASSES[self.dataset])]
        return frame.reset_index(drop=True)
