"""Progress of long work: what a step is doing and how far it is, in the run log and terminal.

A step says a handful of lines (rows read, rows written, fold k of K, trial k of N, boosting
round r at intervals), never one per row. Each line goes to Dagster's run log
(`context.log`, shown on the run's page in the UI) and to the `mlops.progress` Python logger,
which the `mlops` CLI prints; elsewhere that logger has no handler and stays silent. Core
functions take a plain `Progress` callable, so they stay free of Dagster.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

Progress = Callable[[str], None]
LOGGER = "mlops.progress"


def silent(message: str) -> None:
    """The default: say nothing (direct calls of the core, tests)."""


def reporter(context: Any) -> Progress:
    """Progress of a Dagster step: its run log, and the terminal when the CLI runs it."""
    logger = logging.getLogger(LOGGER)

    def report(message: str) -> None:
        context.log.info(message)
        logger.info(message)

    return report


def show_on_terminal() -> None:
    """Print `mlops.progress` lines on stdout, indented under the CLI's own lines. Idempotent."""
    logger = logging.getLogger(LOGGER)
    if any(getattr(h, "_mlops_progress", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("  %(message)s"))
    handler._mlops_progress = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
