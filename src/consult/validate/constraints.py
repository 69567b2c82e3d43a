"""Reading XLSForm constraints into checks a table can be held to.

Carried over, one `and`-conjunct at a time (a conjunct is a necessary condition of the
constraint, so checking it alone never refuses an answer the form accepts):

- `. >= n`, `. > n`, `. <= n`, `. < n` with a number, `today()` or `date('YYYY-MM-DD')`
  (bounds of one field merge into one range; `today()` is the validation day);
- `regex(., 'pattern')`;
- `string-length(normalize-space(.)) >= n` (as a regex that counts like normalize-space);
- `count-selected(.) <= n` / `< n`;
- `not(selected(., 'v') and count-selected(.) > 1)` ('v', e.g. 'none', excludes the others).

Left to the form: any other conjunct, e.g. the workshop's opening-date bound that depends on
`${workshop}`, and the member lead rule `if(position(..) = ..., ...)` (rules.py checks the lead
count on the whole repeat instead). `left_to_form` lists them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

TODAY = "today()"
"""Stands for the validation day in a bound; the suite passes it as a GX suite parameter."""

Bound = int | float | date | str
PatternRule = Literal["pattern", "min_length", "max_selected", "exclusive_choice"]

_WS = r"[ \t\r\n]"
_NON_WS = r"[^ \t\r\n]"
_LITERAL = r"(?P<value>-?\d+(?:\.\d+)?|today\(\)|date\('(?P<date>\d{4}-\d{2}-\d{2})'\))"
_BOUND = re.compile(rf"^\.\s*(?P<op><=|<|>=|>)\s*{_LITERAL}$")
_REGEX = re.compile(r"^regex\(\s*\.\s*,\s*'(?P<pattern>[^']*)'\s*\)$")
_MIN_LENGTH = re.compile(r"^string-length\(\s*normalize-space\(\s*\.\s*\)\s*\)\s*(?P<op>>=|>)\s*(?P<n>\d+)$")
_MAX_SELECTED = re.compile(r"^count-selected\(\s*\.\s*\)\s*(?P<op><=|<)\s*(?P<n>\d+)$")
_EXCLUSIVE = re.compile(r"^not\(\s*selected\(\s*\.\s*,\s*'(?P<choice>[^']+)'\s*\)\s+and\s+"
                        r"count-selected\(\s*\.\s*\)\s*>\s*1\s*\)$")
MAX_LENGTH_CARRIED = 12
"""The normalize-space regex grows like Fibonacci in n: longer minimums are left to the form."""


@dataclass(frozen=True)
class Range:
    low: Bound | None = None
    high: Bound | None = None
    strict_low: bool = False
    strict_high: bool = False


@dataclass(frozen=True)
class Pattern:
    rule: PatternRule
    regex: str
    must_match: bool = True


@dataclass(frozen=True)
class Reading:
    range: Range | None = None
    patterns: tuple[Pattern, ...] = ()
    left_to_form: tuple[str, ...] = field(default=())


def conjuncts(constraint: str) -> list[str]:
    """The top-level `and` parts, respecting parentheses and quotes."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(constraint):
        ch = constraint[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and constraint.startswith(" and ", i):
            parts.append(constraint[start:i].strip())
            start = i = i + 5
            continue
        i += 1
    parts.append(constraint[start:].strip())
    return [p for p in parts if p]


def read(constraint: str | None) -> Reading:
    if not constraint:
        return Reading()
    bounds: dict[str, tuple[Bound, bool]] = {}
    patterns: list[Pattern] = []
    left: list[str] = []
    for part in conjuncts(constraint):
        if match := _BOUND.match(part):
            side = "low" if match["op"].startswith(">") else "high"
            bounds[side] = _tighter(side, bounds.get(side), (_bound(match), len(match["op"]) == 1))
        elif match := _REGEX.match(part):
            patterns.append(Pattern("pattern", non_capturing(match["pattern"])))
        elif (match := _MIN_LENGTH.match(part)) and (n := _count(match, ">")) <= MAX_LENGTH_CARRIED:
            patterns.append(Pattern("min_length", min_length_regex(n)))
        elif match := _MAX_SELECTED.match(part):
            patterns.append(Pattern("max_selected", max_selected_regex(_count(match, "<"))))
        elif match := _EXCLUSIVE.match(part):
            patterns.append(Pattern("exclusive_choice", exclusive_regex(match["choice"]), must_match=False))
        else:
            left.append(part)
    range_ = None
    if bounds:
        low, strict_low = bounds.get("low", (None, False))
        high, strict_high = bounds.get("high", (None, False))
        range_ = Range(low, high, strict_low, strict_high)
    return Reading(range_, tuple(patterns), tuple(left))


def _count(match: re.Match, strict_op: str) -> int:
    """The inclusive count a `>= n` / `> n` (or `<= n` / `< n`) states."""
    n = int(match["n"])
    if match["op"] != strict_op:
        return n
    return n + 1 if strict_op == ">" else n - 1


def _bound(match: re.Match) -> Bound:
    if match["date"]:
        return date.fromisoformat(match["date"])
    if match["value"] == TODAY:
        return TODAY
    number = float(match["value"])
    return int(number) if number.is_integer() else number


def _tighter(side: str, old: tuple[Bound, bool] | None, new: tuple[Bound, bool]) -> tuple[Bound, bool]:
    """Two bounds on one side (`. >= 0 and . > 5`): keep the tighter when comparable, else the newer."""
    if old is None or type(old[0]) is not type(new[0]) or old[0] == TODAY:
        return new
    if old[0] == new[0]:
        return old if old[1] else new
    keep_greater = side == "low"
    return max(old, new, key=lambda b: b[0]) if keep_greater else min(old, new, key=lambda b: b[0])


def non_capturing(pattern: str) -> str:
    """The pattern with its groups made non-capturing: same matches, and pandas does not warn
    about groups on every page. Left as is if it back-references a group."""
    if re.search(r"\\[1-9]", pattern):
        return pattern
    out, escaped, in_class = [], False, False
    for i, ch in enumerate(pattern):
        out.append(ch)
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        elif ch == "(" and not in_class and not pattern.startswith("?", i + 1):
            out.append("?:")
    return "".join(out)


def min_length_regex(n: int) -> str:
    """Matches text whose `normalize-space()` has at least n characters.

    After the first visible character each further visible character counts 1 and each
    inner run of spaces 1 more; no look-ahead, so any regex engine pandas uses accepts it.
    """
    return rf"^{_WS}*{_NON_WS}{_at_least(n - 1)}" if n > 0 else ""


def _at_least(k: int) -> str:
    if k <= 0:
        return ""
    if k == 1:
        return rf"(?:{_NON_WS}|{_WS}+{_NON_WS})"
    return rf"(?:{_NON_WS}{_at_least(k - 1)}|{_WS}+{_NON_WS}{_at_least(k - 2)})"


def max_selected_regex(n: int) -> str:
    """Matches a select_multiple answer (space-separated names) with at most n names."""
    if n <= 0:
        return rf"^{_WS}*$"
    return rf"^{_WS}*(?:{_NON_WS}+(?:{_WS}+{_NON_WS}+){{0,{n - 1}}})?{_WS}*$"


def exclusive_regex(choice: str) -> str:
    """Matches an answer where `choice` sits next to another name (so must not match)."""
    c = re.escape(choice)
    return rf"(?:^|{_WS}){c}{_WS}+{_NON_WS}|{_NON_WS}{_WS}+{c}(?:{_WS}|$)"
