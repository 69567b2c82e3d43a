"""A sandbox Central holding a round of fieldwork, as the enumerators sent it: shared by the sync,
flow and CLI tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from consult.central import (
    BuiltForm,
    CentralSession,
    CentralSettings,
    collect_session,
    deploy_forms,
    ensure_teams,
    resolve_project,
    submit,
)
from consult.central.teams import FieldTeam
from consult.fieldwork import Interview, fieldwork
from consult.sandbox import SandboxServer
from consult.sync import FormSync, SyncOptions, SyncSummary

from .conftest import FORM_IDS, BuiltForms

PROJECT = "ISG Consultations"


@dataclass
class Field:
    """A sandbox Central holding a round of fieldwork, as the enumerators sent it."""

    server: SandboxServer
    settings: CentralSettings
    project_id: int
    built: BuiltForms
    interviews: list[Interview]
    deleted: str
    """Deleted in Central after the first sync."""
    edited: str
    """Edited in Central before the first sync."""

    def sync(self, engine, form_id: str, **options) -> SyncSummary:
        with CentralSession(self.settings) as central:
            return FormSync(central, engine, self.project_id, self.built.schema(form_id),
                            SyncOptions(page_size=40, **options)).run()

    def env(self, db_url: str) -> dict[str, str]:
        return {**os.environ, "CONSULT_CENTRAL_URL": self.server.url, "CONSULT_CENTRAL_USER": self.server.admin_email,
                "CONSULT_CENTRAL_PASSWORD": self.server.admin_password, "CONSULT_CENTRAL_PROJECT": PROJECT,
                "CONSULT_DATABASE_URL": db_url}


def edit_in_central(central: CentralSession, project_id: int, interview: Interview) -> None:
    """An edit as a supervisor makes it in Central: a new version naming the old one."""
    new_id = "uuid:5e1f0000-0000-4000-8000-" + interview.instance_id[-12:]
    xml = (interview.xml.decode("utf-8")
           .replace(f"<instanceID>{interview.instance_id}</instanceID>",
                    f"<instanceID>{new_id}</instanceID><deprecatedID>{interview.instance_id}</deprecatedID>")
           .replace("<respondent_name>", "<respondent_name>ĐÃ SỬA "))
    central.request("PUT", f"projects/{project_id}/forms/{interview.form_id}/submissions/{interview.instance_id}",
                    data=xml.encode("utf-8"), headers={"Content-Type": "application/xml"})


@contextmanager
def field_sandbox(built_forms: BuiltForms) -> Iterator[Field]:
    with SandboxServer() as server:
        settings = CentralSettings(url=server.url, username=server.admin_email, password=server.admin_password,
                                   project=PROJECT, backoff=0.05)
        schemas = {form_id: built_forms.schema(form_id) for form_id in FORM_IDS}
        interviews = fieldwork(schemas, seed=7, scale=0.5, mistake_rate=0.1)
        with CentralSession(settings) as central:
            project_id = resolve_project(central, PROJECT)
            deploy_forms(central, project_id, [BuiltForm.load(built_forms.out_dir, f) for f in FORM_IDS])
            (team,) = ensure_teams(central, project_id, [FieldTeam(name="Đội kiểm thử", forms=list(FORM_IDS))])
            with collect_session() as session:
                for interview in sorted(interviews, key=lambda i: i.submitted_order):
                    submit(session, settings.base_url, project_id, team.token, interview.xml, interview.attachments)
            clean = [i for i in interviews if i.form_id == "province_consultation" and not i.mistake]
            deleted, edited = clean[0], clean[1]
            edit_in_central(central, project_id, edited)
        yield Field(server, settings, project_id, built_forms, interviews, deleted.instance_id, edited.instance_id)
