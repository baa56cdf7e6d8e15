"""Durations written in a spec (`7d`, `12h`, `2w`): parsed once, without heavy imports.

A forecast horizon and a window length are both written this way, so one parser gives one
set of rules and one error message for every duration field.
"""

from __future__ import annotations

import re
from datetime import timedelta

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str | int) -> timedelta:
    """`7d` -> 7 days; a bare 0 is allowed. Raises ValueError naming the accepted forms."""
    if isinstance(text, int) and not isinstance(text, bool) and text == 0:
        return timedelta(0)
    match = _PATTERN.match(str(text)) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write a whole number and a unit, one of "
            f"{', '.join(f'{u} ({n})' for u, n in UNITS.items())}, for example '7d' or '12h'"
        )
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def describe(duration: timedelta) -> str:
    """A duration in days, hours, minutes or seconds (`14d`, `36h`, `0s`): feature names."""
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
