"""How a run executes its steps: one process on the embedded profile, several in production.

The embedded instance is SQLite, which serialises writers; steps in parallel processes there
are the known "database is locked" failure, so steps run one after another in the run's own
process. On PostgreSQL the multiprocess executor runs independent steps at once. Its workers
fork from a server that has already imported the heavy libraries: a fresh interpreter per step
spends seconds importing Dagster, MLflow, Feast and XGBoost before doing any work.
"""

import dagster as dg

from mlops_assets.profile import Profile

PRELOADED_MODULES = [
    "mlops_assets.definitions",
    "pandas",
    "pyarrow.parquet",
    "sklearn.linear_model",
    "xgboost",
    "mlflow",
    "feast",
    "bentoml",
]

# The graph is at most two steps wide (online_features beside the training chain), so two
# workers use all the parallelism there is without forking one per core of a large node.
MAX_PARALLEL_STEPS = 2

parallel_executor = dg.multiprocess_executor.configured(
    {
        "max_concurrent": MAX_PARALLEL_STEPS,
        "start_method": {"forkserver": {"preload_modules": PRELOADED_MODULES}},
    },
    name="parallel_executor",
)


def executor_for(profile: Profile) -> dg.ExecutorDefinition:
    """In-process on the embedded profile, parallel processes in production."""
    return parallel_executor if profile.is_production else dg.in_process_executor
