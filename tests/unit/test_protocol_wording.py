"""The terminal and the report describe the protocol that ran, and nothing that did not."""

from mlops_assets.cli import features_line
from mlops_assets.core.evaluation import decide
from mlops_assets.core.report import ReportInputs, render_markdown

FEATURES = {"dagster/row_count": 442}
ONLINE = {"entities_written": 442, "mode": "full", "entities_skipped": 0, "seconds": 0.2}
TRAINING = {"dagster/row_count": 442, "train_rows": 313, "validation_rows": 58, "test_rows": 71}
HEAD = (
    "Features: 442 rows; online store: 442 entities written (full), 0 unchanged, in 0.2 s; "
    "training set: 442 rows"
)


def test_the_split_line_only_for_holdout():
    assert features_line(FEATURES, ONLINE, TRAINING, "holdout") == (
        f"{HEAD}, 313 train / 58 validation / 71 test"
    )
    assert features_line(FEATURES, ONLINE, TRAINING, "cross_validation") == (
        f"{HEAD} (cross-validated: every row is trained on and tested)"
    )
    assert features_line(FEATURES, ONLINE, TRAINING, "") == HEAD  # training did not get there


def _protocol_line(spec, metrics) -> str:
    estimate = {
        "protocol": "cross_validation",
        "folds": 5,
        "rows": 442,
        "why": "auto",
        "interval": [1.0, 2.0],
    }
    inputs = ReportInputs(
        spec, "m1", "run1", "f" * 64, 442, {"model": metrics}, decide(metrics, spec), {},
        estimate=estimate,
    )  # fmt: skip
    markdown = render_markdown(inputs)
    return next(line for line in markdown.splitlines() if line.startswith("- Protocol:"))


def test_folds_are_stratified_by_class_only_for_classification(house_spec, cancer_spec):
    assert _protocol_line(house_spec, {"rmse": 1.5, "r2": 0.9}).startswith(
        "- Protocol: 5-fold cross-validation (grouped by entity) on 442 rows: "
    )
    assert _protocol_line(cancer_spec, {"roc_auc": 0.9}).startswith(
        "- Protocol: 5-fold cross-validation (stratified by class, grouped by entity) on 442 "
    )
