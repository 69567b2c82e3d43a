"""Built forms → a Central project: draft, attachments, check, publish. Idempotent.

Central publishes a form whose declared media were never uploaded, and enumerators then
get a province list with nothing in it; so every form's whole media list is checked in the
build before any draft is created, and every declared attachment is uploaded and checked
(`exists`) before the draft is published. Re-deploying an unchanged form does
nothing; a changed form under an already published version is refused, because Central
would keep the old definition under that version on every phone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pyodk._endpoints.form_draft_attachments import FormDraftAttachmentService
from pyodk._endpoints.form_drafts import FormDraftService

from consult.central.entities import (
    EntityListSettings,
    FormEntities,
    form_entities,
    is_property,
    remote_lists,
    set_approval,
)
from consult.central.session import CentralError, CentralSession, call_pyodk
from consult.forms.media import referenced_media
from consult.forms.schema import FormSchema


class DeployError(RuntimeError):
    """A form cannot be deployed as it is; the message says what to change."""


class DeployAction(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class BuiltForm:
    """One form as `consult forms build` wrote it."""

    schema: FormSchema
    xform_path: Path
    media_dir: Path

    @classmethod
    def load(cls, build_dir: Path, form_id: str) -> BuiltForm:
        return cls(FormSchema.read(build_dir / f"{form_id}.schema.json"), build_dir / f"{form_id}.xml",
                   build_dir / "media")

    @property
    def xml(self) -> bytes:
        return self.xform_path.read_bytes()

    @property
    def md5(self) -> str:
        """Central's `hash` of a form: the md5 of the XForm as uploaded."""
        return hashlib.md5(self.xml).hexdigest()


def built_forms(build_dir: Path) -> list[BuiltForm]:
    return [BuiltForm.load(build_dir, p.name.removesuffix(".schema.json"))
            for p in sorted(build_dir.glob("*.schema.json"))]


@dataclass(frozen=True)
class DeployedForm:
    form_id: str
    version: str
    action: DeployAction
    attachments: tuple[str, ...] = ()


def resolve_project(central: CentralSession, project: str, create: bool = True) -> int:
    """A project id from a name or an id; a missing named project is created."""
    if project.isdigit():
        try:
            central.json("GET", central.http.urlformat("projects/{pid}", pid=project))
        except CentralError as exc:
            if exc.status not in (403, 404):
                raise
            raise DeployError(f"no project with id {project} on {central.settings.base_url} for this user "
                              f"({_listed(central.json('GET', 'projects'))})") from None
        return int(project)
    existing_projects = central.json("GET", "projects")
    for existing in existing_projects:
        if existing["name"] == project:
            return int(existing["id"])
    if not create:
        raise DeployError(f"no project named {project!r} on {central.settings.base_url} "
                          f"({_listed(existing_projects)})")
    return int(central.json("POST", "projects", json={"name": project})["id"])


def _listed(projects: list[dict[str, Any]]) -> str:
    """What the user can pick from instead: "projects: ISG Consultations (id 1), Training (id 2)"."""
    names = ", ".join(f"{p['name']} (id {p['id']})" for p in projects)
    return f"projects: {names}" if names else "it has no project this user can see"


def _published(central: CentralSession, project_id: int, form_id: str) -> dict[str, Any] | None:
    try:
        return central.json("GET", central.http.urlformat("projects/{pid}/forms/{fid}", pid=project_id, fid=form_id))
    except CentralError as exc:
        if exc.status == 404:
            return None
        raise


def upload_draft_attachments(central: CentralSession, project_id: int, form: BuiltForm,
                             list_files: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Upload every file the draft declares, then insist that Central holds each of them.

    An entity list's `<list>.csv` is never uploaded: Central links it to the list as the draft is
    made (`datasetExists`, `hash` null), and an upload would unlink it, freezing the list on the
    phones. A draft made before its list existed is linked here."""
    path = central.http.urlformat("projects/{pid}/forms/{fid}/draft/attachments", pid=project_id,
                                  fid=form.schema.form_id)
    declared = central.json("GET", path)
    attachments = FormDraftAttachmentService(session=central.http, default_project_id=project_id,
                                             default_form_id=form.schema.form_id)
    for attachment in declared:
        if attachment.get("datasetExists"):
            continue
        if attachment["name"] in list_files:
            # pyodk's draft attachment service has no link call: raw PATCH, as Central's UI does.
            central.json("PATCH", f"{path}/{attachment['name']}", json={"dataset": True})
            continue
        local = form.media_dir / attachment["name"]
        if not local.is_file():
            raise DeployError(f"{form.schema.form_id} declares {attachment['name']!r}, which is not in "
                              f"{form.media_dir}: run `consult forms build`")
        call_pyodk(attachments.upload, file_path=local)
    missing = [a["name"] for a in central.json("GET", path) if not a.get("exists")]
    if missing:
        raise DeployError(f"{form.schema.form_id}: Central still lacks {', '.join(missing)} after upload; "
                          "not publishing a form whose lists would be empty on the phones")
    return tuple(a["name"] for a in declared)


def deploy_form(central: CentralSession, project_id: int, form: BuiltForm,
                list_files: frozenset[str] = frozenset()) -> DeployedForm:
    schema = form.schema
    current = _published(central, project_id, schema.form_id)
    drafts = FormDraftService(session=central.http, default_project_id=project_id, default_form_id=schema.form_id)
    if current is not None and current.get("publishedAt"):
        if current.get("version") == schema.version:
            if current.get("hash") == form.md5:
                return DeployedForm(schema.form_id, schema.version, DeployAction.UNCHANGED)
            raise DeployError(f"{schema.form_id}: version {schema.version} is already published with a different "
                              "definition; raise the version in the settings sheet and build again")
        if (current.get("version") or "") > schema.version:
            raise DeployError(f"{schema.form_id}: Central has version {current['version']}, newer than "
                              f"{schema.version} built here")
        action = DeployAction.UPDATED
        call_pyodk(drafts.create, definition=form.xml.decode("utf-8"))
    elif current is not None:
        action = DeployAction.CREATED
        call_pyodk(drafts.create, definition=form.xml.decode("utf-8"))
    else:
        action = DeployAction.CREATED
        central.json("POST", central.http.urlformat("projects/{pid}/forms", pid=project_id),
                     params={"publish": "false", "ignoreWarnings": "true"}, data=form.xml,
                     headers={"Content-Type": "application/xml"})
    attachments = upload_draft_attachments(central, project_id, form, list_files)
    call_pyodk(drafts.publish, version=schema.version)
    return DeployedForm(schema.form_id, schema.version, action, attachments)


class MissingMediaError(DeployError):
    """Some forms were not deployed because files they need are not in the build; the others were."""

    def __init__(self, missing: dict[str, list[str]], deployed: list[DeployedForm]):
        self.missing, self.deployed = missing, deployed
        super().__init__("\n".join(
            f"{form_id} not deployed: {', '.join(names)} missing from the build's media folder; put "
            f"{'it' if len(names) == 1 else 'them'} in forms/media/ and run `consult forms build`"
            for form_id, names in missing.items()))


def missing_media(form: BuiltForm) -> list[str]:
    """Files the form needs (its schema's list and every file its XForm refers to) that the build lacks."""
    needed = dict.fromkeys([*form.schema.media, *referenced_media(form.xml.decode("utf-8"))])
    return [name for name in needed if not (form.media_dir / name).is_file()]


def deploy_forms(central: CentralSession, project_id: int, forms: list[BuiltForm],
                 entity_lists: Mapping[str, EntityListSettings] | None = None) -> list[DeployedForm]:
    """Deploy every form whose media are all in the build; a form that lacks one is refused before
    any draft exists on Central (no orphan drafts), and MissingMediaError names each such form
    after the others have deployed.

    Forms that fill an entity list go first, so the list exists when a form that reads it gets its
    draft (Central links `<list>.csv` then); the lists' properties are checked against the forms'
    `save_to` before any draft; then each configured list gets its `approvalRequired` (a configured
    list that no form creates yet is left until one does)."""
    plan = EntityPlan.make(central, project_id, forms, entity_lists or {})
    missing = {form.schema.form_id: names for form in forms
               if (names := [n for n in missing_media(form) if n not in plan.list_files])}
    deployed = [deploy_form(central, project_id, form, plan.list_files) for form in plan.ordered(forms)
                if form.schema.form_id not in missing]
    present = remote_lists(central, project_id) if plan.settings else {}
    for setting in plan.settings.values():
        if setting.name in present:
            set_approval(central, project_id, setting)
    if missing:
        raise MissingMediaError(missing, deployed)
    return deployed


@dataclass(frozen=True)
class EntityPlan:
    """The entity lists of a deploy: which CSVs are lists, in which order the forms go."""

    forms: dict[str, FormEntities]
    lists: frozenset[str]
    settings: Mapping[str, EntityListSettings]

    @property
    def list_files(self) -> frozenset[str]:
        return frozenset(f"{name}.csv" for name in self.lists)

    @classmethod
    def make(cls, central: CentralSession, project_id: int, forms: list[BuiltForm],
             settings: Mapping[str, EntityListSettings]) -> EntityPlan:
        declared = {f.schema.form_id: form_entities(f.schema.form_id, f.xml.decode("utf-8")) for f in forms}
        remote = remote_lists(central, project_id)
        lists = frozenset(remote) | {n for d in declared.values() for n in d.sources}
        saved: dict[str, set[str]] = {name: set(r.properties) for name, r in remote.items()}
        for entities in declared.values():
            for name, props in entities.saves.items():
                saved.setdefault(name, set()).update(props)
        problems = [
            f"{entities.form_id}: field {read.field!r} reads property {read.prop!r} of the entity list "
            f"{read.list_name}, which no form saves: add save_to = {read.prop} to the form that registers "
            f"{read.list_name}, or change the field"
            for entities in declared.values() for read in dict.fromkeys(entities.reads)
            if read.list_name in lists and is_property(read.prop) and read.prop not in saved.get(read.list_name, ())]
        if problems:
            raise DeployError("\n".join(problems))
        return cls(declared, lists, settings)

    def ordered(self, forms: list[BuiltForm]) -> list[BuiltForm]:
        """Creating forms, then updating forms, then the forms that only read lists (stable). A form
        that creates into a list it also reads (a consultation registering a respondent missing from
        the list) goes after the forms that only create, so the list exists when its draft is made."""
        def rank(form: BuiltForm) -> int:
            entities = self.forms[form.schema.form_id]
            reads_own = any(f"{name}.csv" in entities.csv_files for name in entities.creates)
            return (1 if reads_own else 0) if entities.creates else 2 if entities.updates else 3
        return sorted(forms, key=rank)
