"""Write docs/reference/spec.md from the dataset spec's pydantic models.

Run after changing `mlops_assets/spec/model.py`: `.venv/bin/python scripts/spec_reference.py`.
A test fails while the committed page differs from what this writes.
"""

from pathlib import Path

from mlops_assets.spec.reference import write_reference

if __name__ == "__main__":
    written = write_reference(Path(__file__).resolve().parents[1])
    print(f"wrote {written}")  # noqa: T201
