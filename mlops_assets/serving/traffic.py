"""Which model answers a request: the champion alone, with a shadow, or beside a canary.

Each worker keeps one immutable `Traffic` (the champion, the rollout in force and the
challenger it loaded) and swaps it whole when the rollout file or the champion changes, so a
request reads one consistent setting without a lock, and a request in flight finishes on the
models it started with. `RolloutWatcher` checks the rollout file's identity (inode, size,
modification time) once a second from a background thread, and on the same tick asks its
`ChampionFollower` whether the export pointer names a new champion (`champion_follow.py`): the
request path never touches the disk, and a new share or a new champion reaches every worker
within about a second, without a restart. Each tick also refreshes the worker's status file,
which `mlops rollout status` reads (`worker_status.py`).

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
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlops_assets.core.entity_keys import is_text, text_hashes
from mlops_assets.model_registry.rollout import CHAMPION_ONLY, Rollout, RolloutError, read_rollout
from mlops_assets.serving.champion_follow import ChampionFollower, file_identity
from mlops_assets.serving.feature_rows import FeatureRows
from mlops_assets.serving.metrics import (
    challenger_tally,
    publish_model,
    publish_rollout,
    retire_model,
    rollout_failures,
)
from mlops_assets.serving.predictor import Predictor
from mlops_assets.spec import DatasetSpec

LOG = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
TEXT_HASH_KEY = "mlops-canary-v01"  # 16 characters; another key moves text keys' canary share


@dataclass(frozen=True)
class Traffic:
    """What a worker applies to a request: the champion, the setting, the challenger if loaded."""

    rollout: Rollout = CHAMPION_ONLY
    challenger: Predictor | None = None
    same_matrix: bool = False  # the challenger reads the champion's model matrix as it is
    error: str = ""  # why the champion answers alone although the file asks for more
    champion: Any = None  # the champion's Predictor
    champion_rows: FeatureRows | None = None  # how each model reads online rows (by key)
    challenger_rows: FeatureRows | None = None
    following: dict[str, Any] = field(default_factory=dict)  # `ChampionFollower.describe()`

    @property
    def mode(self) -> str:
        """The mode actually served: `champion` whenever no challenger is loaded."""
        return self.rollout.mode if self.challenger is not None else "champion"

    def describe(self) -> dict[str, Any]:
        """What `/v1/model_info` says about the rollout."""
        challenger = self.challenger.bundle.version if self.challenger is not None else None
        rows = self.challenger_rows
        return {
            "mode": self.mode,
            "requested_mode": self.rollout.mode,
            "share": self.rollout.share if self.mode == "canary" else 0.0,
            "challenger_tag": self.rollout.challenger_tag,
            "challenger_version": challenger,
            "error": self.error or None,
            # Why by-key requests cannot reach the challenger (None: they do).
            "by_key_error": (rows.problem or None) if rows is not None else None,
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
    """Keeps `traffic` in line with the rollout file and the champion, checking once a second.

    `served` is the spec the service's requests and online lookup were built from (the first
    champion's); every later model is checked against it.
    """

    def __init__(
        self,
        path: Path,
        champion: Predictor,
        load: Callable[[str], Predictor],
        interval_s: float = CHECK_INTERVAL_S,
        follower: ChampionFollower | None = None,
        report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.path, self.champion, self._load = path, champion, load
        self.served: DatasetSpec = champion.spec
        self.interval_s, self.follower, self._report = interval_s, follower, report
        self._champion_rows = champion.online_rows(self.served)
        self.traffic = Traffic(champion=champion, champion_rows=self._champion_rows)
        self._seen: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self.check(force=True)
        self._thread = threading.Thread(target=self._run, name="rollout-watcher", daemon=True)
        self._thread.start()

    def check(self, force: bool = False) -> None:
        """Follow the champion, and apply the rollout file if it or the champion changed."""
        swapped = self._follow()
        seen = file_identity(self.path)
        following = self.follower.describe() if self.follower is not None else {}
        if force or swapped or seen != self._seen or following != self.traffic.following:
            self._seen = seen
            self.traffic = self._apply(swapped, following)
            publish_rollout(self.traffic.mode, self.traffic.describe()["share"])
        if self._report is not None:
            self._report(self.status())

    def status(self) -> dict[str, Any]:
        """What this worker serves now, and what its challenger could and could not score."""
        traffic = self.traffic
        rollout = traffic.describe()
        version = rollout["challenger_version"]
        return {
            "champion": {"version": traffic.champion.bundle.version, **traffic.following},
            "rollout": rollout,
            "challenger_requests": challenger_tally(version) if version else {},
        }

    def stop(self) -> None:
        """Stop checking (at worker shutdown)."""
        self._stop.set()

    def _run(self) -> None:  # background thread
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # the watcher must outlive any surprise; the champion answers
                LOG.exception("checking the rollout file %s failed", self.path)

    def _follow(self) -> bool:
        """Take the new champion the follower admits, if any; True when it changed."""
        if self.follower is None:
            return False
        admitted = self.follower.check(self.champion)
        if admitted is None:
            return False
        retire_model(self.champion.bundle.info)
        publish_model(admitted.bundle.info)
        self.champion = admitted
        self._champion_rows = admitted.online_rows(self.served)
        return True

    def _apply(self, swapped: bool, following: dict[str, Any]) -> Traffic:
        base: dict[str, Any] = {
            "champion": self.champion,
            "champion_rows": self._champion_rows,
            "following": following,
        }
        try:
            rollout = read_rollout(self.path)
        except (RolloutError, OSError) as error:
            LOG.error("rollout ignored, the champion answers alone: %s", error)
            rollout_failures()[1].inc()
            return Traffic(error=str(error), **base)
        if rollout.mode == "champion" or rollout.challenger_tag is None:
            return Traffic(rollout, **base)
        current = self.traffic
        loaded = current.challenger
        if current.rollout.challenger_tag != rollout.challenger_tag:
            loaded = None  # another model: load it (a same tag keeps the one loaded)
        try:
            challenger = loaded if loaded is not None else self._load(rollout.challenger_tag)
            _check_challenger(challenger, self.served, rollout)
        except Exception as error:  # missing, corrupt or unfit: the champion answers alone
            message = f"challenger {rollout.challenger_tag} not loaded: {error}"
            LOG.error("%s; the champion answers alone (mode %s asked)", message, rollout.mode)
            rollout_failures()[0].inc()
            return Traffic(rollout, error=message, **base)
        if loaded is not None and not swapped:
            rows, same = current.challenger_rows, current.same_matrix
            return Traffic(rollout, loaded, same, challenger_rows=rows, **base)
        if loaded is None:
            LOG.info(
                "rollout %s: challenger v%s (%s) loaded beside champion v%s",
                rollout.mode,
                challenger.bundle.version,
                rollout.challenger_tag,
                self.champion.bundle.version,
            )
        rows = challenger.online_rows(self.served)
        if rows.problem:
            LOG.warning("by-key requests stay with the champion: %s", rows.problem)
        same = challenger.reads_matrix_of(self.champion)
        return Traffic(rollout, challenger, same, challenger_rows=rows, **base)


def _check_challenger(challenger: Predictor, served: DatasetSpec, rollout: Rollout) -> None:
    """Refuse a challenger the service cannot feed, or one the file names wrongly."""
    version = challenger.bundle.version
    if rollout.challenger_version and rollout.challenger_version != version:
        raise ValueError(
            f"the rollout names challenger v{rollout.challenger_version} but the model "
            f"{rollout.challenger_tag} is v{version}: run `mlops rollout` again"
        )
    missing = set(challenger.spec.feature_columns) - set(served.feature_columns)
    if missing:
        raise ValueError(
            f"it needs feature columns the champion's requests do not carry: {sorted(missing)}"
        )
