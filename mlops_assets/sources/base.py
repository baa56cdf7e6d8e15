"""The one interface every data source implements, and its error type."""

from __future__ import annotations

from typing import Protocol

import pandas as pd


class SourceError(ValueError):
    """A source that cannot deliver data; the message names the source and the problem."""


class DataSource(Protocol):
    """Something that delivers one batch of rows as a DataFrame, as delivered."""

    def describe(self) -> str:
        """A short human-readable name of where the rows come from (for metadata)."""
        ...

    def load(self) -> pd.DataFrame:
        """Read the batch; raise `SourceError` naming the source and the problem."""
        ...
