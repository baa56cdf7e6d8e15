"""A newcomer's first hour, as they live it: the quick start through `./mlops`, then the UI.

One quick start (`./mlops run`, with no uv on PATH) feeds every test here: its terminal is
clean and tells the progress, the same progress is in Dagster's run log, the MLflow run says
what it is, the report's and drift's plots are inline images the Dagster UI shows (checked in
headless Chromium), and every command the tool and the README print exists.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.servers import free_port

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"
INLINE_PNG = re.compile(r"!\[([^\]]*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")
# What a third party's noise looks like on a terminal: a Python warning or a log line at INFO.
NOISE = re.compile(r"Warning[:\]]|\bINFO\b|DeprecationWarning|BetaWarning")


def _without_uv() -> dict[str, str]:
    """The environment of a fresh machine after the quick start: no uv anywhere on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    env.pop("PYTHONWARNINGS", None)
    env["PATH"] = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if not Path(p, "uv").exists()
    )
    assert shutil.which("uv", path=env["PATH"]) is None
    return env


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory) -> dict:
    """`./mlops run` from another directory, as printed, with no uv on PATH."""
    home = tmp_path_factory.mktemp("first_hour") / "home"
    env = {**_without_uv(), "MLOPS_HOME": str(home)}
    done = subprocess.run(
        [str(ROOT / "mlops"), "run", "--rows", "1500"],
        cwd=tmp_path_factory.mktemp("elsewhere"), env=env,
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return {"home": home, "env": env, "stdout": done.stdout, "stderr": done.stderr}


def test_the_quick_start_terminal_is_clean_and_tells_the_progress(quick_start):
    assert quick_start["stderr"] == ""
    out = quick_start["stdout"]
    assert not NOISE.search(out), out
    for line in (
        "  raw_data: 1,500 rows read from synthetic:",
        "  cleaned_data: 1,500 rows checked: 1,500 clean, 0 quarantined, 0 duplicates removed",
        "  features: 1,500 rows written for Feast",
        "  online store: 1,275 entities written in ",
        "  training set: point-in-time join of 1,500 labels through Feast",
        "  candidate 1/2: xgboost, 5-fold rolling-origin backtest on 1,500 rows",
        "  xgboost: fold 5/5, ",
        "  candidate 2/2: linear, 5-fold rolling-origin backtest on 1,500 rows",
        "  bento: bentoml build of the service with model ",
    ):
        assert line in out, f"{line!r} missing from:\n{out}"
    assert len(out.splitlines()) <= 40, "the quick start fits one screen"


def test_the_run_log_holds_the_same_progress(quick_start):
    instance = dg.DagsterInstance.from_config(str(quick_start["home"] / "dagster"))
    (pipeline,) = instance.get_run_records(dg.RunsFilter(job_name="pipeline_job"))
    messages = [e.user_message for e in instance.all_logs(pipeline.dagster_run.run_id)]
    for expected in ("training set: point-in-time join", "xgboost: fold 1/5", "candidate 2/2"):
        assert any(m.startswith(expected) for m in messages), expected
        assert expected in quick_start["stdout"]


def test_the_mlflow_run_says_what_it_is(quick_start):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{quick_start['home'] / 'mlflow' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("house_prices").experiment_id])
    assert re.fullmatch(
        r"house_prices · mlops run, batch initial · \d{4}-\d\d-\d\d \d\d:\d\d UTC",
        run.info.run_name,
    )


def _inline_pngs(markdown: str) -> dict[str, bytes]:
    return {name: base64.b64decode(data) for name, data in INLINE_PNG.findall(markdown)}


def _report_markdown(home: Path, asset: str) -> str:
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return event.asset_materialization.metadata["report"].value


@pytest.fixture(scope="module")
def drift_markdown(quick_start) -> str:
    """The monitoring job, as the drift sensor launches it, on the quick start's state."""
    script = (
        "from mlops_assets.paths import PlatformPaths, resolve_home\n"
        "from mlops_assets.runner import open_instance, run_pipeline\n"
        "run = run_pipeline(open_instance(PlatformPaths(resolve_home())), job='monitoring_job')\n"
        "assert run.success, run.error\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=quick_start["env"], cwd=ROOT,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return _report_markdown(quick_start["home"], "drift_report")


def test_plots_are_inline_images_in_the_metadata_the_ui_renders(quick_start, drift_markdown):
    report = _report_markdown(quick_start["home"], "validation_report")
    plots = _inline_pngs(report)
    assert set(plots) == {"predicted vs actual", "feature importance"}
    assert all(png.startswith(PNG) and len(png) > 5_000 for png in plots.values())
    folder = next((quick_start["home"] / "models").glob("*/report"))
    on_disk = (folder / "validation_report.md").read_text()
    assert "](predicted_vs_actual.png)" in on_disk and "data:image" not in on_disk
    drift = _inline_pngs(drift_markdown)
    assert list(drift) == ["drift-initial"] and drift["drift-initial"].startswith(PNG)


def test_every_command_printed_by_the_tool_and_the_readme_exists_and_runs(quick_start):
    from mlops_assets.cli import _parser

    subcommands = set(_parser()._subparsers._group_actions[0].choices)
    printed = re.findall(r"\./mlops ([a-z]+)", quick_start["stdout"])
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    documented = re.findall(r"\./mlops ([a-z]+)", "\n".join(p.read_text() for p in pages))
    assert {"ui", "mlflow", "serve", "feast"} <= set(printed)
    assert set(printed) | set(documented) <= subcommands
    assert "uv run mlops" not in (ROOT / "README.md").read_text()
    for command in (["status"], ["history"], ["feast", "feature-views", "list"]):
        done = subprocess.run(
            [str(ROOT / "mlops"), *command], env=quick_start["env"], cwd="/",
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stderr == "", f"./mlops {' '.join(command)}: {done.stderr}"
    assert "house_prices_features" in done.stdout


def _start_ui(quick_start, port: int, log: Path) -> subprocess.Popen:
    with log.open("w") as err:
        return subprocess.Popen(
            [str(ROOT / "mlops"), "ui", "--port", str(port)],
            env=quick_start["env"], stdout=subprocess.PIPE, stderr=err, text=True,
            start_new_session=True,  # its own process group: dagster dev starts children
        )  # fmt: skip


def _wait_for_line(process: subprocess.Popen, text: str, timeout_s: float = 300) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"exited before saying {text!r}: {lines}")
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not said within {timeout_s:.0f} s: {lines}")


def test_the_dagster_ui_shows_the_plots_on_the_asset_pages(quick_start, drift_markdown, tmp_path):
    from tests.browser import BrowserUnavailable, chromium_page

    if shutil.which("chromium") is None:
        if os.environ.get("MLOPS_REQUIRE_SERVERS") == "1":
            pytest.fail("chromium is missing: apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    port = free_port()
    ui = _start_ui(quick_start, port, tmp_path / "ui.err")
    try:
        said = _wait_for_line(ui, f"Dagster UI ready at http://127.0.0.1:{port}")
        shown = {}
        with chromium_page() as page:
            for asset in ("validation_report", "drift_report"):
                page.goto(f"http://127.0.0.1:{port}/assets/{asset}")
                page.wait_for("document.body.innerText.includes('Show Markdown')")
                page.evaluate(SHOW_MARKDOWN)
                shown[asset] = page.wait_for(DECODED_IMAGES, timeout_s=60)
    except BrowserUnavailable as exc:
        if os.environ.get("MLOPS_REQUIRE_SERVERS") == "1":
            pytest.fail(f"chromium could not be driven: {exc}")
        pytest.skip(str(exc))
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
    assert f"Starting Dagster UI on http://127.0.0.1:{port} ...\n" in said
    assert [name for name, _ in shown["validation_report"]] == [
        "predicted vs actual",
        "feature importance",
    ]
    assert [name for name, _ in shown["drift_report"]] == ["drift-initial"]
    assert all(width >= 300 for images in shown.values() for _, width in images)
    stderr = (tmp_path / "ui.err").read_text()
    assert not NOISE.search(stderr), stderr


# Open the metadata's Markdown dialog; then the images in it, once decoded: [alt, pixel width].
SHOW_MARKDOWN = """
[...document.querySelectorAll('*')]
  .find(e => e.children.length === 0 && (e.innerText || '').includes('Show Markdown'))
  .click(); true
"""
DECODED_IMAGES = """
(() => {
  const images = [...document.querySelectorAll('[role=dialog] img')];
  if (!images.length || !images.every(i => i.complete && i.naturalWidth > 0)) return null;
  return images.map(i => [i.alt, i.naturalWidth]);
})()
"""
