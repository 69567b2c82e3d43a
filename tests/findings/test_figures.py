"""Every figure of the report against an independent computation: plain SQL over the same database,
labels read straight from the FormSchemas, in both languages.

Each table of the report has an `expected_<key>` here (a new table without one fails
`test_every_table_is_checked`); it returns the rows the reader should see, in order.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from consult.findings import Findings, compute_findings
from consult.findings.words import Words
from consult.forms import FormSchema

from .conftest import Fieldwork

PROVINCE, MINISTRY, DONOR = "province_consultation", "ministry_consultation", "donor_consultation"
REGISTRATION, WORKSHOP = "focal_point_registration", "workshop_evaluation"
CONSULTATIONS = (PROVINCE, MINISTRY, DONOR)
FORMS = (*CONSULTATIONS, REGISTRATION, WORKSHOP)


def valid(form_id: str, alias: str = "t", status: str = "valid") -> str:
    """The join that keeps valid (or quarantined), live submissions of a form."""
    return (f"JOIN submissions s ON s.instance_id = {alias}._instance_id AND s.form_id = '{form_id}' "
            f"AND s.validation_status = '{status}' AND s.deleted_at IS NULL AND s.purged_at IS NULL")


def held(c: Check, form_id: str, by: str = "province") -> dict[str, int]:
    """Quarantined live submissions of a form per answer: what the tables say they do not count."""
    return c.counts(f"SELECT {by}, count(*) FROM {form_id} t {valid(form_id, status='quarantined')} "
                    f"WHERE {by} IS NOT NULL GROUP BY {by}")


class Check:
    """What an expectation needs: SQL, labels in the language, the report's fixed words."""

    def __init__(self, conn: Connection, schemas: dict[str, FormSchema], lang: str):
        self.conn, self.schemas, self.lang, self.w = conn, schemas, lang, Words(lang)  # type: ignore[arg-type]

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(r) for r in self.conn.execute(text(sql))]

    def one(self, sql: str):
        return self.conn.execute(text(sql)).scalar_one()

    def counts(self, sql: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.rows(sql)}

    def codes(self, form_id: str, field: str) -> list[str]:
        schema = self.schemas[form_id]
        return [c.name for c in schema.choice_lists[schema.field(field).choice_list].choices]

    def label(self, form_id: str, field: str, code: str) -> str:
        schema = self.schemas[form_id]
        choices = schema.choice_lists[schema.field(field).choice_list].choices
        return next(c.labels[self.lang] for c in choices if c.name == code)

    def question(self, form_id: str, field: str) -> str:
        return self.schemas[form_id].field(field).labels[self.lang]

    def province_order(self) -> dict[str, int]:
        return {code: i for i, code in enumerate(self.codes(PROVINCE, "province"))}

    def pilots(self) -> list[str]:
        choices = self.schemas[PROVINCE].choice_lists["provinces.csv"].choices
        return [c.name for c in choices if c.properties["pilot"] == "1"]


EXPECTED: dict[str, Callable[[Check], list[tuple]]] = {}


def expects(function: Callable[[Check], list[tuple]]) -> Callable[[Check], list[tuple]]:
    EXPECTED[function.__name__.removeprefix("expected_")] = function
    return function


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def by_count_then(rows: list[tuple], count: int, order: Callable[[tuple], object]) -> list[tuple]:
    return sorted(rows, key=lambda r: (-r[count], order(r)))


# --- coverage -------------------------------------------------------------------------------------

@expects
def expected_coverage_by_group(c: Check) -> list[tuple]:
    rows = []
    for form_id in FORMS:
        n, first, last = c.rows(f"SELECT count(*), min(consultation_date), max(consultation_date) "
                                f"FROM {form_id} t {valid(form_id)}")[0]
        quarantined = c.one(f"SELECT count(*) FROM {form_id} t {valid(form_id, status='quarantined')}")
        rows.append((c.w.group(form_id), n, first, last, quarantined))
    return rows


@expects
def expected_coverage_by_province(c: Check) -> list[tuple]:
    order = c.province_order()
    found = c.rows(f"SELECT province, count(*), count(DISTINCT agency) FROM {PROVINCE} t {valid(PROVINCE)} "
                   "GROUP BY province")
    pilots, quarantined = c.pilots(), held(c, PROVINCE)
    rows = [(code, c.label(PROVINCE, "province", code), c.w.yes_no(code in pilots), n, agencies,
             quarantined.get(code, 0)) for code, n, agencies in found]
    return [r[1:] for r in by_count_then(rows, 3, lambda r: order[r[0]])]


def _every_choice(c: Check, form_id: str, field: str) -> list[tuple]:
    counted = c.counts(f"SELECT {field}, count(*) FROM {form_id} t {valid(form_id)} GROUP BY {field}")
    return [(c.label(form_id, field, code), counted.get(code, 0)) for code in c.codes(form_id, field)]


@expects
def expected_coverage_by_agency(c: Check) -> list[tuple]:
    return _every_choice(c, PROVINCE, "agency")


@expects
def expected_coverage_by_ministry(c: Check) -> list[tuple]:
    return _every_choice(c, MINISTRY, "ministry")


@expects
def expected_coverage_by_org_type(c: Check) -> list[tuple]:
    return _every_choice(c, DONOR, "org_type")


def _per_form(c: Check, expression: str) -> dict[str, Counter]:
    table: dict[str, Counter] = defaultdict(Counter)
    for form_id in FORMS:
        for value, n in c.rows(f"SELECT {expression}, count(*) FROM {form_id} t {valid(form_id)} GROUP BY 1"):
            table[value][form_id] += n
    return table


@expects
def expected_coverage_by_enumerator(c: Check) -> list[tuple]:
    table = _per_form(c, "username")
    rows = [(name, *(table[name][f] for f in FORMS), sum(table[name].values())) for name in table]
    return sorted(rows, key=lambda r: (-r[-1], r[0]))


@expects
def expected_coverage_by_month(c: Check) -> list[tuple]:
    table = _per_form(c, "substr(consultation_date, 1, 7)")
    return sorted((month, *(table[month][f] for f in FORMS), sum(table[month].values())) for month in table)


# --- interest and commitment ----------------------------------------------------------------------

@expects
def expected_interest_distribution(c: Check) -> list[tuple]:
    counted = {f: c.counts(f"SELECT interest_level, count(*) FROM {f} t {valid(f)} GROUP BY 1")
               for f in CONSULTATIONS}
    return [(c.label(PROVINCE, "interest_level", level), *(counted[f].get(level, 0) for f in CONSULTATIONS),
             sum(counted[f].get(level, 0) for f in CONSULTATIONS)) for level in "12345"]


@expects
def expected_interest_by_group(c: Check) -> list[tuple]:
    def row(name: str, sql: str) -> tuple:
        n, average, interested = c.rows(f"SELECT count(level), avg(level), sum(level >= 4) FROM ({sql})")[0]
        return name, n, average, ratio(interested, n)

    parts = {f: f"SELECT CAST(interest_level AS REAL) AS level FROM {f} t {valid(f)}" for f in CONSULTATIONS}
    return [*(row(c.w.group(f), sql) for f, sql in parts.items()),
            row(c.w("all_groups"), " UNION ALL ".join(parts.values()))]


@expects
def expected_willingness(c: Check) -> list[tuple]:
    rows = []
    for form_id, field in ((PROVINCE, "willing_to_join"), (MINISTRY, "willing_to_support")):
        counted = c.counts(f"SELECT {field}, count(*) FROM {form_id} t {valid(form_id)} GROUP BY 1")
        n = sum(counted.values())
        yes, undecided, no = (counted.get(answer, 0) for answer in ("yes", "undecided", "no"))
        rows.append((c.w.group(form_id), n, yes, undecided, no, ratio(yes, n)))
    return rows


@expects
def expected_commitment_by_province(c: Check) -> list[tuple]:
    order, pilots = c.province_order(), c.pilots()
    willing = "willing_to_join = 'yes'"
    found = c.rows(f"SELECT province, count(*), sum({willing}), "
                   f"coalesce(sum(CASE WHEN {willing} THEN staff_days END), 0), "
                   f"coalesce(sum(CASE WHEN {willing} THEN budget_mvnd END), 0), "
                   f"coalesce(sum(CASE WHEN {willing} THEN 0 ELSE staff_days END), 0) "
                   f"FROM {PROVINCE} t {valid(PROVINCE)} GROUP BY province")
    quarantined = held(c, PROVINCE)
    rows = [(code, c.label(PROVINCE, "province", code), c.w.yes_no(code in pilots), n, agreed, days, budget,
             other_days, quarantined.get(code, 0)) for code, n, agreed, days, budget, other_days in found]
    return [r[1:] for r in by_count_then(rows, 5, lambda r: order[r[0]])]


@expects
def expected_focal_points(c: Check) -> list[tuple]:
    rows, quarantined = [], held(c, REGISTRATION)
    for code in c.pilots():
        decisions = c.rows(f"SELECT decision_number, decision_date FROM {REGISTRATION} t "
                           f"{valid(REGISTRATION)} "
                           f"WHERE province = '{code}'")
        team = c.rows(f"SELECT m.member_name, m.member_agency, m.member_gender, m.member_role "
                      f"FROM {REGISTRATION}__members m JOIN {REGISTRATION} t ON t._instance_id = "
                      f"m._instance_id "
                      f"{valid(REGISTRATION)} WHERE t.province = '{code}' ORDER BY m._instance_id, "
                      f"m._position")
        leads = [m for m in team if m[3] == "lead"]
        rows.append((c.label(REGISTRATION, "province", code), "; ".join(d[0] for d in decisions) or None,
                     min((d[1] for d in decisions), default=None), None, len(team),
                     sum(m[2] == "female" for m in team), "; ".join(m[0] for m in leads) or None,
                     "; ".join(c.label(REGISTRATION, "member_agency", m[1]) for m in leads) or None,
                     quarantined.get(code, 0)))
    return rows


# --- priorities -----------------------------------------------------------------------------------

def _ranking(rows: list[tuple], count: int, order: list[str]) -> list[tuple]:
    """Rank by `count` (ties share the best rank), ties listed in the choice list's order."""
    ordered = sorted(rows, key=lambda r: (-r[count], order.index(r[0])))
    return [(1 + sum(other[count] > r[count] for other in rows), *r[1:]) for r in ordered]


@expects
def expected_topic_ranking(c: Check) -> list[tuple]:
    respondents = sum(c.one(f"SELECT count(*) FROM {f} t {valid(f)}") for f in CONSULTATIONS)
    counted = {f: c.counts(f"SELECT value, count(*) FROM {f}__priority_topics t {valid(f)} GROUP BY value")
               for f in CONSULTATIONS}
    codes = c.codes(PROVINCE, "priority_topics")
    rows = []
    for code in codes:
        per_group = [counted[f].get(code, 0) for f in CONSULTATIONS]
        rows.append((code, c.label(PROVINCE, "priority_topics", code), *per_group, sum(per_group),
                     sum(per_group) / respondents))
    return _ranking(rows, 5, codes)


@expects
def expected_activity_ranking(c: Check) -> list[tuple]:
    respondents = c.one(f"SELECT count(*) FROM {PROVINCE} t {valid(PROVINCE)}")
    counted = c.counts(f"SELECT value, count(*) FROM {PROVINCE}__preferred_activities t {valid(PROVINCE)} "
                       "GROUP BY value")
    codes = c.codes(PROVINCE, "preferred_activities")
    rows = [(code, c.label(PROVINCE, "preferred_activities", code), counted.get(code, 0),
             counted.get(code, 0) / respondents) for code in codes]
    return _ranking(rows, 2, codes)


# --- constraints ----------------------------------------------------------------------------------

def _options(c: Check, field: str, asked: int) -> list[tuple]:
    counted = c.counts(f"SELECT value, count(*) FROM {PROVINCE}__{field} t {valid(PROVINCE)} GROUP BY value")
    return [(c.label(PROVINCE, field, code), counted.get(code, 0), ratio(counted.get(code, 0), asked))
            for code in c.codes(PROVINCE, field)]


@expects
def expected_reasons_not_joining(c: Check) -> list[tuple]:
    asked = c.one(f"SELECT count(*) FROM {PROVINCE} t {valid(PROVINCE)} WHERE willing_to_join IN ('no', "
                  f"'undecided')")
    return _options(c, "reasons_not_joining", asked)


@expects
def expected_support_needed(c: Check) -> list[tuple]:
    return _options(c, "support_needed", c.one(f"SELECT count(*) FROM {PROVINCE} t {valid(PROVINCE)}"))


OPEN = ((PROVINCE, "constraints"), (PROVINCE, "reasons_other"), (PROVINCE, "support_other"),
        (MINISTRY, "reasons_not_supporting"))


@expects
def expected_open_answers(c: Check) -> list[tuple]:
    rows = []
    for form_id, field in OPEN:
        n, given = c.rows(f"SELECT count(*), coalesce(sum(trim(coalesce({field}, '')) <> ''), 0) "
                          f"FROM {form_id} t {valid(form_id)}")[0]
        rows.append((c.question(form_id, field), c.w.group(form_id), n, given, ratio(given, n)))
    return rows


@expects
def expected_verbatim(c: Check) -> list[tuple]:
    rows = []
    for form_id, field in OPEN:
        rows += [(c.question(form_id, field), answer, n) for answer, n in c.rows(
            f"SELECT {field}, count(*) AS n FROM {form_id} t {valid(form_id)} WHERE trim({field}) <> '' "
            f"GROUP BY {field} ORDER BY n DESC, {field} LIMIT 10")]
    return rows


# --- donors ---------------------------------------------------------------------------------------

@expects
def expected_donor_support_types(c: Check) -> list[tuple]:
    respondents = c.one(f"SELECT count(*) FROM {DONOR} t {valid(DONOR)}")
    counted = c.counts(f"SELECT value, count(*) FROM {DONOR}__support_types t {valid(DONOR)} GROUP BY value")
    return [(c.label(DONOR, "support_types", code), counted.get(code, 0), counted.get(code, 0) / respondents)
            for code in c.codes(DONOR, "support_types")]


@expects
def expected_donor_budgets_by_type(c: Check) -> list[tuple]:
    found = {code: rest for code, *rest in c.rows(
        f"SELECT org_type, count(*), count(indicative_budget_kusd), coalesce(sum(indicative_budget_kusd), "
        f"0), "
        f"avg(indicative_budget_kusd) FROM {DONOR} t {valid(DONOR)} GROUP BY org_type")}
    return [(c.label(DONOR, "org_type", code), *found.get(code, (0, 0, 0.0, None)))
            for code in c.codes(DONOR, "org_type")]


def _donor_name(c: Check, code: str, other: str | None) -> str:
    return other if code == "other" and other else c.label(DONOR, "organisation", code)


@expects
def expected_donor_budgets(c: Check) -> list[tuple]:
    rows = [(_donor_name(c, code, other), c.label(DONOR, "org_type", kind), project, budget, portfolio)
            for code, other, kind, project, budget, portfolio in c.rows(
                f"SELECT organisation, organisation_other, org_type, project_name, indicative_budget_kusd, "
                f"ard_portfolio_musd FROM {DONOR} t {valid(DONOR)} WHERE indicative_budget_kusd IS NOT NULL")]
    return sorted(rows, key=lambda r: (-r[3], r[0]))


@expects
def expected_donor_province_matrix(c: Check) -> list[tuple]:
    cells: dict[str, Counter] = defaultdict(Counter)
    for code, other, province in c.rows(f"SELECT t.organisation, t.organisation_other, a.value FROM {DONOR} "
                                        f"t "
                                        f"JOIN {DONOR}__active_provinces a ON a._instance_id = "
                                        f"t._instance_id "
                                        f"{valid(DONOR)}"):
        cells[_donor_name(c, code, other)][province] += 1
    provinces = [p for p in c.codes(DONOR, "active_provinces") if any(p in row for row in cells.values())]
    return [(name, len(cells[name]), ", ".join(c.label(DONOR, "active_provinces", p) for p in provinces
                                               if cells[name][p])) for name in sorted(cells)]


# --- planning practice ----------------------------------------------------------------------------

def _provinces_by_respondents(c: Check, rows: list[tuple]) -> list[tuple]:
    """Rows that start with (province code, label, respondents, ...), most respondents first."""
    order = c.province_order()
    return [r[1:] for r in by_count_then(rows, 2, lambda r: order[r[0]])]


@expects
def expected_cprgs_awareness(c: Check) -> list[tuple]:
    rows = [(code, c.label(PROVINCE, "province", code), n, well, heard, unaware, well / n)
            for code, n, well, heard, unaware in c.rows(
                f"SELECT province, count(*), sum(cprgs_awareness = 'well'), sum(cprgs_awareness = 'heard'), "
                f"sum(cprgs_awareness = 'not_aware') FROM {PROVINCE} t {valid(PROVINCE)} GROUP BY province")]
    return _provinces_by_respondents(c, rows)


@expects
def expected_mpi_2215_use(c: Check) -> list[tuple]:
    rows = [(code, c.label(PROVINCE, "province", code), n, received, fully, partly, not_yet,
             ratio(fully + partly, received))
            for code, n, received, fully, partly, not_yet in c.rows(
                f"SELECT province, count(*), sum(mpi_2215_received = 'yes'), "
                f"coalesce(sum(mpi_2215_used = 'fully'), 0), coalesce(sum(mpi_2215_used = 'partly'), 0), "
                f"coalesce(sum(mpi_2215_used = 'not_yet'), 0) FROM {PROVINCE} t {valid(PROVINCE)} GROUP BY "
                f"province") if received]
    return _provinces_by_respondents(c, rows)


# --- workshops ------------------------------------------------------------------------------------

WORKSHOPS = {"soc_trang_2004": 29, "thanh_hoa_2004": 19}
"""The source document: 29 delegates in Sóc Trăng, 19 in Thanh Hoá."""


@expects
def expected_workshop_delegates(c: Check) -> list[tuple]:
    rows = []
    for code, expected in WORKSHOPS.items():
        received, ok = c.rows(
            f"SELECT count(*), coalesce(sum(s.validation_status = 'valid'), 0) FROM {WORKSHOP} t "
            f"JOIN submissions s ON s.instance_id = t._instance_id AND s.deleted_at IS NULL AND s.purged_at "
            f"IS NULL "
            f"WHERE t.workshop = '{code}'")[0]
        rows.append((c.label(WORKSHOP, "workshop", code), expected, received, ok, received - ok))
    return rows


@expects
def expected_workshop_delegates_by_province(c: Check) -> list[tuple]:
    order = c.province_order()
    rows = []
    for code in WORKSHOPS:
        found = c.rows(f"SELECT province, count(*) FROM {WORKSHOP} t {valid(WORKSHOP)} WHERE workshop = "
                       f"'{code}' "
                       "GROUP BY province")
        rows += [(c.label(WORKSHOP, "workshop", code), c.label(WORKSHOP, "province", p), n)
                 for p, n in sorted(found, key=lambda r: order[r[0]])]
    return rows


def _workshop_parts(c: Check) -> list[tuple[str, str]]:
    return [*((c.label(WORKSHOP, "workshop", code), f"workshop = '{code}'") for code in WORKSHOPS),
            (c.w("both_workshops"), "1 = 1")]


@expects
def expected_knowledge_gain(c: Check) -> list[tuple]:
    rows = []
    for name, where in _workshop_parts(c):
        for topic, before, after in (("cprgs", "cprgs_before", "cprgs_after"),
                                     ("results", "results_before", "results_after")):
            pairs = c.rows(f"SELECT CAST({before} AS INTEGER), CAST({after} AS INTEGER) FROM {WORKSHOP} t "
                           f"{valid(WORKSHOP)} WHERE {where} AND {before} IS NOT NULL AND {after} IS NOT "
                           f"NULL")
            gains = [a - b for b, a in pairs]
            rows.append((name, c.w(f"knowledge.{topic}"), len(pairs), statistics.mean(b for b, _ in pairs),
                         statistics.mean(a for _, a in pairs), statistics.mean(gains),
                         statistics.stdev(gains), sum(g > 0 for g in gains) / len(gains)))
    return rows


@expects
def expected_session_usefulness(c: Check) -> list[tuple]:
    rows = []
    for session in ("session_cprgs", "session_mpi_2215", "session_results", "session_indicators",
                    "session_group_work"):
        n, average, useful = c.rows(f"SELECT count({session}), avg(CAST({session} AS REAL)), "
                                    f"sum(CAST({session} AS INTEGER) >= 4) FROM {WORKSHOP} t "
                                    f"{valid(WORKSHOP)}")[0]
        rows.append((c.question(WORKSHOP, session), n, average, useful / n))
    return rows


@expects
def expected_will_apply(c: Check) -> list[tuple]:
    rows = []
    for name, where in _workshop_parts(c):
        n, yes = c.rows(f"SELECT count(will_apply), coalesce(sum(will_apply = 'yes'), 0) FROM {WORKSHOP} t "
                        f"{valid(WORKSHOP)} WHERE {where}")[0]
        rows.append((name, n, yes, ratio(yes, n)))
    return rows


# --- data quality ---------------------------------------------------------------------------------

@expects
def expected_quality_by_form(c: Check) -> list[tuple]:
    rows = []
    for form_id in FORMS:
        live = "deleted_at IS NULL AND purged_at IS NULL"
        received, ok, held, told = c.rows(
            f"SELECT count(*), coalesce(sum(validation_status = 'valid'), 0), "
            f"coalesce(sum(validation_status = 'quarantined'), 0), coalesce(sum(review_state = "
            f"'hasIssues'), 0) "
            f"FROM submissions WHERE form_id = '{form_id}' AND {live}")[0]
        deleted = c.one(f"SELECT count(*) FROM submissions WHERE form_id = '{form_id}' AND deleted_at IS "
                        f"NOT NULL")
        rows.append((c.w.group(form_id), received, ok, held, told, deleted))
    return rows


@expects
def expected_quarantine_by_rule(c: Check) -> list[tuple]:
    message = "message_vi" if c.lang == "vi" else "message_en"
    rows = []
    for form_id in FORMS:
        for rule, submissions, failures in c.rows(
                f"SELECT f.rule, count(DISTINCT f.instance_id), count(*) FROM validation_failures f "
                f"JOIN submissions s ON s.instance_id = f.instance_id AND s.form_id = f.form_id "
                f"AND s.deleted_at IS NULL AND s.purged_at IS NULL WHERE f.form_id = '{form_id}' "
                f"GROUP BY f.rule ORDER BY f.rule"):
            example = c.one(f"SELECT f.{message} FROM validation_failures f JOIN submissions s "
                            f"ON s.instance_id = f.instance_id AND s.form_id = f.form_id AND s.deleted_at "
                            f"IS NULL "
                            f"AND s.purged_at IS NULL WHERE f.form_id = '{form_id}' AND f.rule = '{rule}' "
                            f"GROUP BY f.{message} ORDER BY count(*) DESC, f.{message} LIMIT 1")
            rows.append((c.w.group(form_id), c.w.rule(rule), submissions, failures,
                         re.sub(r"uuid:([0-9a-f]{8})[0-9a-f-]{28}", r"\1…", example)))
    return rows


# --- the checks -----------------------------------------------------------------------------------

def _same(got: object, want: object) -> bool:
    if isinstance(got, date):
        got = got.isoformat()
    if isinstance(want, date):
        want = want.isoformat()
    if isinstance(want, float) or isinstance(got, float):
        return got is not None and want is not None and math.isclose(float(got), float(want), rel_tol=1e-9,  # type: ignore[arg-type]
                                                                      abs_tol=1e-12)
    return got == want


def assert_rows(got: list[tuple], want: list[tuple], key: str) -> None:
    assert len(got) == len(want), f"{key}: {len(got)} rows, expected {len(want)}:\n{got}\n{want}"
    for i, (g, e) in enumerate(zip(got, want, strict=True)):
        assert len(g) == len(e) and all(_same(a, b) for a, b in zip(g, e, strict=True)), (
            f"{key} row {i}:\n got      {g}\n expected {e}")


@pytest.fixture(scope="module", params=["vi", "en"])
def findings(request: pytest.FixtureRequest, engine: Engine, schemas: dict[str, FormSchema]) -> Findings:
    return compute_findings(engine, schemas, request.param)


def test_every_table_is_checked(findings: Findings) -> None:
    """ISG's tables against EXPECTED; focal_point_update, which ISG's sections do not read, gets the
    automatic section every other form gets (its tables are checked with the foreign forms')."""
    update = [t for t in findings.tables if t.key.startswith("form-focal_point_update-")]
    assert [t.key for t in findings.tables if t not in update] == list(EXPECTED)
    assert [t.key for t in update] == [f"form-focal_point_update-{n}" for n in range(1, 7)]
    assert update[0].frame["received"].tolist() == [6]
    (texts,) = [t for t in update if "distinct" in t.frame]
    assert texts.frame["answers"].tolist()[:3] == [6, 4, 5], "agency, position, phone: counted (then the notes)"
    phones = {c for t in update for c in t.frame.astype(str).to_numpy().ravel() if c.lstrip("+").isdigit()
              and len(c.lstrip("+")) >= 9}
    assert phones == set(), "answers saved to the focal_points list are never quoted (no verbatim table)"


@pytest.mark.parametrize("key", list(EXPECTED))
def test_table_matches_an_independent_computation(findings: Findings, engine: Engine,
                                                  schemas: dict[str, FormSchema], key: str) -> None:
    table = findings.table(key)
    with engine.connect() as conn:
        want = EXPECTED[key](Check(conn, schemas, findings.lang))
    assert want, f"{key}: the fixture should give this table rows"
    assert_rows(table.rows(), want, key)


def test_key_figures(findings: Findings, engine: Engine, schemas: dict[str, FormSchema]) -> None:
    with engine.connect() as conn:
        c = Check(conn, schemas, findings.lang)
        consultations = sum(c.one(f"SELECT count(*) FROM {f} t {valid(f)}") for f in CONSULTATIONS)
        provinces = c.one(f"SELECT count(DISTINCT province) FROM {PROVINCE} t {valid(PROVINCE)}")
        registered = c.one(f"SELECT count(DISTINCT t.province) FROM {REGISTRATION} t {valid(REGISTRATION)} "
                           f"JOIN {REGISTRATION}__members m ON m._instance_id = t._instance_id")
        interest = c.one(" UNION ALL ".join(f"SELECT CAST(interest_level AS REAL) AS level FROM {f} t "
                                            f"{valid(f)}"
                                            for f in CONSULTATIONS).join(("SELECT avg(level) FROM (", ")")))
        willing = c.one(f"SELECT avg(willing_to_join = 'yes') FROM {PROVINCE} t {valid(PROVINCE)}")
        days, budget = c.rows(f"SELECT sum(staff_days), sum(budget_mvnd) FROM {PROVINCE} t "
                              f"{valid(PROVINCE)} WHERE willing_to_join = 'yes'")[0]
        donors = c.one(f"SELECT sum(indicative_budget_kusd) FROM {DONOR} t {valid(DONOR)}")
        delegates = c.one(f"SELECT count(*) FROM {WORKSHOP} t {valid(WORKSHOP)}")
        gain = c.one(f"SELECT avg(CAST(cprgs_after AS REAL) - CAST(cprgs_before AS REAL)) FROM {WORKSHOP} t "
                     f"{valid(WORKSHOP)}")
        held = c.one("SELECT count(*) FROM submissions WHERE validation_status = 'quarantined' "
                     "AND deleted_at IS NULL AND purged_at IS NULL")
    got = [h.value for h in findings.headlines]
    want = [consultations, provinces, registered, interest, willing, days, budget, donors, delegates, gain,
            held]
    assert all(_same(g, e) for g, e in zip(got, want, strict=True)), (got, want)


def test_the_fixture_exercises_what_the_findings_exclude(field_data: Fieldwork, engine: Engine) -> None:
    """Quarantined, deleted and not-yet-written-back submissions exist, and the hostile answers are valid."""
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT validation_status, count(*) FROM submissions "
                                          "WHERE deleted_at IS NULL GROUP BY 1")).all())
        deleted = conn.execute(text("SELECT validation_status FROM submissions "
                                    "WHERE deleted_at IS NOT NULL")).all()
        hostile = conn.execute(text(f"SELECT count(*) FROM {PROVINCE} t {valid(PROVINCE)} WHERE constraints "
                                    "LIKE '<script>%' OR constraints LIKE '=HYPERLINK(%'")).scalar()
        unreviewed = conn.execute(text("SELECT review_state FROM submissions WHERE instance_id = :i"),
                                  {"i": field_data.not_written_back}).scalar()
    assert statuses["quarantined"] >= 5 and statuses["valid"] > 150
    assert deleted == [("valid",)]
    assert hostile == 2 and unreviewed is None
