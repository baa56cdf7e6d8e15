"""Safe, vectorised evaluation of the spec's derived-column expressions.

Expressions are parsed with `ast` and only arithmetic on column names, numbers and a short list
of numpy functions is accepted, so a spec file can never run arbitrary code. Evaluation works on
whole columns at once; divisions by zero and logs of non-positive numbers give NaN, never inf.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

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


class ExpressionError(ValueError):
    """An expression uses something other than arithmetic on columns and numbers."""


@dataclass(frozen=True)
class DerivedExpression:
    """A parsed, validated expression and the columns it reads."""

    source: str
    tree: ast.Expression
    columns: frozenset[str]

    @classmethod
    def parse(cls, source: str) -> DerivedExpression:
        """Parse `source`, rejecting anything that is not plain arithmetic."""
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"cannot parse {source!r}: {exc.msg}") from exc
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


def _validate(node: ast.AST, columns: set[str]) -> None:
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _validate(node.left, columns)
        _validate(node.right, columns)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _validate(node.operand, columns)
    elif isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise ExpressionError("booleans are not allowed")
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
        return node.value
    if isinstance(node, ast.Name):
        return _as_float(frame[node.id])
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _FUNCTIONS[node.func.id](*(_evaluate(a, frame) for a in node.args))
    raise ExpressionError(f"{type(node).__name__} is not allowed")  # unreachable after parse


def _as_float(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(values, dtype="float64")
