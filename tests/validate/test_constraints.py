"""Reading constraints and relevance: the shapes carried over; the regexes mean what ODK means."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consult.validate.constraints import TODAY, Range, non_capturing, read
from consult.validate.expressions import Scope, Unsupported, holds, holds_for, parse


def test_bounds_merge_into_one_range() -> None:
    assert read(". >= 0 and . <= 2000").range == Range(0, 2000)
    assert read(". > 0 and . <= 100000").range == Range(0, 100000, strict_low=True)
    assert read(". <= today() and . >= date('2003-01-01')").range == Range(date(2003, 1, 1), TODAY)


def test_parts_beyond_the_simple_shapes_are_left_to_the_form() -> None:
    workshop = (". <= today() and ((${workshop} = 'soc_trang_2004' and . >= date('2004-08-10')) or "
                "(${workshop} = 'thanh_hoa_2004' and . >= date('2004-08-24')))")
    reading = read(workshop)
    assert reading.range == Range(high=TODAY)
    assert reading.left_to_form == (workshop.split(" and ", 1)[1],)
    lead = "if(position(..) = ${member_count}, ${lead_count} = 1, ${lead_count} <= 1)"
    assert read(lead).left_to_form == (lead,)


def _matches(regex: str, text: str) -> bool:
    return re.search(regex, text) is not None


def _normalize_space(text: str) -> str:
    return " ".join(re.split(r"[ \t\r\n]+", text.strip(" \t\r\n")))


@given(st.text(alphabet=" \taế\n", max_size=8), st.integers(min_value=1, max_value=5))
def test_min_length_counts_like_normalize_space(text: str, n: int) -> None:
    (pattern,) = read(f"string-length(normalize-space(.)) >= {n}").patterns
    assert _matches(pattern.regex, text) == (len(_normalize_space(text)) >= n)


@given(st.lists(st.sampled_from(["none", "training", "funding", "other"]), max_size=5))
def test_selection_counts_like_count_selected(names: list[str]) -> None:
    answer = " ".join(names)
    (at_most,) = read("count-selected(.) <= 3").patterns
    assert _matches(at_most.regex, answer) == (len(names) <= 3)
    (exclusive,) = read("not(selected(., 'none') and count-selected(.) > 1)").patterns
    assert not exclusive.must_match
    assert _matches(exclusive.regex, answer) == ("none" in names and len(names) > 1)


def test_regex_groups_become_non_capturing() -> None:
    (pattern,) = read(r"regex(., '^(\+84|0)[1-9][0-9]{7,9}$')").patterns
    assert (pattern.rule, pattern.regex) == ("pattern", r"^(?:\+84|0)[1-9][0-9]{7,9}$")
    assert non_capturing(r"[(]\((a)(?:b)") == r"[(]\((?:a)(?:b)"


FRAME = pd.DataFrame({"w": ["yes", "no", None], "s": ["a other", "b", None]})
SCOPE = Scope(FRAME.index, lambda name: FRAME[name])


@pytest.mark.parametrize(("expression", "expected"), [
    ("${w} = 'yes'", [True, False, False]),
    ("${w} != 'yes'", [False, True, True]),
    ("${w} = 'no' or ${w} = 'undecided'", [False, True, False]),
    ("selected(${s}, 'other')", [True, False, False]),
    ("not(selected(${s}, 'other')) and ${w} != ''", [False, True, False]),
])
def test_relevance_shapes(expression: str, expected: list[bool]) -> None:
    assert holds(parse(expression), SCOPE).tolist() == expected
    rows = FRAME.astype(object).where(FRAME.notna(), None).to_dict("records")
    assert [holds_for(parse(expression), row.get) for row in rows] == expected  # one row at a time, no pandas


@given(st.lists(st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["1", "2", "a b", "b"])), min_size=1,
                max_size=6),
       st.sampled_from(["${v} = '1'", "${v} != '2'", "selected(${v}, 'b')", "not(${v} = '') or ${v} = 'a b'"]))
def test_one_row_at_a_time_agrees_with_a_column(values: list, expression: str) -> None:
    """The entity sync judges stored answers a row at a time (`holds_for`); the page rules a column
    at a time (`holds`): integers and empty answers read the same in both."""
    integers = all(v is None or isinstance(v, int) for v in values)
    column = pd.Series(values, dtype="Int64" if integers else object)
    scope = Scope(column.index, lambda name: column)
    assert holds(parse(expression), scope).tolist() == [holds_for(parse(expression), {"v": v}.get) for v in values]


@pytest.mark.parametrize("expression", ["${n} > 2", "count(${m}) = 1", "${w} = 'a' and", "position(..) = 1"])
def test_other_shapes_are_unsupported(expression: str) -> None:
    with pytest.raises(Unsupported):
        parse(expression)
