"""Safe, vectorised evaluation of the spec's derived-column expressions.

Expressions are parsed with `ast` and only arithmetic on column names, numbers and a short list
of numpy functions is accepted, so a spec file can never run arbitrary code. Evaluation works on
whole columns at once; divisions by zero and logs of non-positive numbers give NaN, never inf.

The language is also bounded, because the same evaluator runs inside the prediction service:
a spec must not be able to hang a pipeline or a request. Every number is evaluated as a float64
(never a Python int, whose powers grow without limit), nothing is folded ahead of time, an
exponent must be a literal number no larger than `MAX_EXPONENT` in magnitude, and the size of an
expression is capped, so evaluating one costs a few vectorised passes over the columns at most.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "log": np.log,
    "log1p": np.log1p,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "abs": np.abs,
    "minimum": np.minimum,
    "maximum": np.maximum,
}


_ARITY: dict[str, int] = {name: 1 for name in _FUNCTIONS} | {"minimum": 2, "maximum": 2}

MAX_SOURCE_CHARS = 500
MAX_NODES = 64
MAX_DEPTH = 12
MAX_EXPONENT = 8
MAX_CONSTANT = 1e12


class ExpressionError(ValueError):
    """An expression uses something other than bounded arithmetic on columns and numbers."""


@dataclass(frozen=True)
class DerivedExpression:
    """A parsed, validated expression and the columns it reads."""

    source: str
    tree: ast.Expression
    columns: frozenset[str]

    @classmethod
    def parse(cls, source: str) -> DerivedExpression:
        """Parse `source`, rejecting anything that is not plain, bounded arithmetic."""
        if len(source) > MAX_SOURCE_CHARS:
            raise ExpressionError(
                f"is {len(source)} characters long; the limit is {MAX_SOURCE_CHARS}"
            )
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"cannot parse {source!r}: {exc.msg}") from exc
        _check_size(tree.body)
        columns: set[str] = set()
        _validate(tree.body, columns)
        return cls(source=source, tree=tree, columns=frozenset(columns))

    def evaluate(self, frame: Mapping[str, Any]) -> np.ndarray:
        """Evaluate on whole columns; non-finite results become NaN."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            result = np.asarray(_evaluate(self.tree.body, frame), dtype="float64")
        if result.ndim == 0:
            size = len(next(iter(frame.values()))) if frame else 1
            result = np.full(size, float(result))
        result = result.copy()
        result[~np.isfinite(result)] = np.nan
        return result


def _check_size(root: ast.AST) -> None:
    """Refuse expressions too large or too deeply nested to be a feature definition."""
    nodes = sum(1 for node in ast.walk(root) if isinstance(node, ast.expr))
    if nodes > MAX_NODES:
        raise ExpressionError(f"has {nodes} syntax nodes; the limit is {MAX_NODES}")
    depth = _depth(root)
    if depth > MAX_DEPTH:
        raise ExpressionError(f"nests {depth} levels deep; the limit is {MAX_DEPTH}")


def _depth(node: ast.AST) -> int:
    children = list(ast.iter_child_nodes(node))
    return 1 + max((_depth(child) for child in children), default=0)


def _literal(node: ast.AST) -> float | None:
    """The value of a signed number literal, or None when `node` is anything else."""
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return sign * float(node.value)
    return None


def _check_exponent(node: ast.BinOp) -> None:
    exponent = _literal(node.right)
    if exponent is None or abs(exponent) > MAX_EXPONENT:
        raise ExpressionError(
            f"the exponent in {ast.unparse(node)!r} must be a number between "
            f"-{MAX_EXPONENT} and {MAX_EXPONENT}"
        )


def _validate(node: ast.AST, columns: set[str]) -> None:
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        if isinstance(node.op, ast.Pow):
            _check_exponent(node)
        _validate(node.left, columns)
        _validate(node.right, columns)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _validate(node.operand, columns)
    elif isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise ExpressionError("booleans are not allowed")
        if not abs(node.value) <= MAX_CONSTANT:  # also refuses inf and nan
            raise ExpressionError(
                f"the number {node.value!r} is out of bounds; numbers are limited to "
                f"±{MAX_CONSTANT:g}"
            )
    elif isinstance(node, ast.Name):
        if node.id in _FUNCTIONS:
            raise ExpressionError(f"function {node.id!r} must be called")
        columns.add(node.id)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            allowed = ", ".join(sorted(_FUNCTIONS))
            raise ExpressionError(f"only these functions may be called: {allowed}")
        if node.keywords:
            raise ExpressionError("keyword arguments are not allowed")
        expected = _ARITY[node.func.id]
        if len(node.args) != expected:
            raise ExpressionError(
                f"{node.func.id}() takes {expected} argument(s), got {len(node.args)}"
            )
        for arg in node.args:
            _validate(arg, columns)
    else:
        raise ExpressionError(f"{type(node).__name__} is not allowed in a derived expression")


def _evaluate(node: ast.AST, frame: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, frame), _evaluate(node.right, frame))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, frame))
    if isinstance(node, ast.Constant):
        return np.float64(node.value)  # float64 arithmetic overflows to inf, it never grows
    if isinstance(node, ast.Name):
        return _as_float(frame[node.id])
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _FUNCTIONS[node.func.id](*(_evaluate(a, frame) for a in node.args))
    raise ExpressionError(f"{type(node).__name__} is not allowed")  # unreachable after parse


def _as_float(values: Any) -> np.ndarray:
    if hasattr(values, "to_numpy"):  # a pandas Series (pandas is not imported just for this)
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(values, dtype="float64")
