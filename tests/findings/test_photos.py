"""The report links the decision photos the sync (or `consult attachments`) downloaded, relative to the report."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.engine import Engine

from consult.attachments import PRESENT, attachments, ensure_attachments_table
from consult.findings import compute_findings, write_html, write_workbook
from consult.findings.model import FileLinks
from consult.forms import FormSchema
from consult.warehouse.tables import VALID, submissions

FORM = "focal_point_registration"


def test_the_focal_points_table_links_each_decision_photo_on_this_disk(engine: Engine,
                                                                     schemas: dict[str, FormSchema],
                                                                     tmp_path: Path) -> None:
    root, reports = tmp_path / "attachments", tmp_path / "reports"
    s = submissions.c
    with engine.connect() as conn:
        registrations = conn.execute(select(s.instance_id).where(
            s.form_id == FORM, s.validation_status == VALID, s.deleted_at.is_(None))).scalars().all()
    stored = {instance: f"{FORM}/{instance.replace(':', '_')}/quyết định.jpg" for instance in registrations}
    on_disk = dict(list(stored.items())[1:])  # the first one's file is not downloaded: no link for it
    for path in on_disk.values():
        (root / path).parent.mkdir(parents=True)
        (root / path).write_bytes(b"\xff\xd8\xff photo")
    ensure_attachments_table(engine)
    try:
        with engine.begin() as conn:
            conn.execute(attachments.insert(), [
                {"project_id": 1, "form_id": FORM, "instance_id": instance, "file_name": "quyết định.jpg",
                 "question": "decision_photo", "stored_path": path, "on_central": PRESENT,
                 "checked_at": datetime.now(UTC)} for instance, path in stored.items()])
        findings = compute_findings(engine, schemas, "vi", files=FileLinks(root, reports))
    finally:
        attachments.drop(engine)
    table = findings.table("focal_points")
    links = [link for link in table.frame["decision_photo"] if isinstance(link, str)]
    assert len(links) == len(on_disk) > 0
    assert all((reports / link).resolve().is_file() for link in links), "links are relative to the report"

    html = write_html(findings, reports / "findings-vi.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'<a href="(\.\./attachments/[^"]+)">quyết định\.jpg</a>', html)
    assert len(hrefs) == len(links) and all("%" in h for h in hrefs), "non-ASCII names are URL-quoted"
    book = load_workbook(write_workbook(findings, reports / "findings-vi.xlsx"))
    sheet = next(book[name] for name in book.sheetnames if name.endswith(table.sheet))
    hyperlinks = [c.hyperlink.target for row in sheet.iter_rows() for c in row if c.hyperlink]
    assert sorted(hyperlinks) == sorted(links)
