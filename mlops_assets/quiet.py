"""Third-party noise kept off the terminal: one list, applied in every process the platform starts.

Each entry names a warning or log line that the user cannot act on (a library warning about
another library's API, a table-creation notice) by its category, module and message, so
anything else, and every message of our own, still shows. `apply()` quiets the process it runs
in; `child_environment()` carries the same list to every process started from it (`dagster
dev` and its code servers and runs, `mlflow ui`, `bentoml serve`, the feast CLI) through
`PYTHONWARNINGS` and `MLFLOW_LOGGING_LEVEL`, which Python and MLflow read at start-up. The code
location calls `apply()` too, so runs launched from the UI are as quiet as runs from the CLI.
"""

from __future__ import annotations

import logging
import os
import re
import runpy
import sys
import warnings
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Noise:
    """One warning we hide: category (a built-in base class), message start, module."""

    category: type[Warning]
    message: str  # the start of the message, matched literally (no ':' or ',' in it)
    module: str  # the module the warning is attributed to; "" for any
    why: str

    def option(self) -> str:
        """The entry in `-W` / `PYTHONWARNINGS` form: action:message:category:module."""
        return f"ignore:{self.message}:{self.category.__name__}:{self.module}"

    def matches(self, category: type[Warning], message: str, module: str) -> bool:
        """True when a raised warning is this one (same test as Python's filter)."""
        return (
            issubclass(category, self.category)
            and message.lower().startswith(self.message.lower())
            and (not self.module or module == self.module)
        )


WARNINGS: tuple[Noise, ...] = (
    Noise(
        Warning,
        "Function `_create_mlflow_run_hook` is currently in beta",
        "dagster_mlflow.hooks",
        "dagster-mlflow marks its own hook factory as beta at import",
    ),
    Noise(
        FutureWarning,
        "Function `dev_command` is superseded",
        "",
        "`dagster dev` suggests `dg dev`, a separate tool the platform does not use",
    ),
    Noise(
        DeprecationWarning,
        "GitWildMatchPattern ('gitwildmatch') is deprecated",
        "",
        "pathspec on the API BentoML calls while building a bento",
    ),
    Noise(
        DeprecationWarning,  # SQLAlchemy's SADeprecationWarning
        "The ``noload`` loader strategy is deprecated",
        "mlflow.store.tracking.sqlalchemy_store",
        "SQLAlchemy on a query inside MLflow's tracking store",
    ),
    Noise(
        DeprecationWarning,
        "InitResourceContext.dagster_run is deprecated",
        "dagster._core.execution.context.init",
        "Dagster calling its own deprecated property when it builds a resource context",
    ),
    Noise(
        DeprecationWarning,
        "fetch_arrow_table() is deprecated",
        "ibis.backends.duckdb",
        "ibis on the DuckDB API it calls for Feast's DuckDB offline store",
    ),
    Noise(
        UserWarning,  # starlette's StarletteDeprecationWarning
        "starlette.middleware.wsgi is deprecated",
        "mlflow.server.fastapi_app",
        "Starlette on the module MLflow's server imports, once per worker",
    ),
)


@dataclass(frozen=True)
class LogNoise:
    """One log line we hide: logger name and message start (matched at any level below ERROR)."""

    logger: str
    message: str
    why: str


LOG_LINES: tuple[LogNoise, ...] = (
    LogNoise(
        "mlflow.store.db.utils",
        "",
        "MLflow announces creating and migrating its own tables on first use",
    ),
    LogNoise("alembic.runtime.migration", "", "the migrations behind those tables"),
    LogNoise(
        "feast.repo_config",
        "`serve_features_while_materializing` is enabled but `registry_type` is 'file'",
        "deliberate in feature_store.yaml: readers keep serving while `feast materialize` "
        "runs, which Feast honours with a file registry too, and the setting carries over "
        "when the registry moves to SQL",
    ),
    LogNoise(
        "feast.infra.offline_stores.offline_utils",
        "Using ",
        "Feast's notice that it took the labels' event-time column, which the platform chose",
    ),
    LogNoise(
        "feast.infra.offline_stores.dask",
        "Using ",
        "the same notice from Feast's Dask offline store",
    ),
)


class _LogFilter(logging.Filter):
    def __init__(self, noises: list[LogNoise]) -> None:
        super().__init__()
        self.prefixes = tuple(n.message for n in noises)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return not record.getMessage().startswith(self.prefixes)


def apply() -> None:
    """Quiet this process: warning filters, a guard behind them, and the log filters.

    Feast re-inserts `once` filters for `DeprecationWarning` ahead of every other filter when
    it is imported, so filters alone do not hold: the guard around `showwarning` drops the
    listed warnings whatever filter let them through. Idempotent.
    """
    for noise in WARNINGS:
        warnings.filterwarnings(
            "ignore",
            message=re.escape(noise.message),
            category=noise.category,
            module=re.escape(noise.module) + r"\Z" if noise.module else "",
        )
    if not getattr(warnings.showwarning, "_mlops_quiet", False):
        warnings.showwarning = _guarded(warnings.showwarning)
    by_logger: dict[str, list[LogNoise]] = {}
    for line in LOG_LINES:
        by_logger.setdefault(line.logger, []).append(line)
    for name, noises in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _LogFilter) for f in logger.filters):
            logger.addFilter(_LogFilter(noises))


def _guarded(show: Any) -> Any:
    def showwarning(message, category, filename, lineno, file=None, line=None):
        module = _module_of(filename)
        if any(n.matches(category, str(message), module) for n in WARNINGS):
            return None
        return show(message, category, filename, lineno, file, line)

    showwarning._mlops_quiet = True  # type: ignore[attr-defined]
    return showwarning


def _module_of(filename: str) -> str:
    """`.../site-packages/dagster_mlflow/hooks.py` -> `dagster_mlflow.hooks`."""
    path = filename.replace(os.sep, "/")
    if "/site-packages/" in path:
        path = path.rsplit("/site-packages/", 1)[1]
    return path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def child_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """`environ` (default: this process's) with the same quieting for processes started from it.

    A user's own `PYTHONWARNINGS` entries are kept and come last, so they take precedence.
    """
    env = dict(os.environ if environ is None else environ)
    ours = ",".join(n.option() for n in WARNINGS)
    given = env.get("PYTHONWARNINGS", "")
    if ours not in given:
        env["PYTHONWARNINGS"] = f"{ours},{given}" if given else ours
    env.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    return env


def run_module(argv: list[str]) -> None:
    """`python -m mlops_assets.quiet MODULE ARGS...`: run MODULE as `python -m` would, quieted.

    For the third-party commands the CLI starts (the feast CLI), whose own log lines
    `PYTHONWARNINGS` cannot reach.
    """
    module, *arguments = argv
    apply()
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    run_module(sys.argv[1:])
