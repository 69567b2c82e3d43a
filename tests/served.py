"""Fieldwork as Central would serve it: each interview's XML through the sandbox's own conversion
into the OData row (`$expand=*`) a sync pulls, without a server or HTTP in between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from consult.fieldwork import Interview
from consult.sandbox.xform import XFormDefinition, odata_entities, parse_submission, system_metadata

SENT_FROM = datetime(2004, 9, 1, tzinfo=UTC)
"""When the first interview reached Central; each next one a minute later."""


def odata_rows(xform: Path, interviews: list[Interview], device_id: str = "collect:test") -> list[dict]:
    definition = XFormDefinition.parse(xform.read_bytes())
    rows = []
    for interview in interviews:
        parsed = parse_submission(interview.xml)
        sent = SENT_FROM + timedelta(minutes=interview.submitted_order)
        system = system_metadata(
            submission_date=sent.isoformat(timespec="milliseconds").replace("+00:00", "Z"), updated_at=None,
            submitter_id=5, submitter_name="Enumerators", attachments_present=len(interview.attachments),
            attachments_expected=len(parsed.attachment_names(definition)), review_state=None,
            device_id=device_id, edits=0, form_version=parsed.version or "", deleted_at=None)
        rows.append(odata_entities(definition, parsed, system, interview.instance_id).expanded)
    return rows
