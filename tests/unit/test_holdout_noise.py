"""On a holdout too, a retrain is promoted only when its gain clears the paired noise.

Champion and challenger are scored on the same 3,000 test rows; their errors are drawn so
that the challenger's RMSE is lower by about half a percent, far inside the paired
interval's width: the champion is kept, with the interval in the reason. A clearly better
challenger on the same rows is promoted.
"""

import numpy as np
import pandas as pd

from mlops_assets.core.evaluation import compute_metrics, decide
from mlops_assets.spec import HOUSE_PRICES_SPEC, load_spec
from mlops_assets.training.candidate import CANDIDATE
from mlops_assets.training.validation import compare_with_champion

SPEC = load_spec(HOUSE_PRICES_SPEC)
ESTIMATE = {"protocol": "holdout", "family": "xgboost", "seed": 42}


def _judged(scale_challenger: float) -> tuple[dict, object]:
    rng = np.random.default_rng(7)
    y = rng.uniform(2e5, 9e5, 3_000)
    champion = y + rng.normal(0, 60_000, len(y))
    challenger = y + rng.normal(0, 60_000 * scale_challenger, len(y))
    evaluation = pd.DataFrame({"row": np.arange(len(y)), "fold": 0, "y": y})
    evaluation[CANDIDATE + "xgboost"] = challenger
    comparison = compare_with_champion("1", champion, evaluation, SPEC, ESTIMATE)
    metrics = compute_metrics(y, challenger, SPEC.task)
    return metrics, comparison


def test_a_gain_within_noise_on_a_holdout_keeps_the_champion():
    metrics, comparison = _judged(0.995)
    assert comparison.paired is not None, "holdout comparisons are paired too"
    low, high = comparison.paired
    assert low < 0 < high
    decision = decide(metrics, SPEC, champion=comparison)
    assert not decision.promote
    assert decision.reason.startswith("better only within noise: rmse")
    assert "paired 95% interval" in decision.reason


def test_a_clear_gain_on_a_holdout_is_promoted():
    metrics, comparison = _judged(0.8)
    assert comparison.paired is not None and comparison.paired[0] > 0
    decision = decide(metrics, SPEC, champion=comparison)
    assert decision.promote, decision.reason
    assert decision.reason.startswith("better than the champion: rmse")
