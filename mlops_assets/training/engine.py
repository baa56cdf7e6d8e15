"""Where XGBoost trains: in the `model` step's own process, or on a Dask cluster.

A deployment setting, not part of the data contract: the same spec trains in process on a
laptop and on a Dask cluster in Kubernetes, so the choice lives in a resource (and
`$MLOPS_DASK_SCHEDULER`), not in the spec's `training:` section. The cluster is reached before
anything is tracked or saved, so an unreachable one fails the step at once, with the address
and the setting in the message, and leaves the registry and the champion as they were.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
from pydantic import Field

from mlops_assets.core.training import Fit

SCHEDULER_ENV = "MLOPS_DASK_SCHEDULER"
IN_PROCESS = "in process"


class EngineUnreachable(RuntimeError):
    """The configured Dask cluster cannot train; the message names its address and setting."""


@dataclass(frozen=True)
class Engine:
    """The engine in force for one run: how to say it, and its `Fit` (None: in process)."""

    description: str
    fit: Fit | None = None


class TrainingEngine(dg.ConfigurableResource):
    """Train XGBoost in the step's process (default) or on the Dask cluster at an address."""

    dask_scheduler: str = Field(
        default="",
        description="Dask scheduler address (tcp://host:8786). Empty: $MLOPS_DASK_SCHEDULER, "
        "else XGBoost trains in the step's own process.",
    )
    connect_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long to wait for the scheduler and a first worker before failing.",
    )

    def scheduler(self) -> tuple[str, str]:
        """The scheduler address in force and the setting it came from (empty: in process)."""
        if self.dask_scheduler.strip():
            return self.dask_scheduler.strip(), "resource training_engine.dask_scheduler"
        return os.environ.get(SCHEDULER_ENV, "").strip(), f"${SCHEDULER_ENV}"

    @contextmanager
    def connect(self) -> Iterator[Engine]:
        """The engine for one run; a cluster's client is closed when the run's training ends."""
        address, setting = self.scheduler()
        if not address:
            yield Engine(IN_PROCESS)
            return
        from distributed import Client

        from mlops_assets.core.dask_training import DaskFit

        timeout = self.connect_timeout_seconds
        try:
            client = Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise EngineUnreachable(
                f"the Dask scheduler at {address} did not answer within {timeout:g} s "
                f"(set by {setting}): start the cluster, correct the address, or leave the "
                "setting empty to train in the step's own process"
            ) from exc
        try:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (OSError, TimeoutError) as exc:
                raise EngineUnreachable(
                    f"the Dask scheduler at {address} (set by {setting}) has no worker after "
                    f"{timeout:g} s: start workers for it or leave the setting empty"
                ) from exc
            workers = len(client.scheduler_info()["workers"])
            yield Engine(f"Dask cluster at {address} ({workers} workers)", DaskFit(client))
        finally:
            client.close()
