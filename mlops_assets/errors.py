"""Turning an engine's error into one `Failure` that says what stopped and what to do.

A dropped connection to PostgreSQL or Redis surfaces as a driver exception several layers
down (psycopg2, SQLAlchemy, redis-py, MLflow). The run should instead end with a sentence
naming the store, the step that could not finish, the state it left, and the fix, with any
password in the message masked.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from mlops_assets.profile import redact_url


@contextmanager
def failing_clearly(action: str, store: str, aftermath: str) -> Iterator[None]:
    """Re-raise any error inside the block as a retryable `Failure` that explains it."""
    try:
        yield
    except (dg.Failure, ValueError):
        raise  # ValueError is the platform's own verdict on the data, not the store's answer
    except Exception as exc:
        reason = redact_url(f"{type(exc).__name__}: {exc}").strip().splitlines()[0][:300]
        raise dg.Failure(
            description=f"{action} failed: {store} answered {reason}. {aftermath}",
            allow_retries=True,
        ) from exc
