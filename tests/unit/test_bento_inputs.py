"""The bento is rebuilt exactly when something it packs changes."""

from pathlib import Path

from mlops_assets.deployment.bento_export import build_inputs_hash

BENTOFILE = """service: "bentos.service:Service"
include:
  - "bentos/*.py"
  - "pkg/**/*.py"
exclude:
  - "**/__pycache__"
"""


def _project(root: Path) -> Path:
    (root / "bentos").mkdir(parents=True)
    (root / "pkg" / "sub" / "__pycache__").mkdir(parents=True)
    (root / "bentos" / "service.py").write_text("A = 1\n")
    (root / "pkg" / "sub" / "core.py").write_text("B = 2\n")
    bentofile = root / "bentos" / "bentofile.yaml"
    bentofile.write_text(BENTOFILE)
    return bentofile


def test_hash_follows_packed_files_only(tmp_path):
    bentofile = _project(tmp_path)
    first = build_inputs_hash(bentofile, tmp_path)
    assert build_inputs_hash(bentofile, tmp_path) == first
    (tmp_path / "README.md").write_text("not packed")
    (tmp_path / "pkg" / "sub" / "__pycache__" / "core.py").write_text("cache")
    assert build_inputs_hash(bentofile, tmp_path) == first
    (tmp_path / "pkg" / "sub" / "core.py").write_text("B = 3\n")
    second = build_inputs_hash(bentofile, tmp_path)
    assert second != first
    (tmp_path / "pkg" / "new.py").write_text("")
    third = build_inputs_hash(bentofile, tmp_path)
    assert third != second
    bentofile.write_text(BENTOFILE + "labels: {a: b}\n")
    assert build_inputs_hash(bentofile, tmp_path) != third
