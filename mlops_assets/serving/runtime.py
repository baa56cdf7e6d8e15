"""The service's start-up settings, read from the environment when `bentos/service.py` loads.

BentoML builds the service when its module is imported (the model is a class attribute), so
everything the service learns from its surroundings is resolved here, once, in one place:

- `resolve_model_tag`: which exported model to serve (`--arg model_tag`, `$MLOPS_MODEL_TAG`, or
  the champion last exported from the state folder);
- `prediction_log_dir`: where the prediction log goes (`$MLOPS_PREDICTION_LOG_DIR`);
- `rollout_path`: the rollout file the service follows (`$MLOPS_HOME/deployment/rollout.json`);
- `followed_pointer`: the export pointer whose champion the service follows (`bento.json`),
  unless the tag was pinned; `serving_status_dir`: where workers report to the CLI;
- `body_timeout_s`: how long a request body may take to arrive (`$MLOPS_BODY_TIMEOUT_S`);
- `header_timeout_s`: how long a request's headers may take (`$MLOPS_HEADER_TIMEOUT_S`);
- `online_lookup` and `DeferredLookup`: the Feast online store for by-key predictions, built
  lazily and retried, so the service starts (and serves `/v1/predict`) without it.

The Dagster code location does not import this module: the pipeline's side of the same state
(the BentoML store, the export pointer) is named in `paths.py`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.profile import active_profile, redact_url

MODEL_TAG_ENV = "MLOPS_MODEL_TAG"
LOG_DIR_ENV = "MLOPS_PREDICTION_LOG_DIR"
ONLINE_STORE_ENV = "MLOPS_ONLINE_FEATURES"  # "off" disables the by-key endpoint
BODY_TIMEOUT_ENV = "MLOPS_BODY_TIMEOUT_S"
DEFAULT_BODY_TIMEOUT_S = 15.0
HEADER_TIMEOUT_ENV = "MLOPS_HEADER_TIMEOUT_S"
DEFAULT_HEADER_TIMEOUT_S = 10.0
LOG = logging.getLogger(__name__)


class NoChampionExported(RuntimeError):
    """The service was started before any champion was exported to BentoML."""


def resolve_model_tag(arguments: Any) -> str:
    """The model to serve.

    `--arg model_tag=...` (pinned in a built bento), else $MLOPS_MODEL_TAG, else the champion
    last exported from this state folder.
    """
    tag = getattr(arguments, "model_tag", None) or os.environ.get(MODEL_TAG_ENV)
    if tag:
        return str(tag)
    pointer = PlatformPaths(resolve_home()).bento_pointer
    if pointer.exists():
        return str(json.loads(pointer.read_text())["model_tag"])
    raise NoChampionExported(
        f"no model tag given and {pointer} does not exist: run `mlops run` first, or pass "
        "`--arg model_tag=NAME:VERSION`"
    )


def followed_pointer(arguments: Any) -> Path | None:
    """The export pointer the service follows, or None when its model tag was pinned.

    A tag given with `--arg model_tag` or $MLOPS_MODEL_TAG is the one model to serve (a built
    bento, a container); otherwise the service follows `bento.json` (`champion_follow.py`).
    """
    if getattr(arguments, "model_tag", None) or os.environ.get(MODEL_TAG_ENV):
        return None
    return PlatformPaths(resolve_home()).bento_pointer


def serving_status_dir() -> Path:
    """Where each worker writes its status for `mlops rollout status`."""
    return PlatformPaths(resolve_home()).serving_status


def prediction_log_dir() -> Path:
    """Where the service appends its prediction log."""
    configured = os.environ.get(LOG_DIR_ENV)
    if configured:
        return Path(configured)
    return PlatformPaths(resolve_home()).predictions


def rollout_path() -> Path:
    """The rollout file written by `mlops rollout ...` (champion-only while it is missing)."""
    return PlatformPaths(resolve_home()).rollout


def body_timeout_s() -> float:
    """Seconds a request body may take to arrive (`$MLOPS_BODY_TIMEOUT_S`, default 15)."""
    return _seconds(BODY_TIMEOUT_ENV, DEFAULT_BODY_TIMEOUT_S)


def header_timeout_s() -> float:
    """Seconds a connection may take to send a request's headers (`$MLOPS_HEADER_TIMEOUT_S`).

    Counted from the connection's opening, or from a request's first byte after an earlier
    response; default 10.
    """
    return _seconds(HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT_S)


def _seconds(variable: str, default: float) -> float:
    configured = os.environ.get(variable, "").strip()
    if not configured:
        return default
    try:
        seconds = float(configured)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 3600:
        raise ValueError(f"{variable}={configured!r}: give seconds between 0 and 3600")
    return seconds


def online_lookup(spec: Any) -> Any | None:
    """The online feature lookup, or None where the service has no feature store.

    Embedded: the SQLite store of the state folder, if one was materialized. Production: Redis,
    found through the SQL registry, built again on a later request if the registry cannot be
    read at start-up (the view may not be applied yet, or PostgreSQL may be restarting).
    Without a store the by-key endpoint answers 503 and says so, while predictions from
    request features keep working.
    """
    if os.environ.get(ONLINE_STORE_ENV, "").lower() == "off":
        return None
    paths = PlatformPaths(resolve_home())
    profile = active_profile()
    if not profile.is_production and not paths.feast_registry.exists():
        return None

    def build() -> Any:
        from mlops_assets.features.feast_repo import feature_store
        from mlops_assets.features.online_lookup import OnlineFeatureLookup

        return OnlineFeatureLookup(feature_store(paths, profile, online_only=True), spec)

    return DeferredLookup(build)


class FeatureStoreUnavailable(RuntimeError):
    """The online store or its registry cannot be read right now."""


class DeferredLookup:
    """An online lookup built on first success, retried at most every `RETRY_S` until then."""

    RETRY_S = 10.0

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build, self._lookup, self._next_try = build, None, 0.0
        with contextlib.suppress(FeatureStoreUnavailable):
            self._ensure()

    def lookup(self, keys: Any) -> Any:
        """Look `keys` up, building the lookup first if that has not succeeded yet."""
        return self._ensure().lookup(keys)

    def _ensure(self) -> Any:
        if self._lookup is not None:
            return self._lookup
        if time.monotonic() < self._next_try:
            raise FeatureStoreUnavailable("the feature registry could not be read; retrying soon")
        try:
            self._lookup = self._build()
        except Exception as exc:  # registry unreachable, or the view not applied yet
            self._next_try = time.monotonic() + self.RETRY_S
            LOG.warning("by-key predictions wait for the feature store: %s", redact_url(str(exc)))
            raise FeatureStoreUnavailable("the feature registry could not be read") from exc
        return self._lookup
