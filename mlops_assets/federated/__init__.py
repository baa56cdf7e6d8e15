"""Federated training: one XGBoost model from several sites whose rows never leave them.

Each site runs in its own process and reads only its own location; the processes meet through
XGBoost's federated server (`xgboost.federated`), which sees gradient histograms and a few
aggregate sums (row counts, label sums, imputation statistics), never rows. The result is the
same booster format a central training produces, so the report, gates, registry, serving and
drift monitoring take it unchanged.
"""
