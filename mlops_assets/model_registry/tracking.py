"""MLflow tracking and registry under `MLOPS_HOME`, through dagster-mlflow.

Why a wrapper around dagster-mlflow's `mlflow_tracking` resource rather than the resource
itself: (1) the tracking URI and artifact folder are resolved from the state folder when a run
starts, not from static config, and the experiment is created with an explicit artifact
location (MLflow otherwise writes to `./mlruns` of whatever the working directory is);
(2) dagster-mlflow never ends its MLflow run unless the job carries its hook, which asset
materializations launched from the UI do not, so the next run in the same process reuses the
open run; `run()` here ends it, FINISHED or FAILED, when the asset is done; (3) an unreachable
or failing tracking server becomes one clear `Failure` before any work is done. Inside `run()`
it is dagster-mlflow's `MlFlow` that starts or resumes the MLflow run tagged with the Dagster
run id, exactly as its resource would.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from mlops_assets.model_registry.state_setup import StateSetupError, ensure_mlflow_store
from mlops_assets.profile import active_profile, redact_url
from mlops_assets.resources import MlopsHome


class MlflowTracking(dg.ConfigurableResource):
    """MLflow tracking server and model registry of the platform."""

    home: MlopsHome
    tracking_uri: str = Field(
        default="",
        description=(
            "Empty: the profile's store (SQLite under $MLOPS_HOME/mlflow, or the `mlflow` "
            "database on PostgreSQL in production)."
        ),
    )
    artifact_root: str = Field(
        default="",
        description="Empty: $MLOPS_MLFLOW_ARTIFACTS, else $MLOPS_HOME/mlflow/artifacts.",
    )

    def resolved_uri(self) -> str:
        """The tracking (and registry) URI in force."""
        if self.tracking_uri:
            return self.tracking_uri
        profile = active_profile()
        if profile.is_production:
            pg = profile.require_postgres()
            return pg.url(pg.mlflow_db)
        database = self.home.paths().mlflow_db
        database.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{database}"

    def redacted_uri(self) -> str:
        """The URI with any password masked, for messages and logs."""
        return redact_url(self.resolved_uri())

    def resolved_artifact_root(self) -> str:
        """Where new experiments keep their artifacts (a path or a URI such as s3://)."""
        return (
            self.artifact_root
            or active_profile().mlflow_artifacts
            or str(self.home.paths().mlflow_artifacts)
        )

    def client(self) -> Any:
        """An `MlflowClient` on the platform's server; fails clearly if it cannot be reached."""
        import mlflow

        uri = self.resolved_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            # Created or migrated once, under the state folder's lock (`state_setup.py`).
            ensure_mlflow_store(self.home.paths(), uri, self.resolved_artifact_root())
            client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)
        except StateSetupError:
            raise  # its sentence says what to do; retrying would not help
        except Exception as exc:  # MLflow raises transport and store errors of many types
            reason = str(exc).replace(uri, self.redacted_uri()).splitlines()[0][:300]
            raise dg.Failure(
                description=(
                    f"MLflow tracking at {self.redacted_uri()} is unreachable or failing: {reason}"
                ),
                allow_retries=True,
            ) from exc
        return client

    def ensure_experiment(self, name: str) -> str:
        """The experiment's id, creating it with an explicit artifact location if missing."""
        client = self.client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        root = self.resolved_artifact_root()
        if "://" in root:
            location = f"{root.rstrip('/')}/{name}"
        else:
            location = (Path(root) / name).resolve().as_uri()
        return client.create_experiment(name, artifact_location=location)

    @contextmanager
    def run(
        self, context: dg.AssetExecutionContext, experiment: str, tags: dict[str, str]
    ) -> Iterator[Any]:
        """An MLflow run for this Dagster run (dagster-mlflow's), ended when the block ends."""
        from dagster_mlflow.resources import MlFlow
        from mlflow.entities import RunStatus

        for noisy in ("mlflow.utils.environment", "mlflow.utils.uv_utils"):
            logging.getLogger(noisy).setLevel(logging.ERROR)  # environment capture chatter
        self.ensure_experiment(experiment)
        name = run_name(experiment, context.run.tags, datetime.now(UTC))
        config = {
            "experiment_name": experiment,
            "mlflow_tracking_uri": self.resolved_uri(),
            "extra_tags": {**tags, "mlflow.runName": name},
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dagster-mlflow is marked beta; noted above
            tracker = MlFlow(_InitContext(context, config))
        try:
            yield tracker
        except BaseException:
            tracker.end_run(status=RunStatus.to_string(RunStatus.FAILED))
            raise
        tracker.end_run(status=RunStatus.to_string(RunStatus.FINISHED))


def run_name(dataset: str, tags: Mapping[str, str], when: datetime) -> str:
    """`house_prices · batch b2 ingested · 2026-11-25 20:05 UTC`: what the run is, not its job.

    The trigger is the reason the platform tagged the run with (CLI, sensors, schedule), else
    the sensor, schedule or partition that launched it, else `manual` (the UI's launchpad).
    """
    trigger = (
        tags.get("mlops/reason")  # REASON_TAG of automation/sensors.py (not imported: a cycle)
        or tags.get("dagster/sensor_name")
        or tags.get("dagster/schedule_name")
        or (f"batch {tags['dagster/partition']}" if tags.get("dagster/partition") else "")
        or "manual"
    )
    if len(trigger) > 60:
        trigger = trigger[:59] + "…"
    return f"{dataset} · {trigger} · {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


class _InitContext:
    """The parts of a resource init context that dagster-mlflow's `MlFlow` reads."""

    def __init__(self, context: dg.AssetExecutionContext, config: dict[str, Any]) -> None:
        self.log = context.log
        self.dagster_run = context.run
        self.run_id = context.run_id
        self.resource_config = config
