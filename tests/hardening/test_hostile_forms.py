"""Broken XLSForms made by hypothesis: missing sheets and columns, bad types, unbalanced groups,
cyclic and dangling ${references}, duplicate and invalid names, huge choice lists. `check_form`
answers each with readable FormIssues, never an exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consult.forms import FormIssue, check_form


NAMES = ["age", "name", "age", "1st", "a b", "", "province", "x" * 80, "név", "calc"]
TYPES = ["text", "integer", "decimal", "date", "select_one yn", "select_one missing_list", "select_multiple yn",
         "begin group", "end group", "begin repeat", "end repeat", "calculate", "note", "integr", "geopoint",
         "select_one", "", "image", "=1+1", "<script>"]
EXPRESSIONS = ["", "${age} > 1", "${calc} + 1", "${nowhere} = 2", "${age", "1 +", ". > 0", "${name} = 'x'",
               "regex(., '[')", "=cmd|' /C calc'!A0"]


def _rows(draw) -> list[dict]:
    return draw(st.lists(st.fixed_dictionaries({
        "type": st.sampled_from(TYPES), "name": st.sampled_from(NAMES),
        "label::English (en)": st.sampled_from(["Age", "", "<b>x</b>", None]),
        "label::Tiếng Việt (vi)": st.sampled_from(["Tuổi", "", None]), "label": st.sampled_from(["x", None]),
        "relevant": st.sampled_from(EXPRESSIONS), "calculation": st.sampled_from(EXPRESSIONS),
        "constraint": st.sampled_from(EXPRESSIONS)}), min_size=1, max_size=8))


@st.composite
def broken_forms(draw) -> dict:
    missing = draw(st.sampled_from([None] * 6 + ["survey", "type", "name", "choices"]))
    sheets = {"survey", "choices", "settings"} | draw(st.sets(st.sampled_from(["Survey", "junk"]), max_size=1))
    survey_columns = {"type", "name", "label::English (en)", "label::Tiếng Việt (vi)"}
    survey_columns |= draw(st.sets(st.sampled_from(["relevant", "calculation", "constraint", "label"]), max_size=4))
    sheets -= {missing}
    survey_columns -= {missing}
    huge = draw(st.booleans())
    choices = [("yn", "yes", "Yes"), ("yn", "no", "No"), ("yn", "yes", "Dup")]
    if huge:
        choices += [("yn", f"c{i}", f"choice {i}") for i in range(3000)]
    return {"sheets": sheets, "survey_columns": sorted(survey_columns), "rows": _rows(draw), "choices": choices,
            "form_id": draw(st.sampled_from(["ok_form", "", "bad id", "x" * 300])),
            "version": draw(st.sampled_from(["2026112801", "", "v 1", None]))}


def _write(spec: dict, path: Path) -> None:
    book = openpyxl.Workbook()
    book.remove(book.active)
    if not spec["sheets"]:
        book.create_sheet("empty")
    for sheet in sorted(spec["sheets"]):
        ws = book.create_sheet(sheet)
        if sheet.lower() == "survey":
            columns = spec["survey_columns"]
            ws.append(columns)
            for row in spec["rows"]:
                ws.append([row.get(c) for c in columns])
        elif sheet == "choices":
            ws.append(["list_name", "name", "label::English (en)", "label::Tiếng Việt (vi)"])
            for choice in spec["choices"]:
                ws.append([*choice, choice[2]])
        elif sheet == "settings":
            ws.append(["form_id", "version", "form_title", "default_language"])
            ws.append([spec["form_id"], spec["version"], "Broken", "Tiếng Việt (vi)"])
        else:
            ws.append(["nothing"])
    book.save(path)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=broken_forms())
def test_a_broken_xlsform_gets_readable_issues_never_a_traceback(spec: dict, hardening_tally) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "broken.xlsx"
        media = Path(tmp) / "media"
        media.mkdir()
        _write(spec, path)
        try:
            report = check_form(path, media)
        except Exception:
            hardening_tally("hostile XLSForm (hypothesis)", leaked=1)
            raise
    hardening_tally("hostile XLSForm (hypothesis)")

    for issue in report.issues:
        assert isinstance(issue, FormIssue)
        assert isinstance(issue.message, str) and issue.message.strip()
        assert "Traceback" not in str(issue) and "File \"" not in str(issue)
    if "survey" not in spec["sheets"] or not {"type", "name"} <= set(spec["survey_columns"]):
        assert not report.ok and report.issues


@settings(max_examples=1, deadline=None)
@given(st.just(b"PK\x03\x04 not really a workbook"))
def test_a_file_that_is_not_a_workbook_is_one_readable_issue(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fake.xlsx"
        path.write_bytes(content)
        report = check_form(path, Path(tmp))
    assert not report.ok and "cannot read the workbook" in report.issues[0].message
