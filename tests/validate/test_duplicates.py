"""Duplicate interviews, judged form-wide by `DuplicateRule.across_form`: by submission dates only,
never by the order rows arrive in (Central pages newest first)."""

from __future__ import annotations

import random
import subprocess
import sys
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from consult.forms import FormSchema
from consult.validate import DuplicateRule, Failure, duplicate_rules, rule_inventory

from .conftest import validate
from .submissions import answers, odata_row

D, M, P = "donor_consultation", "ministry_consultation", "province_consultation"
DAY = date(2004, 6, 30)
T0 = datetime(2004, 6, 30, 8, tzinfo=UTC)


def _at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _rule(schemas: dict[str, FormSchema], form_id: str) -> tuple[FormSchema, DuplicateRule]:
    schema = schemas[form_id]
    (rule,) = duplicate_rules(schema)
    return schema, rule


def _found(failures: list[Failure]) -> dict[str, str | None]:
    return {f.instance_id: f.value for f in failures}


def test_the_later_interview_of_an_organisation_on_a_date_is_the_duplicate(
        schemas: dict[str, FormSchema]) -> None:
    schema, rule = _rule(schemas, D)
    interviews = [("uuid:later", _at(1), ("adb", None, DAY)), ("uuid:earlier", _at(0), ("adb", None, DAY)),
                  ("uuid:other-day", _at(2), ("adb", None, date(2004, 7, 1))),
                  ("uuid:other-organisation", _at(3), ("undp", None, DAY))]
    (failure,) = rule.across_form(schema, interviews, set())
    assert failure == Failure(
        "uuid:later", "duplicate_interview", "organisation", None, "adb | 2004-06-30",
        "Trùng cuộc tham vấn: bài uuid:earlier đã có cùng “Tổ chức”, “Ngày tham vấn”.",
        "Duplicate interview: submission uuid:earlier already has the same “Organisation”, "
        "“Consultation date”.")


def test_every_later_interview_names_the_original(schemas: dict[str, FormSchema]) -> None:
    schema, rule = _rule(schemas, D)
    interviews = [(f"uuid:{n}", _at(n), ("adb", None, DAY)) for n in range(4)]
    failures = rule.across_form(schema, interviews, set())
    assert [f.instance_id for f in failures] == ["uuid:1", "uuid:2", "uuid:3"]
    assert all("uuid:0" in f.message_vi and "uuid:0" in f.message_en for f in failures)


def test_an_other_organisation_is_keyed_by_its_specify_text(schemas: dict[str, FormSchema]) -> None:
    schema, rule = _rule(schemas, D)
    interviews = [("uuid:typed", _at(0), ("other", "World Bank", DAY)),
                  ("uuid:shouting", _at(1), ("other", "  WORLD \t Bank ", DAY)),
                  ("uuid:another-other", _at(2), ("other", "JICA", DAY)),
                  # the specify text only counts when 'other' is chosen
                  ("uuid:listed", _at(3), ("adb", "World Bank", DAY)),
                  ("uuid:listed-again", _at(4), ("adb", None, DAY))]
    assert _found(rule.across_form(schema, interviews, set())) == {
        "uuid:shouting": "world bank | 2004-06-30", "uuid:listed-again": "adb | 2004-06-30"}


@pytest.mark.parametrize("form_id, earlier, later, value", [
    (M, ("mpi", None, "Vụ Kinh tế Nông nghiệp", DAY),
     ("mpi", None, unicodedata.normalize("NFD", "vụ  kinh tế nông nghiệp "), DAY),
     "mpi | vụ kinh tế nông nghiệp | 2004-06-30"),
    (P, ("tra_vinh", "other", unicodedata.normalize("NFC", "Hội Nông dân"), DAY),
     ("tra_vinh", "other", unicodedata.normalize("NFD", "HỘI NÔNG DÂN"), DAY),
     "tra_vinh | hội nông dân | 2004-06-30"),
])
def test_vietnamese_typed_precomposed_or_decomposed_is_one_organisation(
        schemas: dict[str, FormSchema], form_id: str, earlier: tuple, later: tuple, value: str) -> None:
    schema, rule = _rule(schemas, form_id)
    assert unicodedata.normalize("NFC", later[2]) != later[2]  # really typed decomposed
    (failure,) = rule.across_form(schema, [("uuid:b", _at(1), later), ("uuid:a", _at(0), earlier)], set())
    assert (failure.instance_id, failure.column, failure.value) == ("uuid:b", rule.parts[0].column, value)
    assert failure.message_vi.startswith("Trùng cuộc tham vấn: bài uuid:a")


def test_a_broken_interview_entered_again_is_not_a_duplicate(schemas: dict[str, FormSchema]) -> None:
    schema, rule = _rule(schemas, D)
    interviews = [("uuid:broken", _at(0), ("adb", None, DAY)),
                  ("uuid:entered-again", _at(1), ("adb", None, DAY))]
    assert rule.across_form(schema, interviews, {"uuid:broken"}) == []
    # a third one repeats the re-entry, the original, whether it is broken too or not
    third = ("uuid:third", _at(2), ("adb", None, DAY))
    for failing in ({"uuid:broken"}, {"uuid:broken", "uuid:third"}):
        (failure,) = rule.across_form(schema, [*interviews, third], failing)
        assert failure.instance_id == "uuid:third" and "uuid:entered-again" in failure.message_en


def test_when_every_interview_is_broken_the_first_is_the_original(schemas: dict[str, FormSchema]) -> None:
    schema, rule = _rule(schemas, D)
    interviews = [(f"uuid:{n}", _at(n), ("adb", None, DAY)) for n in range(3)]
    failures = rule.across_form(schema, interviews, {"uuid:0", "uuid:1", "uuid:2"})
    assert [f.instance_id for f in failures] == ["uuid:1", "uuid:2"]
    assert all("uuid:0" in f.message_en for f in failures)


def test_arrival_order_does_not_matter(schemas: dict[str, FormSchema]) -> None:
    schema, rule = _rule(schemas, D)
    interviews = [("uuid:a-broken", _at(0), ("adb", None, DAY)),
                  ("uuid:b", _at(1), ("adb", None, DAY)),
                  ("uuid:c", _at(1), ("adb", None, DAY)),  # same moment: the instance id decides
                  ("uuid:0-undated", None, ("adb", None, DAY)),  # undated: last
                  ("uuid:d", _at(-1) + timedelta(hours=7), ("ADB", None, DAY)),
                  ("uuid:e", _at(2), ("other", "World Bank", DAY)),
                  ("uuid:f", _at(0.5), ("other", "world bank", DAY)),
                  ("uuid:g", datetime(2004, 6, 30, 15, 30), ("undp", None, DAY))]  # naive: taken as UTC
    failing = {"uuid:a-broken", "uuid:c"}
    expected = rule.across_form(schema, interviews, failing)
    assert [f.instance_id for f in expected] == ["uuid:c", "uuid:e", "uuid:d", "uuid:0-undated"]
    assert all("uuid:b" in f.message_en for f in expected if f.value == "adb | 2004-06-30")
    rng = random.Random(7)
    for _ in range(20):
        shuffled = rng.sample(interviews, len(interviews))
        assert rule.across_form(schema, shuffled, failing) == expected


@pytest.mark.parametrize("values", [("adb", None, None), (None, None, DAY), ("other", None, DAY),
                                    ("other", "   ", DAY)])
def test_a_missing_key_part_is_no_finding(schemas: dict[str, FormSchema], values: tuple[Any, ...]) -> None:
    schema, rule = _rule(schemas, D)
    assert rule.across_form(schema, [("uuid:a", _at(0), values), ("uuid:b", _at(1), values)], set()) == []


def test_malformed_interviews_fail_loudly(schemas: dict[str, FormSchema]) -> None:
    schema, rule = _rule(schemas, D)
    with pytest.raises(ValueError, match="given twice"):
        rule.across_form(schema, [("uuid:a", _at(0), ("adb", None, DAY))] * 2, set())
    with pytest.raises(ValueError, match="values for"):
        rule.across_form(schema, [("uuid:a", _at(0), ("adb", DAY))], set())


def test_pages_are_no_longer_checked_for_duplicates(schemas: dict[str, FormSchema]) -> None:
    schema = schemas[D]
    same = answers(D, consultation_date="2004-06-30", organisation="adb", org_type="multilateral")
    report = validate(schema, [odata_row(schema, "uuid:later", same, submitted="2004-06-30T09:00:00.000Z"),
                               odata_row(schema, "uuid:earlier", same, submitted="2004-06-30T08:00:00.000Z")])
    assert report.failures == [] and set(report.statuses.values()) == {"valid"}
    assert rule_inventory(schema)["duplicate_interview"] == 1


def test_the_duplicate_rules_load_neither_pandas_nor_gx() -> None:
    code = ("import sys, consult.validate.duplicates, consult.validate; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'great_expectations')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
