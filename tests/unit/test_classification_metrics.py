"""Classification metrics on a hand-computed example, the spec's threshold, calibration plot."""

import numpy as np
import pandas as pd
import pytest
from matplotlib import image

from mlops_assets.core.evaluation import compute_metrics, slice_metrics
from mlops_assets.core.report import render_plots
from mlops_assets.spec import TaskType, load_spec
from tests.plots import bar_lengths
from tests.spec_files import HEART_SPEC

# Four rows whose every metric is worked out by hand below.
Y = np.array([0, 0, 1, 1])
P = np.array([0.1, 0.6, 0.4, 0.9])


def test_metrics_match_hand_computed_values():
    metrics = compute_metrics(Y, P, TaskType.BINARY_CLASSIFICATION)
    # Of the four (positive, negative) pairs, three rank the positive higher.
    assert metrics["roc_auc"] == pytest.approx(3 / 4)
    # Ranked 0.9 (+), 0.6 (-), 0.4 (+): precision 1 at recall 1/2, then 2/3 at recall 1.
    assert metrics["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # Probabilities given to the true class: 0.9, 0.4, 0.4, 0.9.
    assert metrics["log_loss"] == pytest.approx(-(2 * np.log(0.9) + 2 * np.log(0.4)) / 4)
    # Squared errors: 0.01, 0.36, 0.36, 0.01.
    assert metrics["brier"] == pytest.approx(0.185)
    # At 0.5 the labels are 0, 1, 0, 1: two of four right; one true positive of two.
    assert metrics["accuracy"] == pytest.approx(0.5)
    assert metrics["f1"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("threshold", "accuracy", "f1"),
    [
        (0.35, 0.75, 0.8),  # labels 0, 1, 1, 1
        (0.65, 0.75, 2 / 3),  # labels 0, 0, 0, 1
        (0.9, 0.75, 2 / 3),  # a probability equal to the threshold counts as positive
    ],
)
def test_accuracy_and_f1_follow_the_threshold(threshold, accuracy, f1):
    metrics = compute_metrics(Y, P, TaskType.BINARY_CLASSIFICATION, threshold)
    assert metrics["accuracy"] == pytest.approx(accuracy)
    assert metrics["f1"] == pytest.approx(f1)
    assert metrics["roc_auc"] == pytest.approx(3 / 4), "ranking metrics ignore the threshold"


def test_slices_use_the_specs_threshold():
    spec = load_spec(HEART_SPEC)  # decision_threshold: 0.4
    frame = pd.DataFrame({"sex": [0, 0, 0, 0], "cp": [1, 1, 1, 1]})
    slices = slice_metrics(frame, Y, P, spec)
    # At 0.4 the labels are 0, 1, 1, 1: three of four right (at 0.5 it would be two).
    assert slices["cp"]["1"]["accuracy"] == pytest.approx(0.75)
    assert slices["cp"]["1"]["rows"] == 4


def test_calibration_plot_is_written_beside_the_others(tmp_path):
    rng = np.random.default_rng(0)
    probabilities = rng.uniform(0, 1, 2_000)
    y = (rng.uniform(0, 1, 2_000) < probabilities).astype(int)
    plots = render_plots(
        tmp_path, y, probabilities, {"a": 2.0, "b": 1.0}, TaskType.BINARY_CLASSIFICATION
    )
    names = [p.name for p in plots]
    assert names == ["roc_and_precision_recall.png", "calibration.png", "feature_importance.png"]
    # Pixel sizes at 90 dpi: two panels side by side, the diagram above its histogram, and one
    # bar row per feature (at least four rows high).
    sizes = [image.imread(path).shape[:2] for path in plots]
    assert sizes == [(405, 990), (585, 540), (216, 630)]
    # What a reader takes from the importance plot: the most important feature on top, each
    # bar as long as its importance (2.0 against 1.0).
    bars = bar_lengths(plots[2], colour=(76, 114, 176))  # #4c72b0, top to bottom
    assert len(bars) == 2
    assert bars[0] / bars[1] == pytest.approx(2.0, rel=0.02)
