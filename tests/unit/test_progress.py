"""Long work says what it is doing and how far it is, a few lines a stage, never one per row."""

from __future__ import annotations

import numpy as np

from mlops_assets.core.candidates import compete
from mlops_assets.core.training import ROUND_INTERVAL, TrainParams, train
from tests.synthetic_rows import FAST, cv_plan, linear_label, synthetic_rows, synthetic_spec


def test_boosting_rounds_are_reported_at_intervals_and_the_fit_at_its_end():
    spec = synthetic_spec()
    rows = synthetic_rows(spec, linear_label, rows=400)
    lines: list[str] = []
    # Early stopping cannot cut this fit short: all 600 rounds run.
    params = TrainParams(learning_rate=0.01, max_rounds=600, early_stopping_rounds=600)
    train(
        rows.x[:300], rows.y[:300], rows.x[300:], rows.y[300:], spec, params, progress=lines.append
    )
    assert ROUND_INTERVAL == 250
    assert [line.split(",")[0] for line in lines] == [
        "xgboost: round 250 of at most 600",
        "xgboost: round 500 of at most 600",
        "xgboost: 600 trees",
    ]
    assert lines[0].startswith("xgboost: round 250 of at most 600, validation rmse ")


def test_cross_validation_reports_each_candidate_and_fold_then_the_ranking():
    spec = synthetic_spec(families=["xgboost", "linear"], folds=3)
    rows = synthetic_rows(spec, linear_label, rows=300)
    plan, folds = cv_plan(spec, rows)
    lines: list[str] = []
    compete(rows, spec, plan, FAST, folds=folds, progress=lines.append)
    assert lines[0] == "candidate 1/2: xgboost, 3-fold cross-validation on 300 rows"
    assert [line.split(",")[0] for line in lines[1:4]] == [
        "xgboost: fold 1/3",
        "xgboost: fold 2/3",
        "xgboost: fold 3/3",
    ]
    assert lines[4].startswith("xgboost: out-of-fold rmse ")
    assert lines[5] == "candidate 2/2: linear, 3-fold cross-validation on 300 rows"
    assert lines[6].startswith("rmse: xgboost ") and lines[6].endswith("challenger: linear")
    assert len(lines) == 7


def test_a_search_says_one_line_a_trial_not_one_a_fold():
    spec = synthetic_spec(families=["xgboost"], folds=3, search_trials=4)
    rows = synthetic_rows(spec, linear_label, rows=300)
    plan, folds = cv_plan(spec, rows)
    lines: list[str] = []
    compete(rows, spec, plan, FAST, folds=folds, progress=lines.append)
    trials = [line for line in lines if line.startswith("xgboost trial")]
    assert [t.split(":")[0] for t in trials] == [f"xgboost trial {k}/5" for k in range(1, 6)]
    assert not [line for line in lines if "fold 1/3" in line]
    assert np.isfinite(float(trials[-1].rsplit(" ", 1)[1]))
