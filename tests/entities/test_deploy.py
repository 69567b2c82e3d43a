"""Deploying forms that fill and read an entity list, against the sandbox over HTTP."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from consult.central import CentralSession, DeployAction, built_forms, deploy_forms, resolve_project
from consult.central.deploy import BuiltForm, DeployError, deploy_form, upload_draft_attachments
from consult.central.entities import (
    EntityListError,
    EntityListSettings,
    ListRead,
    form_entities,
    read_entity_list_settings,
)
from consult.sandbox import SandboxServer

from .conftest import FORMS
from .fieldwork import register

READS_EMAIL = ('<bind nodeset="/data/notes" type="string" '
               "calculate=\"instance('focal_points')/root/item[name= /data/focal_point ]/email\"/>")


def _attachment(central: CentralSession, project_id: int, form_id: str) -> dict:
    (attachment,) = central.json("GET", f"projects/{project_id}/forms/{form_id}/attachments")
    return attachment


def test_forms_say_which_lists_they_fill_and_read(entity_forms: list[BuiltForm]) -> None:
    declared = {f.schema.form_id: form_entities(f.schema.form_id, f.xml.decode()) for f in entity_forms}
    registration = declared["focal_point_entity_test"]
    assert registration.creates == {"focal_points"} and not registration.updates
    assert registration.saves["focal_points"] == {"full_name", "province", "agency", "phone"}
    update = declared["focal_point_update_test"]
    assert update.updates == {"focal_points"} and update.csv_files == {"focal_points.csv"}
    assert ListRead("focal_points", "@baseVersion", "__version") in update.reads
    assert ListRead("focal_points", "focal_point", "label") in update.reads
    assert declared["province_followup_test"].sources == frozenset()


def test_readers_deploy_after_the_registration_and_their_list_csv_is_linked_not_uploaded(
        central: CentralSession, entity_forms: list[BuiltForm]) -> None:
    project_id = resolve_project(central, central.settings.project)
    readers_first = sorted(entity_forms, key=lambda f: f.schema.form_id != "province_followup_test")
    deployed = deploy_forms(central, project_id, readers_first, {})
    assert [d.form_id for d in deployed] == ["focal_point_entity_test", "focal_point_update_test",
                                             "province_followup_test"]
    for reader in ("focal_point_update_test", "province_followup_test"):
        attachment = _attachment(central, project_id, reader)
        assert (attachment["datasetExists"], attachment["exists"], attachment["hash"]) == (True, True, None)
    again = deploy_forms(central, project_id, entity_forms, {})
    assert {d.action for d in again} == {DeployAction.UNCHANGED}
    assert _attachment(central, project_id, "province_followup_test")["datasetExists"] is True


def test_a_property_no_form_saves_is_refused_before_any_draft(central: CentralSession,
                                                               entity_forms: list[BuiltForm],
                                                               tmp_path: Path) -> None:
    project_id = resolve_project(central, central.settings.project)
    followup = next(f for f in entity_forms if f.schema.form_id == "province_followup_test")
    changed = tmp_path / "province_followup_test.xml"
    changed.write_text(followup.xml.decode().replace("</model>", READS_EMAIL + "</model>"), encoding="utf-8")
    forms = [f for f in entity_forms if f is not followup] + [dataclasses.replace(followup, xform_path=changed)]
    with pytest.raises(DeployError) as refused:
        deploy_forms(central, project_id, forms, {})
    assert str(refused.value) == (
        "province_followup_test: field 'notes' reads property 'email' of the entity list focal_points, which no "
        "form saves: add save_to = email to the form that registers focal_points, or change the field")
    assert central.json("GET", f"projects/{project_id}/forms") == []


def test_approval_follows_the_configuration_and_pending_submissions_are_named(
        central: CentralSession, server: SandboxServer, entity_forms: list[BuiltForm]) -> None:
    project_id = resolve_project(central, central.settings.project)
    listing = f"projects/{project_id}/datasets/focal_points"
    deploy_forms(central, project_id, entity_forms, {"focal_points": EntityListSettings("focal_points", True)})
    assert central.json("GET", listing)["approvalRequired"] is True
    register(central, project_id, "Lò Thị Nga", "thai_nguyen")
    server.exhaust_worker()
    assert central.json("GET", f"{listing}/entities") == []
    with pytest.raises(EntityListError, match=r"^entity list focal_points: 1 submission\(s\) still wait for "
                                              r"approval.*convert_pending = true"):
        deploy_forms(central, project_id, entity_forms, {"focal_points": EntityListSettings("focal_points")})
    deploy_forms(central, project_id, entity_forms,
                 {"focal_points": EntityListSettings("focal_points", False, convert_pending=True)})
    server.exhaust_worker()
    assert central.json("GET", listing)["approvalRequired"] is False
    assert [e["currentVersion"]["label"] for e in central.json("GET", f"{listing}/entities")] == [
        "Lò Thị Nga - thai_nguyen"]


def test_consult_toml_configures_the_lists(tmp_path: Path) -> None:
    assert read_entity_list_settings(FORMS.forms_dir / "consult.toml") == {
        "focal_points": EntityListSettings("focal_points", approval_required=False)}
    bad = tmp_path / "consult.toml"
    bad.write_text('[entity_lists.focal_points]\napproval_required = "yes"\n', encoding="utf-8")
    with pytest.raises(EntityListError, match=r"\[entity_lists.focal_points\] takes approval_required = true"):
        read_entity_list_settings(bad)


def test_a_draft_made_before_its_list_existed_is_linked_not_uploaded(central: CentralSession,
                                                                     entity_forms: list[BuiltForm]) -> None:
    project_id = resolve_project(central, central.settings.project)
    forms = {f.schema.form_id: f for f in entity_forms}
    reader = forms["province_followup_test"]
    central.json("POST", f"projects/{project_id}/forms", params={"publish": "false", "ignoreWarnings": "true"},
                 data=reader.xml, headers={"Content-Type": "application/xml"})
    drafted = central.json("GET", f"projects/{project_id}/forms/province_followup_test/draft/attachments")
    assert [(a["name"], a["exists"], a.get("datasetExists")) for a in drafted] == [
        ("focal_points.csv", False, False)]
    deploy_form(central, project_id, forms["focal_point_entity_test"])
    assert upload_draft_attachments(central, project_id, reader, frozenset({"focal_points.csv"})) == (
        "focal_points.csv",)
    (linked,) = central.json("GET", f"projects/{project_id}/forms/province_followup_test/draft/attachments")
    assert (linked["datasetExists"], linked["exists"], linked["hash"]) == (True, True, None)


def test_the_build_needs_no_copy_of_the_list_csv(central: CentralSession, entity_build: Path,
                                                 tmp_path: Path) -> None:
    build = tmp_path / "forms"
    shutil.copytree(entity_build, build)
    (build / "media" / "focal_points.csv").unlink()
    project_id = resolve_project(central, central.settings.project)
    deployed = deploy_forms(central, project_id, built_forms(build), {})
    assert {d.form_id: d.action for d in deployed} == {
        "focal_point_entity_test": DeployAction.CREATED, "focal_point_update_test": DeployAction.CREATED,
        "province_followup_test": DeployAction.CREATED}


def test_isg_forms_that_register_into_the_list_they_read_deploy_in_any_company(central: CentralSession,
                                                                               built_forms) -> None:
    """A consultation registers respondents missing from focal_points and reads focal_points.csv: deployed
    alone the list is made first (by API) so its CSV is linked; with the registration, that goes first."""
    project_id = resolve_project(central, central.settings.project)
    alone = BuiltForm.load(built_forms.out_dir, "province_consultation")
    assert [d.action for d in deploy_forms(central, project_id, [alone])] == [DeployAction.CREATED]
    linked = {a["name"]: a for a in central.json("GET", f"projects/{project_id}/forms/province_consultation/"
                                                        "attachments")}["focal_points.csv"]
    assert (linked["datasetExists"], linked["exists"], linked["hash"]) == (True, True, None)
    dataset = central.json("GET", f"projects/{project_id}/datasets/focal_points")
    assert {p["name"] for p in dataset["properties"]} == {"full_name", "province", "stakeholder_type", "agency",
                                                          "position", "phone"}
    others = [BuiltForm.load(built_forms.out_dir, f) for f in ("workshop_evaluation", "focal_point_update",
                                                               "focal_point_registration")]
    project_2 = resolve_project(central, f"{central.settings.project} (all)")
    order = [d.form_id for d in deploy_forms(central, project_2, [alone, *others])]
    assert order == ["focal_point_registration", "province_consultation", "workshop_evaluation",
                     "focal_point_update"]
