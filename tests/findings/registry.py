"""A warehouse with the focal-point registry, made the way production makes it.

`tests/findings/forms/registry/` holds small stand-ins for ISG's consultations as the shared contract of
issue 18 shapes them: `province_consultation` picks the respondent from `focal_points.csv` or, when
they are "not in the list", registers them through its entities sheet; `donor_consultation` only picks;
`ministry_consultation` is a form deployed before the registry (no `focal_point` question);
`focal_point_update` changes a phone (`update_if`). On a sandbox over HTTP: the forms are deployed, 8
focal points imported from a sheet, one phone updated, a stale update makes a conflict, one entity
deleted; the consultations are sent to Central (where the province ones register two people) and loaded
into SQLite the way a sync loads them (OData rows → records → validation → load), one deleted; the
entity list is synced by `warehouse.entities`. The expected figures below are worked out by hand.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

from sqlalchemy import text

from consult.central import CentralSession, deploy_forms, resolve_project
from consult.central.deploy import built_forms
from consult.entities import import_entities
from consult.fieldwork import Interview
from consult.forms import FormSchema
from consult.forms.xlsform import compile_xlsform
from consult.sandbox import SandboxServer
from consult.validate import ValidationContext, validate_records
from consult.warehouse.database import create_engine_for
from consult.warehouse.entities import sync_entity_lists
from consult.warehouse.load import FailureRow, load_page, mark_deleted
from consult.warehouse.records import FormLayout, RecordBuilder
from consult.warehouse.tables import ensure_schema

from ..served import odata_rows

FORMS = Path(__file__).parent / "forms" / "registry"
FORM_IDS = ("focal_point_registration", "province_consultation", "donor_consultation", "ministry_consultation",
            "focal_point_update")
PROJECT_ID = 1
TODAY = date(2026, 1, 1)

SEED = """label,full_name,province,stakeholder_type,agency,position,phone
Nguyễn Văn An – Sở NN&PTNT – Thái Nguyên,Nguyễn Văn An,thai_nguyen,province,dard,Phó Giám đốc,+84 208 100 0001
Lê Thị Bình – Sở KH&ĐT – Thái Nguyên,Lê Thị Bình,thai_nguyen,province,dpi,Chuyên viên,+84 208 100 0002
Trần Văn Cường – Sở Tài chính – Trà Vinh,Trần Văn Cường,tra_vinh,province,dof,Trưởng phòng,+84 294 100 0003
Phạm Thị Dung – UBND tỉnh – Sóc Trăng,Phạm Thị Dung,soc_trang,province,ppc,Chánh văn phòng,+84 299 100 0004
Hoàng Văn Em – Bộ KH&ĐT,Hoàng Văn Em,,ministry,mpi,Vụ trưởng,+84 24 100 0005
Vũ Thị Giang – Bộ Tài chính,Vũ Thị Giang,,ministry,mof,Phó Vụ trưởng,+84 24 100 0006
Jane Smith – UNDP,Jane Smith,,donor,undp,Programme officer,+84 24 100 0007
Ngô Quốc Hùng – ADB,Ngô Quốc Hùng,,donor,adb,Project officer,+84 24 100 0008
"""
"""ISG's contact sheet: four provincial, two ministry and two donor focal points."""


@dataclass
class Scenario:
    db_url: str
    schemas: dict[str, FormSchema]
    project_id: int
    uuids: dict[str, str] = field(default_factory=dict)
    """Full name → entity uuid (live and deleted)."""
    instances: dict[str, str] = field(default_factory=dict)
    """Consultation tag → instance id."""


def build(out_dir: Path) -> dict[str, FormSchema]:
    """XForm, FormSchema and media per form, as `consult forms build` writes them. The forms read
    `focal_points.csv` but none is attached: Central serves the live list (an empty placeholder would
    give the FormSchema an empty choice list, and the validation would refuse every pick)."""
    (out_dir / "media").mkdir(parents=True, exist_ok=True)
    (out_dir / "media" / "provinces.csv").write_bytes((FORMS / "media" / "provinces.csv").read_bytes())
    schemas = {}
    for form_id in FORM_IDS:
        compiled = compile_xlsform(FORMS / f"{form_id}.md", FORMS / "media")
        (out_dir / f"{form_id}.xml").write_text(compiled.xform, encoding="utf-8")
        compiled.schema.write(out_dir / f"{form_id}.schema.json")
        schemas[form_id] = compiled.schema
    return schemas


def _xml(schema: FormSchema, instance_id: str, answers: dict[str, str], entity: str = "") -> bytes:
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in answers.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?><{schema.root} id="{schema.form_id}" version="{schema.version}">'
            f"{body}<meta>{entity}<instanceID>{instance_id}</instanceID></meta></{schema.root}>").encode()


def consultation(schema: FormSchema, order: int, answers: dict[str, str], registers: str | None = None) -> Interview:
    """A consultation as Collect sends it; `registers` (a label) when the respondent is not in the list and
    the form's entities sheet makes them a focal point."""
    instance_id = f"uuid:{uuid.uuid4()}"
    entity = ""
    if schema.form_id == "province_consultation":
        created = "1" if registers else "0"
        label = f"<label>{escape(registers)}</label>" if registers else "<label/>"
        entity = f'<entity dataset="focal_points" create="{created}" id="{uuid.uuid4()}">{label}</entity>'
    return Interview(schema.form_id, instance_id, _xml(schema, instance_id, answers, entity), None, order)


def send(central: CentralSession, project_id: int, interview: Interview) -> None:
    central.json("POST", f"projects/{project_id}/forms/{interview.form_id}/submissions", data=interview.xml,
                 headers={"Content-Type": "application/xml"})


def update_phone(central: CentralSession, project_id: int, schema: FormSchema, entity_id: str,
                 base_version: int, phone: str) -> None:
    entity = (f'<entity dataset="focal_points" update="1" baseVersion="{base_version}" trunkVersion="" '
              f'branchId="" id="{entity_id}"/>')
    instance_id = f"uuid:{uuid.uuid4()}"
    xml = _xml(schema, instance_id, {"focal_point": entity_id, "new_phone": phone}, entity)
    send(central, project_id, Interview(schema.form_id, instance_id, xml, None, 0))


def load(db_url: str, schemas: dict[str, FormSchema], build_dir: Path, interviews: list[Interview]) -> None:
    """Through the sandbox's OData conversion, the warehouse's records, the real validation and load."""
    engine = create_engine_for(db_url)
    consultations = [f for f in FORM_IDS if f.endswith("_consultation")]
    try:
        ensure_schema(engine, [FormLayout.of(schemas[f]) for f in consultations])
        with engine.begin() as conn:
            for form_id in consultations:
                schema = schemas[form_id]
                records = RecordBuilder(schema).build(odata_rows(build_dir / f"{form_id}.xml",
                                                                 [i for i in interviews if i.form_id == form_id]))
                report = validate_records(schema, records, ValidationContext(today=TODAY))
                failures = [FailureRow(PROJECT_ID, form_id, f.instance_id, f.rule, f.column, f.row_id, f.value,
                                       f.message_vi, f.message_en) for f in report.failures]
                load_page(conn, PROJECT_ID, records, dict(report.statuses), failures)
    finally:
        engine.dispose()


def sync(central: CentralSession, project_id: int, db_urls: list[str]) -> None:
    for url in db_urls:
        engine = create_engine_for(url)
        try:
            sync_entity_lists(central, engine, project_id)
        finally:
            engine.dispose()


def make_registry(central: CentralSession, server: SandboxServer, build_dir: Path, db_url: str,
                  sheet: Path, replicas: tuple[str, ...] = (), other_warehouses: tuple[str, ...] = ()) -> Scenario:
    """The scenario in `db_url` and each of `replicas` (a PostgreSQL one); `other_warehouses` get only the
    entity list. Every warehouse is synced at the same moments: a first sync after a deletion is not tested
    here."""
    scenario_warehouses = [db_url, *replicas]
    schemas = build(build_dir)
    project_id = resolve_project(central, central.settings.project)
    scenario = Scenario(db_url, schemas, project_id)
    deploy_forms(central, project_id, built_forms(build_dir), {})
    sheet.write_text(SEED, encoding="utf-8")
    import_entities(central, project_id, "focal_points", sheet, "phone")
    sync(central, project_id, [*scenario_warehouses, *other_warehouses])  # the registry as imported
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as conn:
            scenario.uuids = dict(conn.execute(text("SELECT full_name, uuid FROM entities__focal_points")).all())
    finally:
        engine.dispose()
    u = scenario.uuids
    update = schemas["focal_point_update"]
    update_phone(central, project_id, update, u["Nguyễn Văn An"], 1, "+84 208 999 0001")
    update_phone(central, project_id, update, u["Trần Văn Cường"], 1, "+84 294 999 0003")
    server.exhaust_worker()
    update_phone(central, project_id, update, u["Trần Văn Cường"], 1, "+84 294 111 0003")  # stale: a conflict
    server.exhaust_worker()

    province, donor, ministry = (schemas[f] for f in ("province_consultation", "donor_consultation",
                                                      "ministry_consultation"))
    provincial = {"stakeholder_type": "province"}  # the form's calculate, as Collect writes it

    def picks(form: FormSchema, order: int, name: str, **answers: str) -> Interview:
        return consultation(form, order, {"respondent_name": name, "focal_point_listed": "yes",
                                          "focal_point": u[name], **answers})

    interviews = {
        "an_1": picks(province, 1, "Nguyễn Văn An", province="thai_nguyen", **provincial),
        "an_2": picks(province, 2, "Nguyễn Văn An", province="thai_nguyen", **provincial),
        "dung": picks(province, 3, "Phạm Thị Dung", province="soc_trang", **provincial),  # Dung is deleted below
        "hoa": consultation(province, 4, {"province": "an_giang", "respondent_name": "Đỗ Thị Hoa",
                                          "focal_point_listed": "no", "full_name": "Đỗ Thị Hoa",
                                          "agency": "Sở Tài chính An Giang", "position": "Kế toán trưởng",
                                          **provincial}, registers="Đỗ Thị Hoa – Sở Tài chính An Giang"),
        # quarantined (no respondent): Central still registers Khoa, but he counts as never consulted
        "khoa": consultation(province, 5, {"province": "an_giang", "focal_point_listed": "no",
                                           "full_name": "Bùi Văn Khoa", "agency": "Sở Công Thương An Giang",
                                           **provincial}, registers="Bùi Văn Khoa – Sở Công Thương An Giang"),
        "jane": picks(donor, 6, "Jane Smith"),
        # quarantined (no respondent): Hùng counts as never consulted
        "hung": consultation(donor, 7, {"focal_point_listed": "yes", "focal_point": u["Ngô Quốc Hùng"]}),
        "binh": picks(donor, 8, "Lê Thị Bình"),  # this consultation is deleted below
        "ministry": consultation(ministry, 9, {"respondent_name": "Hoàng Văn Em", "ministry": "mpi"}),
    }
    scenario.instances = {tag: i.instance_id for tag, i in interviews.items()}
    for interview in interviews.values():
        send(central, project_id, interview)
    server.exhaust_worker()
    assert central.client.entities.delete(uuid=u["Phạm Thị Dung"], entity_list_name="focal_points",
                                          project_id=project_id)
    for url in scenario_warehouses:
        load(url, schemas, build_dir, list(interviews.values()))
        engine = create_engine_for(url)
        try:
            with engine.begin() as conn:
                mark_deleted(conn, PROJECT_ID, "donor_consultation",
                             [(scenario.instances["binh"], "2004-12-01T00:00:00.000Z")])
        finally:
            engine.dispose()
    sync(central, project_id, [*scenario_warehouses, *other_warehouses])
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as conn:
            scenario.uuids = dict(conn.execute(text("SELECT full_name, uuid FROM entities__focal_points")).all())
    finally:
        engine.dispose()
    return scenario
