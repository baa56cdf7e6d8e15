"""Live evidence for a staged challenger: is it not worse than the champion on live labels.

"Not worse on them" is judged on the fairest rows the log holds:

- `paired` (shadow): the requests both models scored. The service logs the champion's answer
  and the challenger's shadow prediction under the same request id and row, so both are judged
  by the same labels on the same entities at the same moment; nothing else differs.
- `same period` (canary, where each request is answered by one model): each model on its own
  labelled predictions made since the challenger's first one. The canary is sticky by entity,
  so the entities differ; the period is the same.

The challenger is promoted when at least `min_live_labels` of its predictions were judged and
its live primary metric is not worse than the champion's by more than `tolerance` (a share of
the champion's value, like `training.min_improvement`); otherwise it is rejected. With fewer
labels the decision waits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.core.evaluation import compute_metrics, relative_gain
from mlops_assets.core.live_performance import (
    LABEL,
    PREDICTED_AT,
    PREDICTION,
    VERSION,
    prediction_values,
)
from mlops_assets.spec import PromotionPolicy, TaskType

REQUEST, ROW = "request_id", "row"
PAIRED, SAME_PERIOD = "paired", "same period"


@dataclass(frozen=True)
class LiveEvidence:
    """What the labels say about a challenger and the champion, on comparable predictions."""

    champion: str
    challenger: str
    basis: str  # PAIRED or SAME_PERIOD
    metric: str
    challenger_labels: int
    champion_labels: int
    challenger_value: float | None
    champion_value: float | None

    def as_record(self) -> dict[str, Any]:
        """A JSON-ready dict (for asset metadata and the promotion history)."""
        return asdict(self)

    def summary(self) -> str:
        """`live rmse v2 1.2e+04 vs v1 3.4e+04 on 140 paired labels`."""
        mine, theirs = _shown(self.challenger_value), _shown(self.champion_value)
        labels = (
            f"{self.challenger_labels} paired labels"
            if self.basis == PAIRED
            else f"{self.challenger_labels} and {self.champion_labels} labels of the same period"
        )
        return (
            f"live {self.metric} v{self.challenger} {mine} vs champion v{self.champion} "
            f"{theirs} on {labels}"
        )


def gather_evidence(
    matched: pd.DataFrame, champion: str, challenger: str, task: TaskType, metric: str
) -> LiveEvidence:
    """The challenger's and champion's live `metric` on the rows they can be compared on."""
    mine = matched[matched[VERSION] == challenger]
    theirs = matched[matched[VERSION] == champion]
    pairs = _pairs(mine, theirs)
    if len(pairs):
        mine, theirs, basis = pairs["mine"], pairs["theirs"], PAIRED
    else:
        since = mine[PREDICTED_AT].min() if len(mine) else None
        theirs = theirs[theirs[PREDICTED_AT] >= since] if since is not None else theirs[:0]
        basis = SAME_PERIOD
    return LiveEvidence(
        champion,
        challenger,
        basis,
        metric,
        len(mine),
        len(theirs),
        _metric(mine, task, metric),
        _metric(theirs, task, metric),
    )


def _pairs(mine: pd.DataFrame, theirs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Both models' judged predictions of the same requests, aligned row by row."""
    if REQUEST not in mine or not len(mine) or not len(theirs):
        return {}
    # Request ids as integer codes shared by both sides: merging on a million strings costs
    # seconds, on integers a fraction of one.
    codes, _ = pd.factorize(pd.concat([mine[REQUEST], theirs[REQUEST]], ignore_index=True))
    rows = pd.concat([mine[ROW], theirs[ROW]], ignore_index=True).fillna(0).to_numpy("int64")
    pair = codes.astype("int64") * (int(rows.max(initial=0)) + 1) + rows
    pair[codes < 0] = -1  # no request id: never paired
    sides = {
        side: pd.DataFrame(
            {
                "pair": part,
                PREDICTION: frame[PREDICTION].to_numpy(),
                LABEL: frame[LABEL].to_numpy(),
            }
        )
        .query("pair >= 0")
        .drop_duplicates("pair")
        for side, part, frame in (
            ("mine", pair[: len(mine)], mine),
            ("theirs", pair[len(mine) :], theirs),
        )
    }
    joined = sides["mine"].merge(sides["theirs"], on="pair", suffixes=("_mine", "_theirs"))
    if not len(joined):
        return {}
    return {
        side: pd.DataFrame(
            {PREDICTION: joined[f"{PREDICTION}_{side}"], LABEL: joined[f"{LABEL}_{side}"]}
        )
        for side in ("mine", "theirs")
    }


def _metric(rows: pd.DataFrame, task: TaskType, metric: str) -> float | None:
    if len(rows) < 2:
        return None
    y = rows[LABEL].to_numpy(dtype=np.float64)
    value = compute_metrics(y, prediction_values(rows[PREDICTION]), task).get(metric)
    return float(value) if value is not None and np.isfinite(value) else None


@dataclass(frozen=True)
class LiveDecision:
    """`promote`, `reject` or `wait`, with the sentence the history and the UI show."""

    action: str
    reason: str


def decide_on_evidence(evidence: LiveEvidence, policy: PromotionPolicy) -> LiveDecision:
    """Promote a challenger not worse than the champion on enough labels; else reject or wait."""
    needed = policy.min_live_labels
    labels = min(evidence.challenger_labels, evidence.champion_labels)
    if labels < needed:
        return LiveDecision(
            "wait",
            f"v{evidence.challenger}: {labels} of {needed} labelled predictions needed "
            f"({evidence.basis}; promotion.min_live_labels)",
        )
    mine, theirs = evidence.challenger_value, evidence.champion_value
    if mine is None or theirs is None:
        return LiveDecision("wait", f"v{evidence.challenger}: live {evidence.metric} undefined")
    gain = relative_gain(mine, theirs, evidence.metric)
    verdict = (
        f"{evidence.summary()} (gain {gain:+.2%}; may be worse by at most "
        f"{policy.tolerance:.2%}: promotion.tolerance)"
    )
    if gain >= -policy.tolerance:
        return LiveDecision("promote", f"not worse on live labels: {verdict}")
    return LiveDecision("reject", f"worse on live labels: {verdict}")


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
