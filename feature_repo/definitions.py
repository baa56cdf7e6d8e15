"""Feast object definitions for the `feast` CLI, in the local template's order.

They are not written by hand: they are built from the dataset spec by the same function the
platform uses (`mlops_assets.features.feast_repo.build_definitions`), so `feast apply` here and
the `feast_registry` asset always agree. Run the CLI through `./mlops feast <command>`,
which points `MLOPS_HOME` at the platform's state folder.
"""

from mlops_assets.features.feast_repo import build_definitions
from mlops_assets.paths import PlatformPaths, resolve_home
from mlops_assets.resources import resolve_spec_path
from mlops_assets.spec import load_spec

_paths = PlatformPaths(resolve_home())
_definitions = build_definitions(load_spec(resolve_spec_path(_paths)), _paths)

# The entity: what the features describe (a house), joined on the spec's entity key.
entity = _definitions.entity
# The source: the Parquet feature table the `features` asset writes.
source = _definitions.source
# The feature view: every engineered feature, never expiring (a house keeps its last values).
feature_view = _definitions.view
# The feature service: the model's inputs, versioned with the dataset spec.
feature_service = _definitions.service
