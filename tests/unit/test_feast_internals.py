"""Feast's private API is used only through one adapter, and an upgrade that moves any of it
fails here, naming the symbol."""

import ast
from pathlib import Path

import pytest

from mlops_assets.features import feast_internals

pytest.importorskip("feast")
PACKAGE = Path(feast_internals.__file__).resolve().parents[1]
ADAPTER = Path(feast_internals.__file__).resolve()
PRIVATE = {name for _, name in feast_internals.PRIVATE_FUNCTIONS} | {
    name for *_, name in feast_internals.PRIVATE_METHODS
}


def test_installed_feast_still_has_every_private_symbol_we_use():
    missing = feast_internals.missing_symbols()
    assert not missing, (
        f"Feast moved {missing}: update mlops_assets/features/feast_internals.py for this "
        "Feast version, or pin Feast below it in pyproject.toml"
    )


def test_missing_symbols_names_a_symbol_that_moved(monkeypatch):
    from feast.infra.online_stores import helpers

    monkeypatch.delattr(helpers, "_mmh3")
    assert feast_internals.missing_symbols() == ["feast.infra.online_stores.helpers._mmh3"]


def test_no_module_but_the_adapter_touches_feast_private_names():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path == ADAPTER:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Attribute):
                names = [node.attr]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("feast"):
                names = [alias.name for alias in node.names]
            offenders += [f"{path.relative_to(PACKAGE)}: {n}" for n in names if n in PRIVATE]
    assert not offenders, offenders


def test_fast_writers_do_not_import_each_other():
    for name in ("redis_write.py", "sqlite_write.py"):
        source = (PACKAGE / "features" / name).read_text()
        other = "sqlite_write" if name == "redis_write.py" else "redis_write"
        assert f"features.{other}" not in source and "features.online_write" not in source
