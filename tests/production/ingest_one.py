"""Ingest one synthetic batch in its own process (the concurrency test starts several)."""

import sys

from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.runner import ingest_batch, open_instance


def main(batch: str, rows: int) -> int:
    """Ingest `rows` synthetic rows as `batch`; the exit code says whether it succeeded."""
    instance = open_instance(PlatformPaths(resolve_home()))
    run = ingest_batch(instance, batch, {"kind": "synthetic", "rows": rows, "seed": rows})
    print(run.error or f"{batch}: ok")  # noqa: T201 - the test reads it
    return 0 if run.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
