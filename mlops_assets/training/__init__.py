"""Stage `training`: the model and its validation report, tracked in MLflow."""
