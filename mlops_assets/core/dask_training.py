"""XGBoost on a Dask cluster: the same booster as in process, trained by the cluster's workers.

The rows are cut into one block per worker and each block is sent to its worker; `xgboost.dask`
trains one booster over all of them (each worker builds the gradient histograms of its own
rows, the workers all-reduce them), with early stopping on validation rows placed the same way.
What comes back is a plain `xgb.Booster`, trimmed to its best iteration by the same function as
a booster trained in process, so the model file, the report, the gates, the registry and
serving cannot tell which engine trained it.

Round progress travels as Dask events: the step's logger cannot be sent to a worker, so the
first worker publishes the round lines and the client hands them to the step's own `Progress`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xgboost as xgb

from mlops_assets.core.features import feature_types
from mlops_assets.core.training import RoundsProgress, TrainedModel, TrainParams, trimmed_model
from mlops_assets.spec import DatasetSpec

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class DaskFit:
    """A `Fit` (see `training.py`) that trains each booster on the cluster of `client`."""

    client: Client

    def __call__(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_validation: np.ndarray,
        y_validation: np.ndarray,
        spec: DatasetSpec,
        params: TrainParams,
        callbacks: list[xgb.callback.TrainingCallback] | None = None,
    ) -> TrainedModel:
        """One booster with early stopping, trained by every worker, trimmed like in process."""
        from xgboost import dask as dxgb

        client = self.client
        workers = sorted(client.scheduler_info()["workers"])
        # The workers' own thread counts decide: a fixed `nthread` would oversubscribe them.
        booster_params = params.booster_params(spec.task, len(spec.classes))
        booster_params.pop("nthread")
        topic = f"mlops-rounds-{uuid.uuid4().hex}"
        for callback in callbacks or []:
            if isinstance(callback, RoundsProgress):
                client.subscribe_topic(topic, lambda event, say=callback.say: say(event[1]))
        # `xgboost.dask` asks for a current client even when given one: `as_current` makes
        # this one current for this call only, never the default of the process's other work.
        with client.as_current():
            train = _dask_matrix(client, workers, x_train, y_train, spec)
            validation = _dask_matrix(client, workers, x_validation, y_validation, spec)
            try:
                result = dxgb.train(
                    client,
                    booster_params,
                    train,
                    num_boost_round=params.max_rounds,
                    evals=[(validation, "validation")],
                    early_stopping_rounds=params.early_stopping_rounds,
                    verbose_eval=False,
                    callbacks=[_on_cluster(c, topic) for c in callbacks or []],
                )
            finally:
                client.unsubscribe_topic(topic)
        return trimmed_model(result["booster"], result["history"], params)


def _dask_matrix(
    client: Client, workers: list[str], x: np.ndarray, y: np.ndarray, spec: DatasetSpec
) -> Any:
    """The rows as a `DaskDMatrix`: one contiguous block of rows on each worker."""
    import dask.array as da
    from xgboost import dask as dxgb

    bounds = np.linspace(0, len(y), num=len(workers) + 1, dtype=np.int64)
    x_blocks, y_blocks = [], []
    for worker, start, stop in zip(workers, bounds[:-1], bounds[1:], strict=True):
        if stop == start:
            continue
        part_x, part_y = x[start:stop], y[start:stop]
        fx, fy = client.scatter([part_x, part_y], workers=[worker], hash=False)
        x_blocks.append(da.from_delayed(fx, shape=part_x.shape, dtype=part_x.dtype))
        y_blocks.append(da.from_delayed(fy, shape=part_y.shape, dtype=part_y.dtype))
    return dxgb.DaskDMatrix(
        client,
        da.concatenate(x_blocks),
        da.concatenate(y_blocks),
        feature_names=list(spec.model_features),
        feature_types=feature_types(spec),
        enable_categorical=True,
    )


def _on_cluster(
    callback: xgb.callback.TrainingCallback, topic: str
) -> xgb.callback.TrainingCallback:
    """The callback as it can run on a worker: round progress becomes a Dask event."""
    if isinstance(callback, RoundsProgress):
        return ClusterRounds(topic, callback.label, callback.total, callback.every)
    return callback


class ClusterRounds(xgb.callback.TrainingCallback):
    """`RoundsProgress` for a worker: the first worker publishes each line on a Dask topic."""

    def __init__(self, topic: str, label: str, total: int, every: int):
        super().__init__()
        self.topic, self.label, self.total, self.every = topic, label, total, every

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        """Publish every `every`-th round from rank 0; never stops training (returns False)."""
        from distributed import get_worker

        message = RoundsProgress.message(self.label, self.total, self.every, epoch, evals_log)
        if message and xgb.collective.get_rank() == 0:
            get_worker().log_event(self.topic, message)
        return False
