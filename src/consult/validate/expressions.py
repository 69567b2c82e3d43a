"""The few XPath shapes the forms use in `relevant` and `choice_filter`, evaluated a table at a time.

Supported: `${x} = 'v'`, `${x} != 'v'`, `selected(${x}, 'v')`, `not(...)`, parentheses, and
`and` / `or` between them; in choice filters a bare name (`workshop`, `pilot`, `name`) is a
column of the chosen choice. Anything else raises `Unsupported`, and the caller leaves that
rule to the form (Collect enforces it on the phone) rather than guess.

Values compare as text and an empty answer is `''`, as in ODK.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from consult.forms.schema import FormSchema


class Unsupported(ValueError):
    """An expression outside the shapes above."""


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Property:
    """A bare name in a choice filter: a column of the choice list."""

    name: str


@dataclass(frozen=True)
class Compare:
    left: Ref | Text | Property
    op: str
    right: Ref | Text | Property


@dataclass(frozen=True)
class Selected:
    ref: Ref
    value: str


@dataclass(frozen=True)
class Not:
    part: Expr


@dataclass(frozen=True)
class Both:
    parts: tuple[Expr, ...]


@dataclass(frozen=True)
class Either:
    parts: tuple[Expr, ...]


Expr = Compare | Selected | Not | Both | Either

_TOKEN = re.compile(r"""\s*(?:\$\{(?P<ref>[A-Za-z_][\w.-]*)\}|'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<op>!=|=)"""
                    r"""|(?P<punct>[(),])|(?P<name>[A-Za-z_][\w.-]*))""")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    while at < len(text.rstrip()):
        match = _TOKEN.match(text, at)
        if not match:
            raise Unsupported(text)
        kind = match.lastgroup or ""
        tokens.append(("text" if kind in ("sq", "dq") else kind, match.group(kind)))
        at = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def parse(self) -> Expr:
        expr = self._either()
        if self.at != len(self.tokens):
            raise Unsupported(self.text)
        return expr

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self, kind: str, value: str | None = None) -> str:
        token = self._peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            raise Unsupported(self.text)
        self.at += 1
        return token[1]

    def _either(self) -> Expr:
        parts = [self._both()]
        while self._peek() == ("name", "or"):
            self.at += 1
            parts.append(self._both())
        return parts[0] if len(parts) == 1 else Either(tuple(parts))

    def _both(self) -> Expr:
        parts = [self._unary()]
        while self._peek() == ("name", "and"):
            self.at += 1
            parts.append(self._unary())
        return parts[0] if len(parts) == 1 else Both(tuple(parts))

    def _unary(self) -> Expr:
        token = self._peek()
        if token == ("punct", "("):
            self.at += 1
            expr = self._either()
            self._take("punct", ")")
            return expr
        calls = token in (("name", "not"), ("name", "selected"))
        if calls and self.tokens[self.at + 1:self.at + 2] == [("punct", "(")]:
            self.at += 2
            if token[1] == "not":
                expr: Expr = Not(self._either())
            else:
                ref = Ref(self._take("ref"))
                self._take("punct", ",")
                expr = Selected(ref, self._take("text"))
            self._take("punct", ")")
            return expr
        left = self._operand()
        op = self._take("op")
        return Compare(left, op, self._operand())

    def _operand(self) -> Ref | Text | Property:
        token = self._peek()
        if token is None or token[0] not in ("ref", "text", "name") or token[1] in ("and", "or"):
            raise Unsupported(self.text)
        self.at += 1
        kind, value = token
        return Ref(value) if kind == "ref" else Text(value) if kind == "text" else Property(value)


def parse(text: str) -> Expr:
    return _Parser(text).parse()


def columns_by_name(schema: FormSchema) -> dict[str, str]:
    """Field name → column for the names `${…}` can mean: those used once in the form."""
    return {f.name: f.column for f in schema.fields if f.key == f.name}


def refs(expr: Expr) -> set[str]:
    """Names of the fields an expression reads."""
    if isinstance(expr, Compare):
        return {side.name for side in (expr.left, expr.right) if isinstance(side, Ref)}
    if isinstance(expr, Selected):
        return {expr.ref.name}
    if isinstance(expr, Not):
        return refs(expr.part)
    return set().union(*(refs(p) for p in expr.parts))


Lookup = Callable[[str], "pd.Series"]


@dataclass(frozen=True)
class Scope:
    """Where names resolve: `${x}` through `ref`, a choice filter's bare names through `prop`."""

    index: pd.Index
    ref: Lookup
    prop: Lookup | None = None
    text: Lookup | None = None
    """`ref(name)` as `as_text` writes it, when the caller keeps it: a page's rules read the same
    columns as text again and again (`ColumnFrame.text`)."""


def holds(expr: Expr, scope: Scope) -> pd.Series:
    """A boolean Series over the scope's rows: where the expression is true."""
    import pandas as pd
    if isinstance(expr, Compare):
        left, right = _value(expr.left, scope), _value(expr.right, scope)
        equal = left == right
        result = equal if expr.op == "=" else ~equal
        return result if isinstance(result, pd.Series) else pd.Series(bool(result), index=scope.index)
    if isinstance(expr, Selected):
        tokens = _ref_text(expr.ref.name, scope)
        return tokens.str.contains(rf"(?:^|\s){re.escape(expr.value)}(?:\s|$)", regex=True)
    if isinstance(expr, Not):
        return ~holds(expr.part, scope)
    results = [holds(p, scope) for p in expr.parts]
    combined = results[0]
    for result in results[1:]:
        combined = combined & result if isinstance(expr, Both) else combined | result
    return combined


def holds_for(expr: Expr, answer: Callable[[str], Any]) -> bool:
    """`holds` for one submission, without pandas: `answer(name)` is `${name}`'s stored value."""
    if isinstance(expr, Compare):
        equal = _answer_text(expr.left, answer) == _answer_text(expr.right, answer)
        return equal if expr.op == "=" else not equal
    if isinstance(expr, Selected):
        return expr.value in _one_text(answer(expr.ref.name)).split()
    if isinstance(expr, Not):
        return not holds_for(expr.part, answer)
    results = (holds_for(p, answer) for p in expr.parts)
    return all(results) if isinstance(expr, Both) else any(results)


def _answer_text(operand: Ref | Text | Property, answer: Callable[[str], Any]) -> str:
    if isinstance(operand, Text):
        return operand.value
    if isinstance(operand, Ref):
        return _one_text(answer(operand.name))
    raise Unsupported(f"bare name {operand.name!r} outside a choice filter")


def _one_text(value: Any) -> str:
    """A value as `as_text` writes it: '' when empty, else its text (an integer without `.0`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def as_text(series: pd.Series) -> pd.Series:
    """Values as the expressions compare them: '' when empty, else their text."""
    return series.astype(object).where(series.notna(), "").astype(str)


def _ref_text(name: str, scope: Scope) -> pd.Series:
    return scope.text(name) if scope.text is not None else as_text(scope.ref(name))


def _value(operand: Ref | Text | Property, scope: Scope) -> pd.Series | str:
    if isinstance(operand, Text):
        return operand.value
    if isinstance(operand, Ref):
        return _ref_text(operand.name, scope)
    if scope.prop is None:
        raise Unsupported(f"bare name {operand.name!r} outside a choice filter")
    return as_text(scope.prop(operand.name))
