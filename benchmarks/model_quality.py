"""Model quality: the platform's model against what the data allows and a plain baseline.

1. Default synthetic house market: test R² and MAE of the platform's model (default
   hyperparameters, the same code path as the `model` asset) next to the ceiling that the
   generator's known noise allows, i.e. the metrics of the noise-free expected price on the
   same test rows. Target: R² within 0.01 of the ceiling.
2. scikit-learn's breast-cancer set through the second dataset spec: the platform's model next
   to plain scikit-learn models (scaled logistic regression, histogram gradient boosting) on
   the same train/test rows.

    uv run python benchmarks/model_quality.py [--rows 20000 100000]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def _house_market(rows: int) -> None:
    from mlops_assets.core.evaluation import compute_metrics
    from mlops_assets.core.features import engineer, to_matrix
    from mlops_assets.core.splits import entity_split
    from mlops_assets.core.training import TrainParams, predict, train
    from mlops_assets.sources import SyntheticConfig, generate_house_sales
    from mlops_assets.spec import HOUSE_PRICES_SPEC, TaskType, load_spec

    spec = load_spec(HOUSE_PRICES_SPEC)
    sales = generate_house_sales(SyntheticConfig(rows=rows, seed=42), with_expected=True)
    x = to_matrix(engineer(sales, spec), spec)
    y, best = sales["price"].to_numpy(), sales["expected_price"].to_numpy()
    split = entity_split(sales["house_id"].to_numpy())
    parts = {name: split == name for name in ("train", "validation", "test")}
    trained = train(
        x[parts["train"]],
        y[parts["train"]],
        x[parts["validation"]],
        y[parts["validation"]],
        spec,
        TrainParams(),
    )
    test = parts["test"]
    model = compute_metrics(y[test], predict(trained.booster, x[test]), TaskType.REGRESSION)
    ceiling = compute_metrics(y[test], best[test], TaskType.REGRESSION)
    print(
        f"house market {rows:>7,} rows: model R² {model['r2']:.4f} MAE {model['mae']:,.0f} | "
        f"ceiling R² {ceiling['r2']:.4f} MAE {ceiling['mae']:,.0f} | "
        f"gap R² {ceiling['r2'] - model['r2']:.4f} (target <= 0.01)"
    )


def _breast_cancer() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlops_assets.core.cleaning import clean
    from mlops_assets.core.evaluation import compute_metrics
    from mlops_assets.core.features import engineer, to_matrix
    from mlops_assets.core.raw import prepare_raw
    from mlops_assets.core.splits import entity_split
    from mlops_assets.core.training import TrainParams, predict, train
    from mlops_assets.sources import SklearnSource
    from mlops_assets.spec import BREAST_CANCER_SPEC, load_spec

    spec = load_spec(BREAST_CANCER_SPEC)
    raw = prepare_raw(
        SklearnSource("breast_cancer").load(), spec, "sklearn", datetime.now(UTC)
    ).frame
    cleaned = clean(raw, spec).cleaned
    x = to_matrix(engineer(cleaned, spec), spec)
    y = cleaned[spec.target].to_numpy(dtype=float)
    split = entity_split(cleaned[spec.entity_key].to_numpy())
    tr, va, te = (split == n for n in ("train", "validation", "test"))
    trained = train(x[tr], y[tr], x[va], y[va], spec, TrainParams())
    rows = {"platform (XGBoost)": predict(trained.booster, x[te])}
    train_and_validation = tr | va
    plain = {
        "sklearn LogisticRegression": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=5_000)
        ),
        "sklearn HistGradientBoosting": HistGradientBoostingClassifier(random_state=0),
    }
    for name, estimator in plain.items():
        estimator.fit(x[train_and_validation], y[train_and_validation])
        rows[name] = estimator.predict_proba(x[te])[:, 1]
    print(
        f"breast cancer: {int(te.sum())} test rows "
        f"(train {int(tr.sum())}, validation {int(va.sum())})"
    )
    for name, probabilities in rows.items():
        m = compute_metrics(y[te], probabilities, spec.task)
        print(
            f"  {name:30s} ROC AUC {m['roc_auc']:.4f}  PR AUC {m['pr_auc']:.4f}  "
            f"log loss {m['log_loss']:.4f}  accuracy {m['accuracy']:.4f}  F1 {m['f1']:.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 100_000])
    args = parser.parse_args()
    for rows in args.rows:
        _house_market(rows)
    _breast_cancer()


if __name__ == "__main__":
    main()
