"""Dataset spec files kept for the tests, besides the shipped ones."""

from pathlib import Path

# A heart-disease-like classification dataset: integer categories, a binary target.
HEART_SPEC = Path(__file__).resolve().parent / "data" / "heart_like.yaml"
