"""Ingest one batch in its own process, so a test can kill it with SIGKILL mid-run."""

import json
import sys

from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.runner import ingest_batch, open_instance


def main(batch: str, source: str) -> int:
    """Ingest `batch` from the JSON source config; the exit code says whether it succeeded."""
    instance = open_instance(PlatformPaths(resolve_home()))
    run = ingest_batch(instance, batch, json.loads(source))
    print(run.error or f"{batch}: ok")  # noqa: T201 - the test reads it
    return 0 if run.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
