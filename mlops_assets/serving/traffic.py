"""Which model answers a request: the champion alone, with a shadow, or beside a canary.

Each worker keeps one immutable `Traffic` (the rollout in force and the challenger it loaded)
and swaps it whole when the rollout file changes, so a request reads one consistent setting
without a lock. `RolloutWatcher` checks the file's identity (inode, size, modification time)
once a second from a background thread: the request path never touches the disk, and a new
share reaches every worker within about a second, without a restart.

Whatever goes wrong with the challenger (a tag missing from the store, a corrupt model, a
model trained on other feature columns, an unreadable rollout file) leaves the champion
answering alone: the service stays ready, the reason goes to the log and to
`mlops_challenger_load_failures_total` / `mlops_rollout_invalid_total`, and `/v1/model_info`
says which rollout is in force.

Canary routing is sticky by entity key: a key's point in [0, 1) is a fixed arithmetic hash of
the key (SplitMix64 of an integer, a keyed SipHash of a text key's bytes), the same in every
worker, on every machine and after every restart, and the key goes to the challenger when its
point is below the share. Raising the share keeps the keys already on the challenger there. A
request without a key is routed at random.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_assets.core.entity_keys import is_text, text_hashes
from mlops_assets.serving.metrics import publish_rollout, rollout_failures
from mlops_assets.serving.predictor import Predictor
from mlops_assets.serving.rollout import CHAMPION_ONLY, Rollout, RolloutError, read_rollout

LOG = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
TEXT_HASH_KEY = "mlops-canary-v01"  # 16 characters; another key moves text keys' canary share


@dataclass(frozen=True)
class Traffic:
    """The rollout a worker applies: the setting, and the challenger if it loaded."""

    rollout: Rollout = CHAMPION_ONLY
    challenger: Predictor | None = None
    same_matrix: bool = False  # the challenger reads the champion's model matrix as it is
    error: str = ""  # why the champion answers alone although the file asks for more

    @property
    def mode(self) -> str:
        """The mode actually served: `champion` whenever no challenger is loaded."""
        return self.rollout.mode if self.challenger is not None else "champion"

    def describe(self) -> dict[str, Any]:
        """What `/v1/model_info` says about the rollout."""
        challenger = self.challenger.bundle.version if self.challenger is not None else None
        return {
            "mode": self.mode,
            "requested_mode": self.rollout.mode,
            "share": self.rollout.share if self.mode == "canary" else 0.0,
            "challenger_tag": self.rollout.challenger_tag,
            "challenger_version": challenger,
            "error": self.error or None,
        }


def sticky_points(keys: np.ndarray) -> np.ndarray:
    """Each key's fixed point in [0, 1): the top 53 bits of a hash of the key.

    SplitMix64's finaliser for an int64 key, a keyed SipHash of a text key's UTF-8 bytes.
    """
    if is_text(keys):
        return (text_hashes(keys, TEXT_HASH_KEY) >> np.uint64(11)).astype(np.float64) / 2.0**53
    with np.errstate(over="ignore"):
        z = np.asarray(keys, dtype=np.int64).view(np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


def canary_mask(keys: Sequence[int | str | None] | None, size: int, share: float) -> np.ndarray:
    """Which of `size` rows the challenger answers: sticky where a key is given, else random."""
    if keys is None:
        return np.random.random(size) < share
    given = np.fromiter((k is not None for k in keys), dtype=bool, count=size)
    points = np.random.random(size)
    if given.any():
        positions = np.flatnonzero(given)
        present = [keys[i] for i in positions]
        text = isinstance(present[0], str)
        points[positions] = sticky_points(np.asarray(present, dtype=object if text else np.int64))
    return points < share


class RolloutWatcher:
    """Keeps `traffic` in line with the rollout file, checking it once a second."""

    def __init__(
        self,
        path: Path,
        champion: Predictor,
        load: Callable[[str], Predictor],
        interval_s: float = CHECK_INTERVAL_S,
    ) -> None:
        self.path, self.champion, self._load = path, champion, load
        self.interval_s = interval_s
        self.traffic = Traffic()
        self._seen: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self.check()
        self._thread = threading.Thread(target=self._run, name="rollout-watcher", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Apply the file if it changed since the last check (or was created or removed)."""
        seen = _identity(self.path)
        if seen == self._seen:
            return
        self._seen = seen
        self.traffic = self._apply()
        publish_rollout(self.traffic.mode, self.traffic.describe()["share"])

    def stop(self) -> None:
        """Stop checking (at worker shutdown)."""
        self._stop.set()

    def _run(self) -> None:  # background thread
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # the watcher must outlive any surprise; the champion answers
                LOG.exception("checking the rollout file %s failed", self.path)

    def _apply(self) -> Traffic:
        try:
            rollout = read_rollout(self.path)
        except (RolloutError, OSError) as error:
            LOG.error("rollout ignored, the champion answers alone: %s", error)
            rollout_failures()[1].inc()
            return Traffic(error=str(error))
        if rollout.mode == "champion" or rollout.challenger_tag is None:
            return Traffic(rollout)
        current = self.traffic
        if current.challenger is not None and (
            current.rollout.challenger_tag == rollout.challenger_tag
        ):
            return Traffic(rollout, current.challenger, current.same_matrix)
        try:
            challenger = self._load(rollout.challenger_tag)
            _check_challenger(challenger, self.champion, rollout)
        except Exception as error:  # missing, corrupt or unfit: the champion answers alone
            message = f"challenger {rollout.challenger_tag} not loaded: {error}"
            LOG.error("%s; the champion answers alone (mode %s asked)", message, rollout.mode)
            rollout_failures()[0].inc()
            return Traffic(rollout, error=message)
        LOG.info(
            "rollout %s: challenger v%s (%s) loaded beside champion v%s",
            rollout.mode,
            challenger.bundle.version,
            rollout.challenger_tag,
            self.champion.bundle.version,
        )
        return Traffic(rollout, challenger, challenger.reads_matrix_of(self.champion))


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What changes whenever the file is replaced or edited: inode, size, modification time."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def _check_challenger(challenger: Predictor, champion: Predictor, rollout: Rollout) -> None:
    """Refuse a challenger the service cannot feed, or one the file names wrongly."""
    version = challenger.bundle.version
    if rollout.challenger_version and rollout.challenger_version != version:
        raise ValueError(
            f"the rollout names challenger v{rollout.challenger_version} but the model "
            f"{rollout.challenger_tag} is v{version}: run `mlops rollout` again"
        )
    missing = set(challenger.spec.feature_columns) - set(champion.spec.feature_columns)
    if missing:
        raise ValueError(
            f"it needs feature columns the champion's requests do not carry: {sorted(missing)}"
        )
