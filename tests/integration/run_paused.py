"""Materialize some assets in their own process, pausing after one until told to go on.

The test of two pipeline runs in flight starts one run here, lets it stop right after `model`,
runs a whole other pipeline meanwhile, and then lets the first one continue. The pause is a
Dagster success hook, so the run is a real run of the platform's assets and nothing else.
"""

import json
import os
import sys
import time
from pathlib import Path

import dagster as dg

from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.runner import failure_message, open_instance

PAUSE_ENV = "MLOPS_TEST_PAUSE"  # JSON: {"after": asset, "reached": file, "resume": file}
RUN_CONFIG_ENV = "MLOPS_TEST_RUN_CONFIG"
WAIT_S = 600


def pause_after(asset: str, reached: Path, resume: Path) -> dg.HookDefinition:
    """A hook that, once `asset` succeeded, says so in `reached` and waits for `resume`."""

    @dg.success_hook
    def pause(context: dg.HookContext) -> None:
        if context.op.name != asset:
            return
        reached.write_text(context.run_id)
        deadline = time.monotonic() + WAIT_S
        while not resume.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{resume} never appeared")
            time.sleep(0.1)

    return pause


def main(selection: list[str]) -> int:
    """Materialize `selection`, pausing as $MLOPS_TEST_PAUSE says; prints the run id."""
    from mlops_assets.definitions import defs

    pause = json.loads(os.environ[PAUSE_ENV])
    hook = pause_after(pause["after"], Path(pause["reached"]), Path(pause["resume"]))
    job = dg.define_asset_job("paused_job", selection=selection, hooks={hook})
    resolved = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("paused_job")
    result = resolved.execute_in_process(
        instance=open_instance(PlatformPaths(resolve_home())),
        run_config=json.loads(os.environ.get(RUN_CONFIG_ENV, "{}")),
        raise_on_error=False,
    )
    print(result.run_id if result.success else failure_message(result))  # noqa: T201 - read by the test
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
