"""Stage `features`: engineered features in Feast, online store and training set."""
