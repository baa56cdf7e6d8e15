"""Materialize some of the platform's assets in their own process (the crash tests kill it).

Executed the way Dagster runs a job, without the CLI's process tags, so a run killed here is
found through the pid Dagster records in the run's own event log.
"""

import json
import os
import sys

import dagster as dg

from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.runner import failure_message, open_instance

RUN_CONFIG_ENV = "MLOPS_TEST_RUN_CONFIG"  # JSON run config for the materialization


def main(selection: list[str]) -> int:
    """Materialize `selection` against the state folder's instance; exit 0 on success."""
    from mlops_assets.definitions import defs

    instance = open_instance(PlatformPaths(resolve_home()))
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(name) for name in selection],
        run_config=json.loads(os.environ.get(RUN_CONFIG_ENV, "{}")),
        raise_on_error=False,
    )
    print(result.run_id if result.success else failure_message(result))  # noqa: T201 - read by the test
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
