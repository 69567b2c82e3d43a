"""Submissions of the entity test forms, as ODK Collect sends them (the recorded XML, new ids)."""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape

from consult.central import CentralSession

HEAD = '<?xml version="1.0" ?><data id="{form}" version="2026120401">'


def register(central: CentralSession, project_id: int, full_name: str, province: str, agency: str = "",
             phone: str = "", label: str | None = None, entity_id: str | None = None) -> tuple[str, str]:
    """A focal_point_entity_test submission through REST; (instanceID, entity uuid)."""
    entity_id = entity_id or str(uuid.uuid4())
    label = f"{full_name} - {province}" if label is None else label
    body = (HEAD.format(form="focal_point_entity_test") +
            f"<full_name>{escape(full_name)}</full_name><province>{province}</province>"
            f"<agency>{escape(agency)}</agency><phone>{escape(phone)}</phone><meta>"
            f'<entity dataset="focal_points" create="1" id="{entity_id}"><label>{escape(label)}</label></entity>'
            f"<instanceID>uuid:{uuid.uuid4()}</instanceID></meta></data>")
    return _send(central, project_id, "focal_point_entity_test", body), entity_id


def update_phone(central: CentralSession, project_id: int, entity_id: str, base_version: int, phone: str) -> str:
    """A focal_point_update_test submission: the phone of `entity_id`, as of `base_version`; no phone
    makes the form's `update_if` (`${new_phone} != ''`) false, as Collect computes it."""
    update = "1" if phone else "0"
    body = (HEAD.format(form="focal_point_update_test") +
            f"<focal_point>{entity_id}</focal_point><new_phone>{escape(phone)}</new_phone><meta>"
            f'<entity dataset="focal_points" update="{update}" baseVersion="{base_version}" trunkVersion="" branchId="" '
            f'id="{entity_id}"/><instanceID>uuid:{uuid.uuid4()}</instanceID></meta></data>')
    return _send(central, project_id, "focal_point_update_test", body)


def _send(central: CentralSession, project_id: int, form_id: str, body: str) -> str:
    central.json("POST", f"projects/{project_id}/forms/{form_id}/submissions", data=body.encode("utf-8"),
                 headers={"Content-Type": "application/xml"})
    return body.split("<instanceID>")[1].split("</instanceID>")[0]
