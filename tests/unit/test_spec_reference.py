"""The spec reference page is generated from the spec's models, and committed as generated."""

from pathlib import Path

from mlops_assets.spec import DatasetSpec, DType, TaskType
from mlops_assets.spec.reference import PAGE, _reachable, render_reference

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_page_is_the_generated_one():
    committed = (ROOT / PAGE).read_text()
    assert committed == render_reference(), (
        "docs/reference/spec.md is stale: run `.venv/bin/python scripts/spec_reference.py`"
    )


def test_every_field_and_allowed_value_is_on_the_page():
    page = render_reference()
    models, enums = _reachable(DatasetSpec)
    assert len(models) == 15 and len(enums) == len({e.__name__ for e in enums})
    for model in models:
        for name in model.model_fields:
            assert f"| `{name}` |" in page, f"{model.__name__}.{name}"
    for enum in (TaskType, DType):
        assert f"Values: {', '.join(f'`{m.value}`' for m in enum)}." in page
    assert "| `folds` | integer | `5` | >= 2; <= 20 |  |" in page
    assert "| `task` | [TaskType](#tasktype) | *required* |" in page
    assert "| `nullable` | boolean | `false` |  |  |" in page
