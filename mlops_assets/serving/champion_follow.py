"""A running service follows the champion: the export pointer names it, the service swaps to it.

Every move of the registry's `champion` alias (an offline promotion, a promotion on live
evidence, `mlops rollback`) ends with `bento.json` naming the new champion's model in BentoML's
store, written in one step after the model is complete (`deployment/bento_export.py`). A
service started without a pinned tag (`mlops serve`) checks that file's identity on the same
one-second tick that rereads the rollout file; when it names another model, the model is
loaded off the request path and admitted only if

- verified: its registry facts, manifest and the pointer agree on version and run, it belongs
  to the dataset the service answers for, the requests the service accepts carry every field it
  needs, and it reads the online store's rows (by-key requests);
- warmed: one prediction through the whole request path succeeded.

Then the worker's `Traffic` is replaced whole (`traffic.py`), so a request in flight finishes
on the champion it started with and the next one gets the new champion. A champion that fails
any step leaves the previous one answering; the reason goes to the log, to
`mlops_champion_load_failures_total` and to `/v1/model_info` (`champion.error`), and the file
is tried again when it changes. A service started on a pinned tag (a built bento, a container,
`$MLOPS_MODEL_TAG`) serves that model and follows nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_assets.serving.metrics import champion_metrics
from mlops_assets.serving.predictor import Predictor
from mlops_assets.spec import DatasetSpec

LOG = logging.getLogger(__name__)


class ChampionFollower:
    """Loads, verifies and warms the champion `pointer` names whenever it changes."""

    def __init__(
        self,
        pointer: Path | None,
        tag: str,
        load: Callable[[str], Predictor],
        served: DatasetSpec,
    ) -> None:
        self.pointer, self.tag, self._load, self.served = pointer, tag, load, served
        self.error = ""
        self._seen = file_identity(pointer) if pointer is not None else None

    def describe(self) -> dict[str, Any]:
        """What `/v1/model_info` says about following the champion."""
        return {
            "model_tag": self.tag,
            "follows": str(self.pointer) if self.pointer is not None else None,
            "error": self.error or None,
        }

    def check(self, champion: Predictor) -> Predictor | None:
        """The new champion, verified and warmed, if the pointer changed to name one."""
        if self.pointer is None:
            return None
        seen = file_identity(self.pointer)
        if seen is None or seen == self._seen:
            return None  # a missing pointer keeps the champion in service
        self._seen = seen
        tag = "?"
        try:
            pointer = json.loads(self.pointer.read_text())
            tag = str(pointer["model_tag"])
            if tag == self.tag:
                self.error = ""
                return None
            candidate = self._load(tag)
            verify(candidate, pointer, self.served)
            candidate.warm()
        except Exception as error:  # any failure: the champion in service keeps answering
            self.error = (
                f"champion {tag} named by {self.pointer} not loaded, v{champion.bundle.version} "
                f"keeps answering: {error}"
            )
            LOG.error("%s", self.error)
            champion_metrics()[0].inc()
            return None
        LOG.info(
            "champion v%s (%s) answers from now on, replacing v%s (%s)",
            candidate.bundle.version,
            tag,
            champion.bundle.version,
            self.tag,
        )
        self.tag, self.error = tag, ""
        champion_metrics()[1].inc()
        return candidate


def verify(candidate: Predictor, pointer: dict[str, Any], served: DatasetSpec) -> None:
    """Refuse a champion whose files disagree, or that this running service cannot feed."""
    info, manifest = candidate.bundle.info, candidate.bundle.manifest
    facts = {
        "model_version": (str(pointer.get("model_version")), str(info.get("model_version"))),
        "mlflow_run_id": (pointer.get("mlflow_run_id"), info.get("mlflow_run_id")),
    }
    for name, (named, found) in facts.items():
        if named != found:
            raise ValueError(f"the pointer says {name} {named!r}, the model's files {found!r}")
    if manifest.get("mlflow_run_id") != info.get("mlflow_run_id"):
        raise ValueError(
            f"its manifest is of run {manifest.get('mlflow_run_id')!r}, its registry facts of "
            f"run {info.get('mlflow_run_id')!r}"
        )
    if candidate.spec.name != served.name:
        raise ValueError(
            f"it predicts dataset {candidate.spec.name!r}, this service {served.name!r}"
        )
    missing = sorted(set(candidate.spec.feature_columns) - set(served.feature_columns))
    if missing:
        raise ValueError(
            f"it needs fields this service's requests do not carry: {missing}; restart the "
            "service to serve it"
        )
    rows = candidate.online_rows(served)
    if not rows.readable:
        raise ValueError(f"{rows.problem}; restart the service to serve it")


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """What changes whenever the file is replaced or edited: inode, size, modification time."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns
