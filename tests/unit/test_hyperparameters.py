"""The XGBoost hyperparameters have one definition, shared by run config and training."""

import pytest
from pydantic import ValidationError

from mlops_assets.core.training import Hyperparameters, TrainParams
from mlops_assets.training.assets import ModelConfig


def test_run_config_carries_every_hyperparameter_into_training():
    given = {"learning_rate": 0.2, "max_depth": 3, "min_child_weight": 1.0, "subsample": 0.5}
    given |= {"colsample_bytree": 0.6, "reg_lambda": 2.0, "max_rounds": 40}
    given |= {"early_stopping_rounds": 7}
    assert set(given) == set(Hyperparameters.model_fields), "every field is exercised"
    params = ModelConfig(**given, families=["linear"]).params(seed=11)
    assert params == TrainParams(**given, seed=11)


def test_run_config_defaults_are_the_training_defaults():
    assert ModelConfig().params(seed=42) == TrainParams()


@pytest.mark.parametrize(
    "field, value", [("max_depth", 30), ("learning_rate", 0), ("subsample", 2)]
)
def test_one_set_of_bounds_refuses_in_run_config_and_in_training(field, value):
    for model in (ModelConfig, TrainParams):
        with pytest.raises(ValidationError, match=field):
            model(**{field: value})


def test_changes_make_a_copy():
    base = TrainParams()
    changed = base.with_changes(max_depth=4)
    assert (base.max_depth, changed.max_depth) == (6, 4)
