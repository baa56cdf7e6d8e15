"""The dataset spec and its loaders; see `model.py`."""

from pathlib import Path

from mlops_assets.spec.model import (
    DERIVED_ENTITY_KEY,
    DERIVED_EVENT_TIMESTAMP,
    EVENT_YEAR,
    ColumnSpec,
    DatasetSpec,
    DType,
    Family,
    FederatedSettings,
    FederatedTls,
    Imputation,
    PromotionPolicy,
    Protocol,
    Role,
    SpecError,
    TaskType,
    TrainingSettings,
    load_spec,
)

SPECS_DIR = Path(__file__).parent
HOUSE_PRICES_SPEC = SPECS_DIR / "house_prices.yaml"
BREAST_CANCER_SPEC = SPECS_DIR / "breast_cancer.yaml"
DIABETES_SPEC = SPECS_DIR / "diabetes.yaml"
WINE_BINARY_SPEC = SPECS_DIR / "wine_binary.yaml"
RETAIL_DEMAND_SPEC = SPECS_DIR / "retail_demand.yaml"
WINE_SPEC = SPECS_DIR / "wine.yaml"

__all__ = [
    "BREAST_CANCER_SPEC",
    "DERIVED_ENTITY_KEY",
    "DERIVED_EVENT_TIMESTAMP",
    "DIABETES_SPEC",
    "EVENT_YEAR",
    "HOUSE_PRICES_SPEC",
    "RETAIL_DEMAND_SPEC",
    "WINE_BINARY_SPEC",
    "WINE_SPEC",
    "ColumnSpec",
    "DType",
    "DatasetSpec",
    "Family",
    "FederatedSettings",
    "FederatedTls",
    "Imputation",
    "PromotionPolicy",
    "Protocol",
    "Role",
    "SpecError",
    "TaskType",
    "TrainingSettings",
    "load_spec",
]
