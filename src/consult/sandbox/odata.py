"""OData query options of the sandbox, compiled the way ODK Central evaluates them.

Central parses `$filter` with the `odata-v4-parser` npm package and turns the AST into SQL
(`lib/data/odata-filter.js`); only the five `__system` fields below are filterable, and the
error messages carry the parser's character positions (`Unexpected character at 15`).
Clients branch on those codes, so this module ports the parser's grammar for the subset a
filter can use (literals, member paths, `$root/...`, method calls, comparisons, `and`,
`or`, `not`, parentheses, arithmetic) with the same precedence quirks, and compiles the
AST to a parametrised SQLite WHERE clause over the server's own column names.

Also here: `$orderby` (`lib/data/odata-filter.js#odataOrderBy`), the `$skiptoken` format
(`01` + base64(JSON), `lib/util/db.js`), the absolute `@odata.nextLink`
(`lib/util/http.js#urlWithQueryParams`, re-encoded like WHATWG `URLSearchParams`), the
JSON envelope of a feed page, and `to_json`, a serializer that writes numbers and strings
exactly like JavaScript's `JSON.stringify` so precomputed rows are byte-identical to
Central's.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "SYSTEM_FILTER_FIELDS",
    "CentralProblem",
    "ODataError",
    "compile_filter",
    "compile_orderby",
    "decode_skiptoken",
    "encode_skiptoken",
    "filter_references_deleted_at",
    "next_link",
    "odata_page_json",
    "parse_filter",
    "to_json",
    "url_search_params",
]


# ---------------------------------------------------------------------------------------------
# Errors


class CentralProblem(Exception):
    """An error the server answers with Central's `{"message", "code", "details"?}` JSON."""

    def __init__(self, status: int, code: float, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        """The response body exactly as Central writes it (`details` only when there are any)."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.code}, {self.message!r}, {self.details!r})"


class ODataError(CentralProblem):
    """A `$filter`/`$orderby`/`$select`/`$skiptoken` problem (400.18, 400.23, 400.35, 501.x ...)."""


def _unparseable(reason: str) -> ODataError:
    return ODataError(400, 400.18, f"The OData filter expression you provided could not be parsed: {reason}",
                      {"reason": reason})


def _unsupported_field(text: str, at: int | None) -> ODataError:
    if at is None:  # Central's $orderby errors carry no position
        return ODataError(501, 501.5, "The given OData filter expression references fields not supported "
                          f"by this server: {text}", {"text": text})
    return ODataError(501, 501.5, "The given OData filter expression references fields not supported by "
                      f"this server: {text} at {at}", {"at": at, "text": text})


def _unsupported_expression(node: _Tok) -> ODataError:
    return ODataError(501, 501.4, "The given OData filter expression uses features not supported by this "
                      f'server: {node.type} at {node.position} ("{node.raw}")',
                      {"at": node.position, "type": node.type, "text": node.raw})


# ---------------------------------------------------------------------------------------------
# The odata-v4-parser grammar (src/expressions.ts, lexer.ts, primitiveLiteral.ts), ported.
# Every function takes the source and a position and returns a token or None, exactly like
# the JavaScript (which returns `undefined` on a mismatch and lets the caller try the next
# alternative). Positions are UTF-16 code units in JS; the filter texts Central sees are
# ASCII in practice, so Python indices are used as they are.


@dataclass
class _Tok:
    """A parser token: where it starts and ends, its type and its (type-dependent) value."""

    type: str
    position: int
    next: int
    value: Any
    raw: str


def _tokenize(src: str, start: int, nxt: int, value: Any, type_: str) -> _Tok:
    return _Tok(type_, start, nxt, value, src[start:nxt])


def _clone(tok: _Tok) -> _Tok:
    return _Tok(tok.type, tok.position, tok.next, tok.value, tok.raw)


def _ch(src: str, i: int) -> int:
    return ord(src[i]) if 0 <= i < len(src) else -1


def _equals(src: str, i: int, lit: str) -> int:
    return len(lit) if src.startswith(lit, i) else 0


def _alpha(c: int) -> bool:
    return 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A


def _digit(c: int) -> bool:
    return 0x30 <= c <= 0x39


def _hexdig(c: int) -> bool:
    return _digit(c) or 0x41 <= c <= 0x46 or 0x61 <= c <= 0x66


def _required(src: str, i: int, pred: Any, min_: int = 0, max_: int | None = None) -> int:
    """Utils.required: index after 1..max matching chars, or 0 (JS falsy) when too few."""
    n = 0
    limit = max_ or (len(src) - i)
    while n < limit and pred(_ch(src, i + n)):
        n += 1
    return i + n if min_ <= n <= limit else 0


def _ws_len(src: str, i: int) -> int:
    if _equals(src, i, "%20") or _equals(src, i, "%09"):
        return 3
    return 1 if _ch(src, i) in (0x20, 0x09) else 0


def _ows(src: str, i: int) -> int:
    inc = _ws_len(src, i)
    while inc:
        i += inc
        inc = _ws_len(src, i)
    return i


_RWS = _BWS = _ows


def _punct(char: str, pct: str | None) -> Any:
    def match(src: str, i: int) -> int | None:
        if _ch(src, i) == ord(char):
            return i + 1
        if pct is not None and _equals(src, i, pct):
            return i + 3
        return None
    return match


_OPEN = _punct("(", "%28")
_CLOSE = _punct(")", "%29")
_COMMA = _punct(",", "%2C")
_SQUOTE = _punct("'", "%27")
_COLON = _punct(":", "%3A")
_AT = _punct("@", "%40")
_STAR = _punct("*", "%2A")
_SEMI = _punct(";", "%3B")


def _sign(src: str, i: int) -> int | None:
    if _ch(src, i) in (0x2B, 0x2D):
        return i + 1
    if _equals(src, i, "%2B"):
        return i + 3
    return None


def _unreserved(c: int) -> bool:
    return _alpha(c) or _digit(c) or c in (0x2D, 0x2E, 0x5F, 0x7E)


def _other_delims(src: str, i: int) -> int | None:
    if _ch(src, i) in (0x21, 0x2B):
        return i + 1
    return _OPEN(src, i) or _CLOSE(src, i) or _STAR(src, i) or _COMMA(src, i) or _SEMI(src, i)


def _pct_encoded_no_squote(src: str, i: int) -> int:
    if _equals(src, i, "%27"):
        return i
    if _ch(src, i) != 0x25 or not _hexdig(_ch(src, i + 1)) or not _hexdig(_ch(src, i + 2)):
        return i
    return i + 3


def _pchar_no_squote(src: str, i: int) -> int:
    c = _ch(src, i)
    if _unreserved(c) or c in (0x24, 0x26):
        return i + 1
    eq = i + 1 if c == 0x3D else None
    return (_other_delims(src, i) or eq or _COLON(src, i) or _AT(src, i)
            or _pct_encoded_no_squote(src, i) or i)


def _one_to_nine(c: int) -> bool:
    return c != 0x30 and _digit(c)


def _zero_to_59(src: str, i: int) -> int:
    if 0x30 <= _ch(src, i) <= 0x35 and _digit(_ch(src, i + 1)):
        return i + 2
    return i


def _year(src: str, i: int) -> int:
    start = i
    if _ch(src, i) == 0x2D:
        i += 1
    if _ch(src, i) == 0x30:
        end = _required(src, i + 1, _digit, 3, 3)
        if end:
            return end
    elif _one_to_nine(_ch(src, i)):
        end = _required(src, i + 1, _digit, 3)
        if end:
            return end
    return start


def _month(src: str, i: int) -> int:
    c, d = _ch(src, i), _ch(src, i + 1)
    if (c == 0x30 and _one_to_nine(d)) or (c == 0x31 and 0x30 <= d <= 0x32):
        return i + 2
    return i


def _day(src: str, i: int) -> int:
    c, d = _ch(src, i), _ch(src, i + 1)
    if (c == 0x30 and _one_to_nine(d)) or (c in (0x31, 0x32) and _digit(d)) or (c == 0x33 and d in (0x30, 0x31)):
        return i + 2
    return i


def _hour(src: str, i: int) -> int:
    c, d = _ch(src, i), _ch(src, i + 1)
    if (c in (0x30, 0x31) and _digit(d)) or (c == 0x32 and 0x30 <= d <= 0x33):
        return i + 2
    return i


def _fractional(src: str, i: int) -> int:
    return _required(src, i, _digit, 1, 12)


def _lit(src: str, start: int, end: int, edm: str) -> _Tok:
    return _tokenize(src, start, end, edm, "Literal")


def _null_value(src: str, i: int) -> _Tok | None:
    return _lit(src, i, i + 4, "null") if _equals(src, i, "null") else None


def _boolean_value(src: str, i: int) -> _Tok | None:
    if _equals(src, i, "true"):
        return _lit(src, i, i + 4, "Edm.Boolean")
    if _equals(src, i, "false"):
        return _lit(src, i, i + 5, "Edm.Boolean")
    return None


def _guid_value(src: str, i: int) -> _Tok | None:
    if (_required(src, i, _hexdig, 8, 8) and _ch(src, i + 8) == 0x2D
            and _required(src, i + 9, _hexdig, 4, 4) and _ch(src, i + 13) == 0x2D
            and _required(src, i + 14, _hexdig, 4, 4) and _ch(src, i + 18) == 0x2D
            and _required(src, i + 19, _hexdig, 4, 4) and _ch(src, i + 23) == 0x2D
            and _required(src, i + 24, _hexdig, 12)):
        return _lit(src, i, i + 36, "Edm.Guid")
    return None


def _date_end(src: str, i: int) -> int | None:
    """YYYY-MM-DD from `i`: the index after the day, or None."""
    y = _year(src, i)
    if y == i or _ch(src, y) != 0x2D:
        return None
    m = _month(src, y + 1)
    if m == y + 1 or _ch(src, m) != 0x2D:
        return None
    d = _day(src, m + 1)
    return None if d == m + 1 else d


def _date_value(src: str, i: int) -> _Tok | None:
    d = _date_end(src, i)
    if d is None or _ch(src, d) == 0x54:
        return None
    return _lit(src, i, d, "Edm.Date")


def _time_tail(src: str, hour_next: int) -> int | None:
    """hh:mm[:ss[.fff]] after the hour: returns the end, or None."""
    colon = _COLON(src, hour_next)
    if colon is None:
        return None
    minute_next = _zero_to_59(src, colon)
    if minute_next == colon:
        return None
    end = minute_next
    colon = _COLON(src, minute_next)
    if colon is not None:
        second_next = _zero_to_59(src, colon)
        if second_next == colon:
            return None
        if _ch(src, second_next) == 0x2E:
            frac = _fractional(src, second_next + 1)
            if frac == second_next + 1 or not frac:
                return None
            end = frac
        else:
            end = second_next
    return end


def _datetimeoffset_value(src: str, i: int) -> _Tok | None:
    d = _date_end(src, i)
    if d is None or _ch(src, d) != 0x54:
        return None
    end = _time_tail(src, _hour(src, d + 1))
    if end is None:
        return None
    sign = _sign(src, end)
    if _ch(src, end) == 0x5A:
        end += 1
    elif sign is not None:
        zh = _hour(src, sign)
        colon = _COLON(src, zh)
        if zh == sign or colon is None:
            return None
        zm = _zero_to_59(src, colon)
        if zm == colon:
            return None
        end = zm
    else:
        return None
    return _lit(src, i, end, "Edm.DateTimeOffset")


def _timeofday_value(src: str, i: int) -> _Tok | None:
    h = _hour(src, i)
    if h == i:
        return None
    end = _time_tail(src, h)
    return None if end is None else _lit(src, i, end, "Edm.TimeOfDay")


def _decimal_value(src: str, i: int) -> _Tok | None:
    start = i
    sign = _sign(src, i)
    if sign:
        i = sign
    int_next = _required(src, i, _digit, 1)
    if not int_next or _ch(src, int_next) != 0x2E:
        return None
    end = _required(src, int_next + 1, _digit, 1)
    if not end or end == int_next + 1 or _ch(src, end) == 0x65:
        return None
    return _lit(src, start, end, "Edm.Decimal")


def _double_value(src: str, i: int) -> _Tok | None:
    start = end = i
    nan_inf = _equals(src, i, "NaN") or _equals(src, i, "-INF") or _equals(src, i, "INF")
    if nan_inf:
        end += nan_inf
    else:
        sign = _sign(src, i)
        if sign:
            i = sign
        int_next = _required(src, i, _digit, 1)
        if not int_next or _ch(src, int_next) != 0x2E:
            return None
        dec_next = _required(src, int_next + 1, _digit, 1)
        if dec_next == int_next + 1:
            return None
        if _ch(src, dec_next) == 0x65:
            nxt = dec_next + 1
            sign = _sign(src, nxt)
            if sign:
                nxt = sign
            digits = _required(src, nxt, _digit, 1)
            if digits:
                end = digits
        else:
            end = dec_next
    return _lit(src, start, end, "Edm.Double")


def _int_value(src: str, i: int, max_digits: int, low: int, high: int, edm: str,
               signed: bool = True) -> _Tok | None:
    start = i
    if signed:
        sign = _sign(src, i)
        if sign:
            i = sign
    nxt = _required(src, i, _digit, 1, max_digits)
    if not nxt or _digit(_ch(src, nxt)):
        return None
    if edm == "Edm.Int64":  # JS compares digit strings here, not numbers
        digits = src[i:nxt]
        limit = "9223372036854775808" if _ch(src, start) == 0x2D else "9223372036854775807"
        return _lit(src, start, nxt, edm) if "0" <= digits <= limit else None
    try:
        val = int(src[start:nxt])
    except ValueError:
        return None
    return _lit(src, start, nxt, edm) if low <= val <= high else None


def _string_value(src: str, i: int) -> _Tok | None:
    start = i
    squote = _SQUOTE(src, start)
    if not squote:
        return None
    i = squote
    while i < len(src):
        squote = _SQUOTE(src, i)
        if squote:
            i = squote
            squote = _SQUOTE(src, i)
            if not squote:
                close, comma, amp = _CLOSE(src, i), _COMMA(src, i), _ch(src, i) == 0x26
                if (_pchar_no_squote(src, i) > i and not amp and not close and not comma
                        and _RWS(src, i) == i):
                    return None
                break
            i = squote
        else:
            nxt = max(_RWS(src, i), _pchar_no_squote(src, i))
            if nxt == i:
                return None
            i = nxt
    squote = _SQUOTE(src, i - 1) or _SQUOTE(src, i - 3)
    if not squote:
        return None
    return _lit(src, start, squote, "Edm.String")


def _primitive_literal(src: str, i: int) -> _Tok | None:
    # duration'..', binary'..', enums and geography literals are not ported: Central cannot
    # compare any supported column with them, so they would only change an error position.
    return (_null_value(src, i) or _boolean_value(src, i) or _guid_value(src, i) or _date_value(src, i)
            or _datetimeoffset_value(src, i) or _timeofday_value(src, i) or _decimal_value(src, i)
            or _double_value(src, i)
            or _int_value(src, i, 3, -128, 127, "Edm.SByte")
            or _int_value(src, i, 3, 0, 255, "Edm.Byte", signed=False)
            or _int_value(src, i, 5, -32768, 32767, "Edm.Int16")
            or _int_value(src, i, 10, -2147483648, 2147483647, "Edm.Int32")
            or _int_value(src, i, 19, 0, 0, "Edm.Int64")
            or _string_value(src, i))


def _odata_identifier(src: str, i: int) -> _Tok | None:
    start = i
    if _alpha(_ch(src, i)) or _ch(src, i) == 0x5F:
        i += 1
        while i < len(src) and i - start < 128 and (_alpha(_ch(src, i)) or _ch(src, i) == 0x5F
                                                    or _digit(_ch(src, i))):
            i += 1
    return _tokenize(src, start, i, {"name": src[start:i]}, "ODataIdentifier") if i > start else None


def _simple_key(src: str, i: int) -> _Tok | None:
    open_ = _OPEN(src, i)
    if not open_:
        return None
    lit = _primitive_literal(src, open_)
    if not lit:
        return None
    close = _CLOSE(src, lit.next)
    return _tokenize(src, i, close, lit, "SimpleKey") if close else None


def _single_navigation(src: str, i: int) -> _Tok | None:
    if _ch(src, i) != 0x2F:
        return None
    member = _member_expr(src, i + 1)
    return _tokenize(src, i, member.next, member, "SingleNavigationExpression") if member else None


def _property_path(src: str, i: int) -> _Tok | None:
    ident = _odata_identifier(src, i)
    if not ident:
        return None
    end = ident.next
    value: Any = ident
    nav: _Tok | None
    if _equals(src, end, "/$count"):
        nav = _tokenize(src, end, end + 7, "/$count", "CountExpression")
    else:
        key = _simple_key(src, end)
        if key:
            after = _single_navigation(src, key.next)
            nav = _tokenize(src, end, after.next if after else key.next, key, "CollectionNavigationExpression")
        else:
            nav = _single_navigation(src, end)
    if nav:
        end = nav.next
        value = {"current": ident, "next": nav}
    return _tokenize(src, i, end, value, "PropertyPathExpression")


def _member_expr(src: str, i: int) -> _Tok | None:
    nxt = _property_path(src, i)  # qualified type casts (`ns.Type/...`) are not ported
    return _tokenize(src, i, nxt.next, nxt, "MemberExpression") if nxt else None


def _first_member_expr(src: str, i: int) -> _Tok | None:
    member = _member_expr(src, i)  # `$it` and lambda variables are not ported
    return _tokenize(src, i, member.next, member, "FirstMemberExpression") if member else None


def _root_expr(src: str, i: int) -> _Tok | None:
    if not _equals(src, i, "$root/"):
        return None
    start, i = i, i + 6
    entity_set = _odata_identifier(src, i)
    predicate = _simple_key(src, entity_set.next) if entity_set else None
    target = predicate or entity_set  # without a key, the same identifier is the singleton
    if not target:
        return None
    i = target.next
    nav = _single_navigation(src, i)
    if nav:
        i = nav.next
    return _tokenize(src, start, i, {"current": entity_set, "next": nav}, "RootExpression")


def _parameter_alias(src: str, i: int) -> _Tok | None:
    at = _AT(src, i)
    ident = _odata_identifier(src, at) if at else None
    return _tokenize(src, i, ident.next, ident.value, "ParameterAlias") if ident else None


_METHODS: tuple[tuple[str, int, int], ...] = (
    ("indexof", 2, 2), ("tolower", 1, 1), ("toupper", 1, 1), ("trim", 1, 1), ("substring", 2, 3),
    ("substringof", 2, 2), ("concat", 2, 2), ("length", 1, 1), ("year", 1, 1), ("month", 1, 1),
    ("day", 1, 1), ("hour", 1, 1), ("minute", 1, 1), ("second", 1, 1), ("fractionalseconds", 1, 1),
    ("totalseconds", 1, 1), ("date", 1, 1), ("time", 1, 1), ("round", 1, 1), ("floor", 1, 1),
    ("ceiling", 1, 1), ("geo.distance", 2, 2), ("geo.length", 1, 1), ("totaloffsetminutes", 1, 1),
    ("mindatetime", 0, 0), ("maxdatetime", 0, 0), ("now", 0, 0),
)
_BOOL_METHODS: tuple[tuple[str, int, int], ...] = (
    ("endswith", 2, 2), ("startswith", 2, 2), ("contains", 2, 2), ("geo.intersects", 2, 2),
)


def _method_call_factory(src: str, i: int, method: str, min_: int, max_: int) -> _Tok | None:
    if not _equals(src, i, method):
        return None
    start = i
    i += len(method)
    open_ = _OPEN(src, i)
    if not open_:
        return None
    i = _BWS(src, open_)
    params: list[_Tok] | None = None
    if min_ > 0:
        params = []
        while len(params) < max_:
            expr = _common_expr(src, i)
            if len(params) < min_ and not expr:
                return None
            if not expr:
                break
            params.append(expr.value)
            i = _BWS(src, expr.next)
            comma = _COMMA(src, i)
            if len(params) < min_ and not comma:
                return None
            if not comma:
                break
            i = _BWS(src, comma)
    i = _BWS(src, i)
    close = _CLOSE(src, i)
    if not close:
        return None
    return _tokenize(src, start, close, {"method": method, "parameters": params}, "MethodCallExpression")


def _method_call_expr(src: str, i: int, table: Sequence[tuple[str, int, int]] = _METHODS) -> _Tok | None:
    for name, min_, max_ in table:
        tok = _method_call_factory(src, i, name, min_, max_)
        if tok:
            return tok
    return None


def _negate_expr(src: str, i: int) -> _Tok | None:
    if _ch(src, i) != 0x2D:
        return None
    expr = _common_expr(src, _BWS(src, i + 1))
    return _tokenize(src, i, expr.next, expr, "NegateExpression") if expr else None


def _paren_expr(src: str, i: int) -> _Tok | None:
    open_ = _OPEN(src, i)
    if not open_:
        return None
    tok = _common_expr(src, _BWS(src, open_))
    if not tok:
        return None
    close = _CLOSE(src, _BWS(src, tok.next))
    return _tokenize(src, i, close, tok.value, "ParenExpression") if close else None


def _left_right(src: str, i: int, op: str, type_: str) -> _Tok | None:
    rws = _RWS(src, i)
    if rws == i:
        return None
    start, i = i, rws
    if not _equals(src, i, op):
        return None
    i += len(op)
    rws = _RWS(src, i)
    if rws == i:
        return None
    tok = _common_expr(src, rws)
    if not tok:
        return None
    return _tokenize(src, start, rws, tok.value, type_)


_ARITHMETIC = (("add", "AddExpression"), ("sub", "SubExpression"), ("mul", "MulExpression"),
               ("div", "DivExpression"), ("mod", "ModExpression"))
_COMPARISONS = (("eq", "EqualsExpression"), ("ne", "NotEqualsExpression"), ("lt", "LesserThanExpression"),
                ("le", "LesserOrEqualsExpression"), ("gt", "GreaterThanExpression"),
                ("ge", "GreaterOrEqualsExpression"), ("has", "HasExpression"))


def _common_expr(src: str, i: int) -> _Tok | None:
    tok = (_primitive_literal(src, i) or _parameter_alias(src, i) or _root_expr(src, i)
           or _method_call_expr(src, i) or _first_member_expr(src, i) or _negate_expr(src, i)
           or _paren_expr(src, i))
    if not tok:
        return None
    for op, type_ in _ARITHMETIC:
        expr = _left_right(src, tok.next, op, type_)
        if expr:
            tok.value = {"left": _clone(tok), "right": expr.value}
            tok.next = expr.value.next
            tok.type = expr.type
            tok.raw = src[tok.position:tok.next]
            break
    return _tokenize(src, tok.position, tok.next, tok, "CommonExpression")


def _and_or(src: str, i: int, word: str, type_: str) -> _Tok | None:
    rws = _RWS(src, i)
    if rws == i or not _equals(src, rws, word):
        return None
    start, i = i, rws + len(word)
    rws = _RWS(src, i)
    if rws == i:
        return None
    tok = _bool_common_expr(src, rws)
    return _tokenize(src, start, rws, tok, type_) if tok else None


def _not_expr(src: str, i: int) -> _Tok | None:
    if not _equals(src, i, "not"):
        return None
    rws = _RWS(src, i + 3)
    if rws == i + 3:
        return None
    tok = _bool_common_expr(src, rws)
    return _tokenize(src, i, tok.next, tok, "NotExpression") if tok else None


def _bool_paren_expr(src: str, i: int) -> _Tok | None:
    open_ = _OPEN(src, i)
    if not open_:
        return None
    tok = _bool_common_expr(src, _BWS(src, open_))
    if not tok:
        return None
    close = _CLOSE(src, _BWS(src, tok.next))
    return _tokenize(src, i, close, tok, "BoolParenExpression") if close else None


def _bool_common_expr(src: str, i: int) -> _Tok | None:
    tok = (_method_call_expr(src, i, _BOOL_METHODS) or _not_expr(src, i) or _common_expr(src, i)
           or _bool_paren_expr(src, i))
    if not tok:
        return None
    if tok.type == "CommonExpression":
        for op, type_ in _COMPARISONS:
            more = _left_right(src, tok.next, op, type_)
            if more:
                tok.value = {"left": tok.value, "right": more.value}
                tok.next = more.value.next
                tok.type = more.type
                tok.raw = src[tok.position:tok.next]
                break
    expr = _and_or(src, tok.next, "and", "AndExpression") or _and_or(src, tok.next, "or", "OrExpression")
    if expr:
        left = _clone(tok)
        tok.next = expr.value.next
        tok.value = {"left": left, "right": expr.value}
        tok.type = expr.type
        tok.raw = src[tok.position:tok.next]
        # the parser's own precedence fix-up: `a and b or c` must be `(a and b) or c`
        if tok.type == "AndExpression" and tok.value["right"].type == "OrExpression":
            right = tok.value["right"]
            tok.value["left"] = _tokenize(src, tok.value["left"].position, right.value["left"].next,
                                          {"left": tok.value["left"], "right": right.value["left"]},
                                          tok.type)
            tok.type = right.type
            tok.value["right"] = right.value["right"]
    return tok


def parse_filter(text: str) -> _Tok:
    """Parse a `$filter` like `odataParser.filter`; 400.18 with the parser's own message on failure."""
    tok = _bool_common_expr(text, 0)
    if tok is None:
        raise _unparseable("Fail at 0")
    if tok.next < len(text):
        raise _unparseable(f"Unexpected character at {tok.next}")
    return tok


# ---------------------------------------------------------------------------------------------
# $filter → SQLite


SYSTEM_FILTER_FIELDS: dict[str, str] = {
    # the filterable `__system` fields and how their values compare
    "submissionDate": "timestamp", "updatedAt": "timestamp", "deletedAt": "timestamp",
    "submitterId": "int", "reviewState": "text",
    "createdAt": "timestamp", "creatorId": "int", "conflict": "text",  # entities (routes/datasets.py)
}
_ROOT_PREFIX = "$root/Submissions/"
_SAFE_COLUMN = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$|^"[^"]+"(\."[^"]+")?$')
_EXTRACT = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M"}
_NOW_SQL = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"


@dataclass
class _Sql:
    """A compiled operand: SQL text, its parameters, and what kind of value it yields."""

    sql: str
    params: list[Any] = field(default_factory=list)
    kind: str | None = None          # 'timestamp' | 'int' | 'real' | 'text' | None (a bare literal)
    literal: _Tok | None = None      # set for Literal operands, so the other side can type them
    is_null: bool = False


def _column_map(columns: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """OData member path → (SQL column, kind), accepting `submissionDate` or `__system/submissionDate`."""
    result: dict[str, tuple[str, str]] = {}
    for key, column in columns.items():
        name = key.removeprefix(_ROOT_PREFIX).removeprefix("__system/")
        if name not in SYSTEM_FILTER_FIELDS:
            raise ValueError(f"not a filterable __system field: {key!r}")
        if not _SAFE_COLUMN.match(column):
            raise ValueError(f"unsafe SQL column reference: {column!r}")
        result[f"__system/{name}"] = (column, SYSTEM_FILTER_FIELDS[name])
        result[f"{_ROOT_PREFIX}__system/{name}"] = (column, SYSTEM_FILTER_FIELDS[name])
    return result


def _literal_text(tok: _Tok) -> str:
    raw = tok.raw
    if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
        return raw[1:-1]  # like Central: quotes dropped, doubled '' left as they are
    return raw


def _parse_timestamp(text: str) -> tuple[str, bool] | None:
    """ISO date or date-time → (UTC `YYYY-MM-DDTHH:MM:SS.sssZ`, True if sub-millisecond digits were cut)."""
    m = re.fullmatch(r"(-?\d{4,})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
                     r"(Z|[+-]\d{2}(?::?\d{2})?)?", text.strip())
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hh or 0), int(mm or 0), int(ss or 0),
                          tzinfo=UTC)
    except ValueError:
        return None
    frac = frac or ""
    millis = int((frac + "000")[:3])
    cut = any(c != "0" for c in frac[3:])
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        moment -= sign * offset
    moment += timedelta(milliseconds=millis)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return stamp, cut


def _typed_param(lit: _Tok, kind: str | None) -> tuple[Any, bool]:
    """A literal's parameter value, converted for the column kind it is compared with."""
    text = _literal_text(lit)
    if kind == "timestamp":
        parsed = _parse_timestamp(text)
        if parsed is None:
            raise _unparseable(f"Invalid timestamp value {lit.raw} at {lit.position}")
        return parsed
    if kind in ("int", "real") and re.fullmatch(r"[+-]?\d+", text):
        return int(text), False
    if kind in ("int", "real") and re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", text):
        return float(text), False
    return text, False


_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "="}


class _FilterCompiler:
    """Walks the parser AST like Central's `op()`, producing SQLite instead of Postgres."""

    def __init__(self, columns: Mapping[str, str]):
        self.columns = _column_map(columns)

    def operand(self, node: _Tok) -> _Sql:
        if node.type in ("FirstMemberExpression", "RootExpression"):
            if node.raw in self.columns:
                column, kind = self.columns[node.raw]
                return _Sql(column, [], kind)
            raise _unsupported_field(node.raw, node.position)
        if node.type == "Literal":
            if node.raw == "null":
                return _Sql("NULL", [], None, node, is_null=True)
            return _Sql("?", [_literal_text(node)], None, node)
        if node.type == "MethodCallExpression":
            method, params = node.value["method"], node.value["parameters"]
            if method in _EXTRACT or method == "second":
                inner = self.operand(params[0])
                if inner.literal is not None and not inner.is_null:
                    inner = self.typed(inner, "timestamp")
                fmt = _EXTRACT.get(method, "%f")
                cast = "REAL" if method == "second" else "INTEGER"
                return _Sql(f"CAST(strftime('{fmt}', {inner.sql}) AS {cast})", inner.params,
                            "real" if method == "second" else "int")
            if method == "now":
                return _Sql(_NOW_SQL, [], "timestamp")
            raise _unsupported_expression(node)
        return self.boolean(node)

    def typed(self, lit: _Sql, kind: str | None) -> _Sql:
        assert lit.literal is not None
        value, _ = _typed_param(lit.literal, kind)
        return _Sql("?", [value], kind, lit.literal)

    def comparison(self, node: _Tok, op: str) -> _Sql:
        left = self.operand(node.value["left"])
        right = self.operand(node.value["right"])
        if op in ("=", "!=") and (left.is_null or right.is_null):
            if left.is_null and right.is_null:
                sql, params = "(1)", []
            else:
                other = right if left.is_null else left
                sql, params = f"({other.sql} IS NULL)", other.params
            return _Sql(sql if op == "=" else f"(NOT {sql})", params, "bool")
        # orient as (expression op literal) so the literal can be typed by the other side
        if left.literal is not None and right.literal is None and not left.is_null:
            left, right, op = right, left, _FLIP.get(op, op)
        if right.literal is not None and left.literal is None and not right.is_null:
            value, cut = _typed_param(right.literal, left.kind)
            if cut:
                # stored times have millisecond precision and the literal has more digits:
                # shift the comparison so it answers what Postgres answers at µs precision
                if op == "=":
                    return _Sql(f"({left.sql} IS NOT NULL AND 0)", left.params, "bool")
                if op == "!=":
                    return _Sql(f"(NOT ({left.sql} IS NULL))", left.params, "bool")
                op = {">": ">", ">=": ">", "<": "<=", "<=": "<="}[op]
            right = _Sql("?", [value], left.kind, right.literal)
        params = left.params + right.params
        if op == "=":
            return _Sql(f"({left.sql} IS {right.sql})", params, "bool")
        if op == "!=":
            return _Sql(f"(NOT ({left.sql} IS {right.sql}))", params, "bool")
        return _Sql(f"({left.sql} {op} {right.sql})", params, "bool")

    def boolean(self, node: _Tok) -> _Sql:
        ops = {"EqualsExpression": "=", "NotEqualsExpression": "!=", "LesserThanExpression": "<",
               "LesserOrEqualsExpression": "<=", "GreaterThanExpression": ">",
               "GreaterOrEqualsExpression": ">="}
        if node.type in ops:
            return self.comparison(node, ops[node.type])
        if node.type in ("AndExpression", "OrExpression"):
            left = self.operand(node.value["left"])
            right = self.operand(node.value["right"])
            word = "AND" if node.type == "AndExpression" else "OR"
            return _Sql(f"({left.sql} {word} {right.sql})", left.params + right.params, "bool")
        if node.type == "NotExpression":
            inner = self.operand(node.value)
            return _Sql(f"(NOT {inner.sql})", inner.params, "bool")
        if node.type == "BoolParenExpression":
            return self.operand(node.value)
        raise _unsupported_expression(node)


def _references_deleted_at(node: Any) -> bool:
    if not isinstance(node, _Tok):
        return False
    if node.type in ("FirstMemberExpression", "RootExpression"):
        return node.raw in ("__system/deletedAt", "$root/Submissions/__system/deletedAt")
    if node.type == "MethodCallExpression":
        params = node.value["parameters"] or []
        return bool(params) and _references_deleted_at(params[0])
    if isinstance(node.value, dict) and "left" in node.value:
        return _references_deleted_at(node.value["left"]) or _references_deleted_at(node.value["right"])
    if node.type in ("BoolParenExpression", "NotExpression"):
        return _references_deleted_at(node.value)
    return False


def filter_references_deleted_at(text: str | None) -> bool:
    """Whether a `$filter` mentions `deletedAt`; if not, Central hides deleted submissions."""
    return bool(text is not None and _references_deleted_at(parse_filter(text)))


def compile_filter(text: str | None, columns: Mapping[str, str], *,
                   exclude_deleted: bool = True) -> tuple[str, list[Any]]:
    """Compile Central's `$filter` to a parametrised SQLite boolean expression.

    `columns` maps the five filterable system fields (`submissionDate`, `updatedAt`,
    `submitterId`, `reviewState`, `deletedAt`; a `__system/` prefix is accepted too) to SQL
    column references. Timestamps are compared as the ISO strings the store keeps
    (`2026-11-28T18:41:28.036Z`): literals are normalised to that UTC form first.

    Like Central (`odataExcludeDeleted`), unless the filter itself mentions `deletedAt` the
    result also requires `deletedAt IS NULL`; pass `exclude_deleted=False` to skip that
    (then `columns` need not map `deletedAt`). `text=None` means no `$filter` at all.
    Errors: 400.18 (syntax, with the parser's position), 501.5 (a field other than the
    five), 501.4 (arithmetic, other functions, bare literals).
    """
    mapped = _column_map(columns)
    clauses: list[str] = []
    params: list[Any] = []
    mentions_deleted = False
    if text is not None:
        ast = parse_filter(text)
        compiled = _FilterCompiler(columns).operand(ast)
        if compiled.kind != "bool":  # a bare literal/field/function is not a condition
            raise _unsupported_expression(ast)
        clauses.append(compiled.sql)
        params.extend(compiled.params)
        mentions_deleted = _references_deleted_at(ast)
    if exclude_deleted and not mentions_deleted:
        if "__system/deletedAt" not in mapped:
            raise ValueError("columns must map deletedAt when exclude_deleted is set")
        clauses.append(f"({mapped['__system/deletedAt'][0]} IS NULL)")
    return (" AND ".join(clauses) if clauses else "1"), params


def compile_orderby(text: str, columns: Mapping[str, str], stable_column: str | None = None) -> str:
    """`$orderby` → `ORDER BY ...` like Central (`desc` → NULLS LAST, `asc`/none → NULLS FIRST).

    `stable_column` (e.g. the submissions' integer id) is appended with the first clause's
    direction, as Central does, so pages are deterministic. Unknown fields or directions
    give 501.5 without a position, as recorded in Central's tests.
    """
    mapped = _column_map(columns)
    clauses: list[str] = []
    first: str | None = None
    for part in text.split(","):
        words = part.strip().split()
        col = words[0] if words else ""
        order = words[1] if len(words) > 1 else None
        if col not in mapped:
            raise _unsupported_field(col, None)
        if order is not None and order.lower() not in ("asc", "desc"):
            raise _unsupported_field(order, None)
        direction = "DESC NULLS LAST" if (order or "").lower() == "desc" else "ASC NULLS FIRST"
        first = first or direction
        clauses.append(f"{mapped[col][0]} {direction}")
    if stable_column is not None:
        if not _SAFE_COLUMN.match(stable_column):
            raise ValueError(f"unsafe SQL column reference: {stable_column!r}")
        clauses.append(f"{stable_column} {first}")
    return "ORDER BY " + ", ".join(clauses)


# ---------------------------------------------------------------------------------------------
# $skiptoken and @odata.nextLink


def encode_skiptoken(data: Mapping[str, Any]) -> str:
    """`01` + base64(JSON): `{"instanceId": ...}` for Submissions, `{"repeatId": ...}` for repeats."""
    return "01" + base64.b64encode(to_json(dict(data)).encode("utf-8")).decode("ascii")


def decode_skiptoken(token: str) -> dict[str, Any]:
    """The data in a `$skiptoken`; 400.35 "Invalid $skiptoken" for anything else (12-27).

    Base64 is decoded as leniently as Node's `Buffer.from(s, 'base64')` (URL-safe letters,
    missing padding and stray characters are accepted).
    """
    invalid = ODataError(400, 400.35, "Invalid $skiptoken")
    if not token.startswith("01"):
        raise invalid
    body = re.sub(r"[^A-Za-z0-9+/]", "", token[2:].replace("-", "+").replace("_", "/").split("=")[0])
    body += "=" * (-len(body) % 4)
    try:
        parsed = json.loads(base64.b64decode(body).decode("utf-8", errors="replace"))
    except (binascii.Error, ValueError):
        raise invalid from None
    if not isinstance(parsed, dict):  # JS also lets `null` through and then fails later
        raise invalid
    return parsed


_FORM_SAFE = frozenset(b"*-._0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _form_encode(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        if byte in _FORM_SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def url_search_params(pairs: Iterable[tuple[str, str]]) -> str:
    """Serialize like WHATWG `URLSearchParams.toString()` (`$` → `%24`, space → `+`, `*` kept)."""
    return "&".join(f"{_form_encode(k)}={_form_encode(v)}" for k, v in pairs)


_PATH_UNSAFE = frozenset(' "#<>?`{}')


def _encode_path(path: str) -> str:
    """Percent-encode a path the way the WHATWG URL parser does (existing `%XX` is kept)."""
    out = []
    for ch in path:
        if ch in _PATH_UNSAFE or ord(ch) < 0x20 or ord(ch) > 0x7E:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
        else:
            out.append(ch)
    return "".join(out)


QueryParams = str | Mapping[str, str] | Iterable[tuple[str, str]]


def _query_pairs(params: QueryParams) -> list[tuple[str, str]]:
    if isinstance(params, str):
        return parse_qsl(params.removeprefix("?"), keep_blank_values=True)
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params.items()]
    return [(str(k), str(v)) for k, v in params]


def next_link(domain: str, path: str, params: QueryParams, skiptoken: Mapping[str, Any]) -> str:
    """The absolute `@odata.nextLink` Central writes (12-03, 12-06, 12-13 ...).

    `domain` is the server's configured base (`http://127.0.0.1:8383`), `path` the request
    path (`/v1/projects/1/forms/x.svc/Submissions`), `params` the request's query (raw
    string, mapping or (key, value) pairs, in request order), `skiptoken` the cursor
    (`{"instanceId": last row's __id}` or `{"repeatId": last repeat row's __id}`).
    Like `urlWithQueryParams`: `$skip` is dropped, `$skiptoken` replaces an existing one in
    place or is appended, and every option is re-encoded as `URLSearchParams` does.
    """
    pairs = [(k, v) for k, v in _query_pairs(params) if k != "$skip"]
    token = encode_skiptoken(skiptoken)
    result: list[tuple[str, str]] = []
    placed = False
    for key, value in pairs:
        if key == "$skiptoken":
            if not placed:
                result.append((key, token))
                placed = True
            continue
        result.append((key, value))
    if not placed:
        result.append(("$skiptoken", token))
    return f"{domain}{_encode_path(path)}?{url_search_params(result)}"


def odata_page_json(rows: Sequence[str | Mapping[str, Any]], *, domain: str, service_root: str, table: str,
                    next_url: str | None = None, count: int | None = None) -> str:
    """A feed page exactly as Central writes it: `value`, `@odata.context`, nextLink, count.

    `rows` are row dicts or their precomputed `to_json` text; `service_root` is the path up to
    `.svc` (`/v1/projects/1/forms/x.svc`); `next_url` an absolute link from `next_link`;
    `count` the `@odata.count` (total matching the filter) or None.
    """
    body = ",".join(r if isinstance(r, str) else to_json(r) for r in rows)
    out = [f'{{"value":[{body}],"@odata.context":"{domain}{service_root}/$metadata#{table}"']
    if next_url is not None:
        out.append(f',"@odata.nextLink":"{next_url}"')
    if count is not None:
        out.append(f',"@odata.count":{count}')
    out.append("}")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# JSON exactly as JavaScript writes it


def js_number(value: float) -> str:
    """`String(n)` of JavaScript: `35` for 35.0, `1e-7`, `1e+21`; NaN/±Infinity are `null` in JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if abs(value) <= 2 ** 53:
            return str(value)
        value = float(value)
    if math.isnan(value) or math.isinf(value):
        return "null"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_t = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digits_t.digits)).rstrip("0") or "0"
    trailing = len("".join(map(str, digits_t.digits))) - len(digits)
    exponent = int(digits_t.exponent) + trailing
    k = len(digits)
    n = exponent + k
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


_encode_str = json.JSONEncoder(ensure_ascii=False).encode


def to_json(value: Any) -> str:
    """`JSON.stringify(value)`: compact, UTF-8 text unescaped, numbers formatted like JavaScript."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_encode_str(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")
