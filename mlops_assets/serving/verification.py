"""Verifying a model's signature before the service loads it, with a metric and a log line.

Every load of a bundle (the champion at start-up, a champion the service swaps to, a
challenger named by the rollout) goes through `verify_bundle`. A refusal is counted in
`mlops_model_refused_total` and logged as an error naming the file that changed; the caller
then keeps the model it serves (a swap or a challenger that fails to load changes nothing),
and at start-up the worker does not become ready with unverified bytes.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

from mlops_assets.paths import resolve_home
from mlops_assets.signing import ModelSignatureError, state_keys, verify_folder

LOG = logging.getLogger(__name__)


@functools.cache
def refusals() -> Any:
    """Counter of models refused because their signature or files did not verify."""
    from prometheus_client import Counter

    return Counter(
        "mlops_model_refused",
        "Models the service refused to load: their files or signature did not verify.",
    )


def verify_bundle(folder: Path) -> None:
    """Raise `ModelSignatureError` (counted and logged) unless `folder` verifies."""
    try:
        verify_folder(folder, state_keys(resolve_home()).public_key())
    except ModelSignatureError as error:
        refusals().inc()
        LOG.error("model refused, the model serving now (if any) keeps serving: %s", error)
        raise
