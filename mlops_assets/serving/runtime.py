"""What the BentoML service needs around the model: which model, where state lives, lookup.

The service module calls these when it is imported (BentoML's convention: the model is a class
attribute), so they read the environment then; the Dagster code location never imports them.
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
LOG = logging.getLogger(__name__)


class NoChampionExported(RuntimeError):
    """The service was started before any champion was exported to BentoML."""


def bentoml_home(paths: PlatformPaths) -> Path:
    """BentoML's model and bento store, inside the state folder."""
    return paths.bentoml_home


def export_pointer(paths: PlatformPaths) -> Path:
    """The file naming the BentoML model tag of the exported champion."""
    return paths.bento_pointer


def resolve_model_tag(arguments: Any) -> str:
    """The model to serve.

    `--arg model_tag=...` (pinned in a built bento), else $MLOPS_MODEL_TAG, else the champion
    last exported from this state folder.
    """
    tag = getattr(arguments, "model_tag", None) or os.environ.get(MODEL_TAG_ENV)
    if tag:
        return str(tag)
    pointer = export_pointer(PlatformPaths(resolve_home()))
    if pointer.exists():
        return str(json.loads(pointer.read_text())["model_tag"])
    raise NoChampionExported(
        f"no model tag given and {pointer} does not exist: run `mlops run` first, or pass "
        "`--arg model_tag=NAME:VERSION`"
    )


def prediction_log_dir() -> Path:
    """Where the service appends its prediction log."""
    configured = os.environ.get(LOG_DIR_ENV)
    if configured:
        return Path(configured)
    return PlatformPaths(resolve_home()).predictions


def body_timeout_s() -> float:
    """Seconds a request body may take to arrive (`$MLOPS_BODY_TIMEOUT_S`, default 15)."""
    configured = os.environ.get(BODY_TIMEOUT_ENV, "").strip()
    if not configured:
        return DEFAULT_BODY_TIMEOUT_S
    try:
        seconds = float(configured)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 3600:
        raise ValueError(f"{BODY_TIMEOUT_ENV}={configured!r}: give seconds between 0 and 3600")
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

        return OnlineFeatureLookup(feature_store(paths, profile), spec)

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
