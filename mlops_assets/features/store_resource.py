"""The Feast feature store as a Dagster resource, for the assets of the `features` group.

Its own module, not `resources.py`: the shared resources sit below every stage, and this one
needs the stage's Feast configuration. Not in `feast_repo.py` either, which the service imports
and which should not pull in Dagster.
"""

from typing import Any

import dagster as dg

from mlops_assets.resources import MlopsHome


class FeatureStoreResource(dg.ConfigurableResource):
    """The Feast feature store of this state folder (configured by feature_repo/)."""

    home: MlopsHome

    def store(self) -> Any:
        """A `feast.FeatureStore`; imported lazily because Feast takes seconds to import."""
        from mlops_assets.features.feast_repo import feature_store

        return feature_store(self.home.paths())
