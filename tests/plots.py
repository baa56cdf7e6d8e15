"""What a report's plot shows, read back from its PNG: what a reader of the plot relies on."""

from pathlib import Path

import numpy as np
from matplotlib import image


def bar_lengths(path: Path, colour: tuple[int, int, int]) -> list[int]:
    """The length in pixels of each horizontal bar of one colour in a PNG, top to bottom."""
    pixels = (image.imread(path)[..., :3] * 255).round().astype(int)
    bar = np.all(np.abs(pixels - colour) <= 2, axis=-1)
    rows = np.flatnonzero(bar.any(axis=1))
    groups = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    return [int(bar[group].sum(axis=1).max()) for group in groups]
