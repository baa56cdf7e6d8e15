"""Bounds on what goes into Dagster's event log, where one delivered value can be a megabyte.

Every value, name or table sample that comes from delivered data passes through `bounded`
(values, lists, dicts, messages) or `sample_markdown` (a few rows of a table) before it becomes
metadata or a failure message. The event log keeps every record forever and the UI loads them
whole, so a record must stay small whatever a batch holds.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

MAX_VALUE_CHARS = 200
MAX_MESSAGE_CHARS = 4_000
MAX_ITEMS = 100
SAMPLE_ROWS = 10
SAMPLE_COLUMNS = 40
MAX_SAMPLE_BYTES = 16_384


def truncate(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """`text` cut to `limit` characters, with a marker that says how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[truncated, {len(text)} chars]"


def bounded(value: Any, limit: int = MAX_VALUE_CHARS) -> Any:
    """A metadata value with every string cut to `limit` and every list or dict capped."""
    if isinstance(value, str):
        return truncate(value, limit)
    if isinstance(value, dict):
        items = list(value.items())
        kept = {truncate(str(k)): bounded(v, limit) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            kept["…"] = f"[{len(items) - MAX_ITEMS} more entries]"
        return kept
    if isinstance(value, list | tuple):
        kept_items = [bounded(v, limit) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            kept_items.append(f"…[{len(value) - MAX_ITEMS} more items]")
        return kept_items
    return value


def message(text: str) -> str:
    """A failure or check description, which may quote delivered names or values."""
    return truncate(text, MAX_MESSAGE_CHARS)


def sample_markdown(
    frame: pd.DataFrame,
    empty: str = "No rows.",
    rows: int = SAMPLE_ROWS,
    max_bytes: int = MAX_SAMPLE_BYTES,
) -> str:
    """The first rows of `frame` as Markdown, each cell truncated, at most `max_bytes` long."""
    if frame.empty:
        return empty
    head = frame.iloc[:rows, :SAMPLE_COLUMNS].astype("string").fillna("<NA>")
    cells = head.map(truncate)
    cells.columns = [truncate(str(c)) for c in cells.columns]
    text = cells.to_markdown(index=False)
    while len(text.encode()) > max_bytes and len(cells) > 1:
        cells = cells.iloc[:-1]
        text = cells.to_markdown(index=False)
    if len(text.encode()) > max_bytes:
        text = text.encode()[:max_bytes].decode(errors="ignore") + "…[sample cut]"
    shown_columns = min(frame.shape[1], SAMPLE_COLUMNS)
    if len(cells) < len(frame) or shown_columns < frame.shape[1]:
        text += (
            f"\n\n{len(cells)} of {len(frame):,} rows and {shown_columns} of "
            f"{frame.shape[1]} columns shown"
        )
    return text
