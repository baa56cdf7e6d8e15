"""Third-party noise is hidden precisely, in this process and in the processes it starts.

Each check runs a fresh interpreter: warning filters are process state, and pytest's own
filters would hide what is under test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from mlops_assets import quiet

RAISE_EVERY_LISTED = """
import warnings
from mlops_assets.quiet import WARNINGS
for noise in WARNINGS:
    module = noise.module or "lib"
    where = "/venv/lib/site-packages/" + module.replace(".", "/") + ".py"
    warnings.warn_explicit(noise.message + " (more text)", noise.category, where, 1, module=module)
warnings.warn_explicit("our own deprecation", DeprecationWarning, "x.py", 1, module="lib")
warnings.warn_explicit("another library's warning", UserWarning, "y.py", 2, module="other")
"""


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, check=False,
        env=env or {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"},
    )  # fmt: skip


def test_child_processes_hide_the_listed_warnings_and_show_the_rest():
    env = quiet.child_environment({"PATH": os.environ["PATH"], "PYTHONPATH": os.getcwd()})
    shown = _python("import warnings; warnings.simplefilter('default')\n" + RAISE_EVERY_LISTED)
    assert shown.stderr.count("(more text)") == len(quiet.WARNINGS), shown.stderr
    done = _python(RAISE_EVERY_LISTED, env)
    assert done.returncode == 0, done.stderr
    assert "Invalid -W option" not in done.stderr
    assert "(more text)" not in done.stderr
    assert "another library's warning" in done.stderr


def test_a_users_own_pythonwarnings_are_kept_and_win():
    env = quiet.child_environment({"PYTHONWARNINGS": "error::UserWarning"})
    assert env["PYTHONWARNINGS"].endswith(",error::UserWarning")
    assert quiet.child_environment(env)["PYTHONWARNINGS"] == env["PYTHONWARNINGS"]


def test_the_listed_warnings_stay_hidden_after_feast_reorders_the_filters():
    setup = """
        import warnings
        from mlops_assets import quiet
        quiet.apply()
        warnings.simplefilter("once", DeprecationWarning)  # what `import feast` does
        warnings.simplefilter("default", UserWarning)
    """
    done = _python(textwrap.dedent(setup) + RAISE_EVERY_LISTED)
    assert done.returncode == 0, done.stderr
    assert "(more text)" not in done.stderr
    assert "our own deprecation" in done.stderr
    assert "another library's warning" in done.stderr


def test_listed_log_lines_are_dropped_and_others_kept():
    done = _python(
        """
        import logging
        from mlops_assets import quiet
        logging.basicConfig(level=logging.INFO)
        quiet.apply()
        logging.getLogger("mlflow.store.db.utils").info("Creating initial MLflow database tables")
        logging.getLogger("feast.repo_config").warning(
            "`serve_features_while_materializing` is enabled but `registry_type` is 'file'. x"
        )
        logging.getLogger("feast.repo_config").warning("a different Feast warning")
        logging.getLogger("feast.infra.offline_stores.dask").info("Using ingested_at as the event")
        logging.getLogger("mlflow.store.db.utils").error("a real MLflow error")
        """
    )
    assert "Creating initial" not in done.stderr
    assert "serve_features_while_materializing" not in done.stderr
    assert "Using ingested_at" not in done.stderr
    assert "a different Feast warning" in done.stderr
    assert "a real MLflow error" in done.stderr
