"""The platform's import graph has no cycles: between modules, and between stage packages.

Stages depend one way (ingestion -> features -> training -> deployment -> monitoring,
automation on top, shared modules below): a cycle means two stages can no longer be read,
tested or changed apart. Every import counts, a lazy one inside a function too, since it
couples the modules just the same. The graph is read from the source with `ast`, so nothing is
imported and a cycle is named with the file and line of each import that closes it.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

PACKAGE = "mlops_assets"
SOURCE = Path(__file__).resolve().parents[1] / PACKAGE

Edges = dict[str, dict[str, str]]  # importer -> imported -> "file:line" of the first import


def module_edges(source: Path, package: str) -> Edges:
    """Every import of one module of `package` by another, with where it is written."""
    modules = {_module_name(path, source, package): path for path in source.rglob("*.py")}
    edges: Edges = {}
    for name, path in sorted(modules.items()):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(node, name, path):
                found = _known(target, modules)
                if found and found != name:
                    where = f"{path.relative_to(source.parent)}:{node.lineno}"
                    edges.setdefault(name, {}).setdefault(found, where)
    return edges


def package_edges(edges: Edges, package: str) -> Edges:
    """The same imports between stage packages (a top-level module is its own node)."""
    grouped: Edges = {}
    for importer, targets in edges.items():
        for imported, where in targets.items():
            a, b = _stage(importer, package), _stage(imported, package)
            if a != b:
                grouped.setdefault(a, {}).setdefault(b, f"{where} imports {imported}")
    return grouped


def find_cycle(edges: Edges) -> list[str] | None:
    """One cycle of the graph as its nodes in order (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def describe(cycle: list[str], edges: Edges) -> str:
    """`a -> b -> a`, each step with the import that makes it."""
    steps = [f"{a} -> {b} ({edges[a][b]})" for a, b in itertools.pairwise(cycle)]
    return "import cycle " + " -> ".join(cycle) + ":\n  " + "\n  ".join(steps)


def test_no_import_cycle_between_modules():
    edges = module_edges(SOURCE, PACKAGE)
    cycle = find_cycle(edges)
    assert cycle is None, describe(cycle, edges)


def test_no_import_cycle_between_stage_packages():
    edges = package_edges(module_edges(SOURCE, PACKAGE), PACKAGE)
    cycle = find_cycle(edges)
    assert cycle is None, describe(cycle, edges)


def test_a_planted_cycle_is_named_with_its_imports(tmp_path):
    """The check itself can fail: two stages that import each other, one of them lazily."""
    root = tmp_path / "pkg"
    for folder in ("training", "deployment"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "training" / "assets.py").write_text("from pkg.deployment.registry import Registry\n")
    (root / "deployment" / "registry.py").write_text("class Registry: ...\n")
    (root / "deployment" / "assets.py").write_text(
        "def promote():\n    from pkg.training.assets import read\n"
    )
    modules = module_edges(root, "pkg")
    assert find_cycle(modules) is None, "no module imports itself back"
    stages = package_edges(modules, "pkg")
    cycle = find_cycle(stages)
    assert cycle == ["deployment", "training", "deployment"]
    message = describe(cycle, stages)
    assert "pkg/deployment/assets.py:2 imports pkg.training.assets" in message
    assert "pkg/training/assets.py:1 imports pkg.deployment.registry" in message


def _module_name(path: Path, source: Path, package: str) -> str:
    parts = [package, *path.relative_to(source).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, path: Path) -> list[str]:
    """Dotted names an import statement may refer to (`from a import b` may mean `a.b`)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: resolve against this module's package
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The module `name` lives in, when it is one of ours."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _stage(module: str, package: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else package
