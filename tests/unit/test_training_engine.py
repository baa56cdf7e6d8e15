"""Which engine the `model` step trains on: the resource's address, else the environment's."""

import pytest

from mlops_assets.training.engine import IN_PROCESS, SCHEDULER_ENV, TrainingEngine


def test_no_address_trains_in_process(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with TrainingEngine().connect() as engine:
        assert (engine.description, engine.fit) == (IN_PROCESS, None)


def test_the_environment_names_the_scheduler_when_the_resource_does_not(monkeypatch):
    monkeypatch.setenv(SCHEDULER_ENV, " tcp://scheduler.internal:8786 ")
    assert TrainingEngine().scheduler() == ("tcp://scheduler.internal:8786", f"${SCHEDULER_ENV}")
    resource = TrainingEngine(dask_scheduler="tcp://other:8786")
    assert resource.scheduler() == ("tcp://other:8786", "resource training_engine.dask_scheduler")


def test_the_timeout_must_be_positive():
    with pytest.raises(ValueError, match="connect_timeout_seconds"):
        TrainingEngine(connect_timeout_seconds=0)
