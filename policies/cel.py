"""CEL conditions: compiled once at load, evaluated in a small sandbox.

The expression sees three variables: `claims` (the Claims model as JSON:
hex strings, ISO-8601 times, enums as their values), `resource` (the
resource asked for, or null) and `now` (a timestamp: the evaluation's `at`).

Sandbox: only CEL's standard functions and macros (celpy's base functions;
`matches` uses RE2, linear time); no custom functions. celpy has no step
budget or timeout, so cost is bounded before evaluation instead: at most
MAX_CHARS characters, MAX_NODES parse-tree nodes, MAX_EXPR_NESTING nested
sub-expressions and MAX_COMPREHENSION_NESTING nested comprehension macros
(all/exists/exists_one/map/filter). CEL has no loops, variables or string
repetition, so with these limits every value built is at most a small
polynomial in the size of the claims, which are bounded themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.evaluation import CELSyntaxError, CELUnsupportedError, base_functions

MAX_CHARS = 2000
MAX_NODES = 1500
MAX_EXPR_NESTING = 12
MAX_COMPREHENSION_NESTING = 2

_MACROS = {"all", "exists", "exists_one", "map", "filter"}
_FUNCTIONS = {name for name in base_functions if name[0].isalpha()} | _MACROS | {"has"}
_ENV = celpy.Environment()


class CelCompileError(ValueError):
    """An expression that does not parse or breaks a sandbox limit; line/column are 1-based."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


@dataclass(frozen=True)
class CelOutcome:
    passed: bool
    actual: str
    message: str


class CelProgram:
    """One compiled condition. Build with `compile_condition`."""

    def __init__(self, text: str, tree: lark.Tree) -> None:
        self.text = text
        self._runner = _ENV.program(tree)

    def evaluate(self, claims_json: dict, *, resource: str | None, at: datetime) -> CelOutcome:
        """Run the condition; every failure (missing field, wrong type) is a failed outcome."""
        try:
            activation = {"claims": to_cel(claims_json),
                          "resource": celtypes.StringType(resource) if resource is not None else None,
                          "now": celtypes.TimestampType(at)}
            value = self._runner.evaluate(activation)
        except celpy.CELEvalError as exc:
            return CelOutcome(False, "error", f"condition could not be evaluated: {_eval_message(exc)}")
        except (RecursionError, MemoryError, ArithmeticError, TypeError, ValueError, LookupError,
                CELSyntaxError, CELUnsupportedError) as exc:   # celpy finds some malformed trees only here
            return CelOutcome(False, "error", f"condition could not be evaluated: {type(exc).__name__}: {exc}")
        if not isinstance(value, celtypes.BoolType):
            return CelOutcome(False, _short(value), f"condition gave {type(value).__name__}, not a boolean")
        return CelOutcome(bool(value), str(bool(value)).lower(),
                          "condition holds" if value else "condition is false")


def to_cel(value: Any) -> Any:
    """JSON data as CEL values; integers beyond int64 (u64 bit fields) become uint."""
    if isinstance(value, dict):
        return celtypes.MapType({celtypes.StringType(k): to_cel(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return celtypes.ListType([to_cel(v) for v in value])
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.IntType(value) if -(2**63) <= value < 2**63 else celtypes.UintType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    return None


def _eval_message(exc: celpy.CELEvalError) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


@lru_cache(maxsize=512)
def compile_condition(text: str) -> CelProgram:
    """Parse and check `text`; cached per expression text. Raises CelCompileError."""
    if len(text) > MAX_CHARS:
        raise CelCompileError(f"condition is {len(text)} characters; the limit is {MAX_CHARS}")
    _check_string_literals(text)
    try:
        tree = _ENV.compile(text)
    except celpy.CELParseError as exc:
        first = str(exc.args[0]).splitlines()[0] if exc.args else "syntax error"
        raise CelCompileError(f"condition does not parse near: {first.strip()!r}",
                              getattr(exc, "line", None) or 1, getattr(exc, "column", None) or 1) from None
    _check_limits(tree)
    return CelProgram(text, tree)


def _check_string_literals(text: str) -> None:
    """Every string literal ends (a backslash escapes the next character; '"' and "'" ones end on their
    line). celpy's lexer regexes backtrack exponentially on an unterminated literal full of escapes or
    carriage returns: a 60-character condition would hang the loader. This scan is linear."""
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):                       # a comment runs to the end of the line
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if text[i] not in "\"'":
            i += 1
            continue
        start = i
        quote = text[i:i + 3] if text[i:i + 3] in ('"""', "'''") else text[i]
        i += len(quote)
        while not text.startswith(quote, i):
            if i >= n or (len(quote) == 1 and "\n" in text[i:i + 2]):   # also a backslash-newline
                line = text.count("\n", 0, start) + 1
                raise CelCompileError("string literal is not terminated", line, start - text.rfind("\n", 0, start))
            i += 2 if text[i] == "\\" else 1
        i += len(quote)


def _check_limits(tree: lark.Tree) -> None:
    nodes = sum(1 for _ in tree.iter_subtrees())
    if nodes > MAX_NODES:
        raise CelCompileError(f"condition is too large ({nodes} parse nodes; the limit is {MAX_NODES})")
    _walk(tree, expr_depth=0, comprehension_depth=0)


def _walk(node: lark.Tree, *, expr_depth: int, comprehension_depth: int) -> None:
    if node.data == "expr":
        expr_depth += 1
        if expr_depth > MAX_EXPR_NESTING:
            raise CelCompileError(f"condition nests sub-expressions deeper than {MAX_EXPR_NESTING}", *_pos(node))
    name = _called_name(node)
    if name is not None:
        if name not in _FUNCTIONS:
            raise CelCompileError(f"unknown function {name!r}: only CEL's standard functions are available",
                                  *_pos(node))
        if name in _MACROS and node.data == "member_dot_arg":
            comprehension_depth += 1
            if comprehension_depth > MAX_COMPREHENSION_NESTING:
                raise CelCompileError(f"comprehensions nest deeper than {MAX_COMPREHENSION_NESTING}", *_pos(node))
    for child in node.children:
        if isinstance(child, lark.Tree):
            _walk(child, expr_depth=expr_depth, comprehension_depth=comprehension_depth)


def _called_name(node: lark.Tree) -> str | None:
    if node.data not in ("ident_arg", "member_dot_arg"):
        return None
    tokens = [c for c in node.children if isinstance(c, lark.Token)]
    return str(tokens[0]) if tokens else None


def _pos(node: lark.Tree) -> tuple[int, int]:
    meta = node.meta
    return (meta.line, meta.column) if not meta.empty else (1, 1)
