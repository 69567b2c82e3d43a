"""Domain rules are per form and opt-in: a form gets ISG's rules only through the isg profile.

Forms that are not ISG's (their own XLSForm, or a copy of an ISG form under another id or
profile) get the generated checks only: no consultation period, no team or budget rules,
no duplicate keys.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import date
from pathlib import Path

import openpyxl
import pytest

import consult
import consult.profiles
from consult.forms import FormSchema, compile_xlsform
from consult.profiles import FormRules, Period, Profile, profile, rules_for
from consult.profiles.isg import PROFILE as ISG
from consult.validate import duplicate_rules, rule_inventory
from consult.validate.duplicates import DuplicateRule, KeyPart
from consult.validate.rules import OneLead, form_rules
from consult.validate.suite import form_checks

from ..conftest import BuiltForms
from .conftest import TODAY, validate
from .submissions import answers, odata_row

D, W = "donor_consultation", "workshop_evaluation"
ISG_RULES = {"consultation_period", "members_present", "one_lead", "budget_matches_funding",
             "duplicate_interview"}
FUTURE = "2031-05-01"


@pytest.fixture(scope="module")
def visit(tmp_path_factory: pytest.TempPathFactory) -> FormSchema:
    """Someone else's form: one language, dates with no constraint, profile odk."""
    folder = tmp_path_factory.mktemp("visit")
    book = openpyxl.Workbook()
    survey = book.active
    survey.title = "survey"
    for row in [("type", "name", "label", "required"), ("today", "today", "", ""),
                ("date", "visit_date", "Ngày thăm hộ", "yes"), ("date", "founded", "Năm thành lập HTX", ""),
                ("text", "visitor", "Người đi thăm", "yes")]:
        survey.append(row)
    settings = book.create_sheet("settings")
    settings.append(("form_id", "version"))
    settings.append(("household_visit", "2025011501"))
    book.save(folder / "household_visit.xlsx")
    return compile_xlsform(folder / "household_visit.xlsx", folder, validate=False).schema


def _failed_rules(schema: FormSchema, values: dict) -> set[str]:
    report = validate(schema, [odata_row(schema, "uuid:one", values)])
    return {f.rule for f in report.failures}


def test_a_foreign_form_keeps_dates_outside_isgs_consultation_period(visit: FormSchema) -> None:
    assert visit.profile == "odk"
    values = {"visit_date": FUTURE, "founded": "1990-03-01", "visitor": "Lò Văn Páo"}
    report = validate(visit, [odata_row(visit, "uuid:one", values)])
    assert report.failures == [] and report.statuses == {"uuid:one": "valid"}
    assert {c.rule for c in form_checks(visit)} == {"required"}
    assert _failed_rules(visit, {"founded": "1990-03-01"}) == {"required"}  # generated checks still hold


def test_an_unlisted_form_of_the_isg_profile_gets_nothing_of_isgs(visit: FormSchema) -> None:
    """The documented choice: ISG's period is about when ISG consulted, so it is opted into
    form by form (`consult.profiles.isg`), not inherited by every form of the profile."""
    unlisted = visit.model_copy(update={"profile": "isg"})
    assert rules_for(unlisted) == ISG.unlisted == FormRules()
    assert _failed_rules(unlisted, {"visit_date": FUTURE, "founded": "1990-03-01", "visitor": "A"}) == set()


def test_an_isg_form_is_still_held_to_the_consultation_period(schemas: dict[str, FormSchema]) -> None:
    schema = schemas[W]  # its constraint's lower bound is left to the form: the period states one
    assert schema.profile == "isg"
    early = answers(W, consultation_date="2002-12-31")
    report = validate(schema, [odata_row(schema, "uuid:early", early)])
    (failure,) = report.failures
    assert (failure.rule, failure.column, report.statuses["uuid:early"]) == (
        "consultation_period", "consultation_date", "quarantined")
    assert "01/01/2003" in failure.message_en and "01/01/2003" in failure.message_vi
    as_odk = schema.model_copy(update={"profile": "odk"})
    assert _failed_rules(as_odk, early) == set()


def test_an_isg_form_under_another_id_or_profile_gets_no_isg_rule(schemas: dict[str, FormSchema]) -> None:
    donor = schemas[D]
    budget_without_funding = answers(D, support_types="training")
    funding_without_budget = answers(D, indicative_budget_kusd=None)
    assert _failed_rules(donor, budget_without_funding) == {"budget_matches_funding"}
    assert _failed_rules(donor, funding_without_budget) == {"budget_matches_funding"}
    copies = [donor.model_copy(update={"form_id": "donor_consultation_copy", "profile": "odk"}),
              donor.model_copy(update={"form_id": "donor_consultation_copy"}),  # isg, but not listed
              donor.model_copy(update={"profile": "odk"})]
    for copy in copies:
        assert _failed_rules(copy, budget_without_funding) == set(), (copy.form_id, copy.profile)
        # the form's own relevance still asks for the budget, with the generated check
        assert _failed_rules(copy, funding_without_budget) == {"required_if_relevant"}
        assert not set(rule_inventory(copy)) & ISG_RULES
        assert duplicate_rules(copy) == []
    assert {"budget_matches_funding", "duplicate_interview"} <= set(rule_inventory(donor))


def test_the_registry_refuses_a_rule_naming_a_field_the_form_lacks(visit: FormSchema) -> None:
    team = Profile("team", {"household_visit": FormRules(rules=(OneLead("members", "member_role", "lead"),))})
    with pytest.raises(ValueError, match=r"household_visit: rule one_lead of profile team reads "
                                         r"\['member_role', 'members'\], which the form lacks"):
        team.rules_for(visit)
    keyed = Profile("keyed", {"household_visit": FormRules(
        duplicates=(DuplicateRule.of("same_visit", (KeyPart("visitor"), KeyPart("village"))),))})
    with pytest.raises(ValueError, match=r"rule same_visit of profile keyed reads \['village'\]"):
        keyed.rules_for(visit)


def test_an_isg_rule_whose_field_left_the_form_fails_loudly(schemas: dict[str, FormSchema]) -> None:
    schema = schemas[D].model_copy(deep=True)
    schema.fields = [f for f in schema.fields if f.name != "support_types"]
    with pytest.raises(ValueError, match="rule budget_matches_funding of profile isg reads .*support_types"):
        form_rules(schema)


def test_unknown_profiles_and_form_rules_for_unlisted_forms_are_refused(visit: FormSchema) -> None:
    with pytest.raises(ValueError, match="unknown profile 'isgg': consult knows isg, odk"):
        rules_for(visit.model_copy(update={"profile": "isgg"}))
    with pytest.raises(ValueError, match="belong to a listed form"):
        Profile("loose", unlisted=FormRules(rules=(OneLead("members", "member_role", "lead"),)))
    assert profile("odk").rules_for(visit) == FormRules()


def test_a_profile_may_give_its_period_to_every_form_it_does_not_list(
        visit: FormSchema, monkeypatch: pytest.MonkeyPatch) -> None:
    period = Period(date(2020, 1, 1), "survey_period")
    everywhere = Profile("survey_office", unlisted=FormRules(period=period))
    monkeypatch.setitem(consult.profiles._loaded, everywhere.name, everywhere)
    schema = visit.model_copy(update={"profile": everywhere.name})
    report = validate(schema, [odata_row(schema, "uuid:old", {"visit_date": "2019-12-31", "visitor": "A"}),
                               odata_row(schema, "uuid:new", {"visit_date": FUTURE, "visitor": "A"}),
                               odata_row(schema, "uuid:ok", {"visit_date": TODAY.isoformat(), "visitor": "A",
                                                             "founded": "2020-01-01"})])
    assert [(f.instance_id, f.rule, f.column) for f in report.failures] == [
        ("uuid:old", "survey_period", "visit_date"), ("uuid:new", "survey_period", "visit_date")]
    assert report.statuses["uuid:ok"] == "valid"


CORE = ("validate", "warehouse", "central", "forms")


def _code_strings(path: Path) -> set[str]:
    """String constants of a module's code, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings}


def test_the_core_names_no_isg_form_and_no_field_isgs_rules_read() -> None:
    isg_names = set(ISG.forms)
    for rules in ISG.forms.values():
        isg_names |= {name for _, fields in rules.field_names() for name in fields}
    package = Path(consult.__file__).parent
    found = {(str(path.relative_to(package)), text)
             for part in CORE for path in sorted((package / part).rglob("*.py"))
             for text in _code_strings(path) if text in isg_names}
    assert found == set()


def test_reading_isgs_duplicate_keys_loads_neither_pandas_nor_gx(built_forms: BuiltForms) -> None:
    """The warehouse asks for duplicate keys after each sync pass; the ISG layer must not make it pay
    for pandas and GX."""
    code = ("import sys; from pathlib import Path; from consult.forms.schema import FormSchema; "
            "from consult.validate import duplicate_rules; "
            "(rule,) = duplicate_rules(FormSchema.read(Path(sys.argv[1]))); print(rule.name); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'great_expectations')))")
    path = built_forms.out_dir / f"{D}.schema.json"
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split("\n")[:2] == ["duplicate_interview", "[]"]
