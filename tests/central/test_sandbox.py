"""Behaviour of the sandbox beyond response shapes: the rules clients rely on.

Every test talks HTTP to a real sandbox process. Most share one server and make their own
project; the pyodk test drives the server with pyodk itself as an independent client.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from consult.sandbox import SandboxServer

FORM_ID = "sandbox_probe"
OPENROSA = {"X-OpenRosa-Version": "1.0"}
VIETNAMESE = "Nguyễn Thị Hoà — Sóc Trăng, Thanh Hoá: “ưu tiên” y tế"


def xform(form_id: str = FORM_ID, version: str = "1", media: str = "") -> str:
    """A small XForm with a group, a repeat, a geopoint and an image (and optional media)."""
    media_instance = f'<instance id="provinces" src="jr://file-csv/{media}"/>' if media else ""
    return f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms">
  <h:head><h:title>Sandbox probe</h:title>
    <model>
      <instance><data id="{form_id}" version="{version}">
        <name/><count/><location/><photo/><contact><phone/></contact>
        <items jr:template=""><label/></items>
        <meta><instanceID/><instanceName/></meta></data></instance>{media_instance}
      <bind nodeset="/data/name" type="string"/><bind nodeset="/data/count" type="int"/>
      <bind nodeset="/data/location" type="geopoint"/><bind nodeset="/data/photo" type="binary"/>
      <bind nodeset="/data/contact/phone" type="string"/><bind nodeset="/data/items/label" type="string"/>
      <bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>
    </model></h:head>
  <h:body><input ref="/data/name"/><input ref="/data/count"/><input ref="/data/location"/>
    <upload ref="/data/photo" mediatype="image/*"/>
    <group ref="/data/contact"><input ref="/data/contact/phone"/></group>
    <group ref="/data/items"><repeat nodeset="/data/items"><input ref="/data/items/label"/></repeat></group>
  </h:body></h:html>"""


def submission(
    instance_id: str,
    name: str = "A",
    count: int = 1,
    items: int = 1,
    photo: str = "",
    deprecated: str | None = None,
    form_id: str = FORM_ID,
    version: str = "1",
) -> str:
    entries = "".join(f"<items><label>item {i}</label></items>" for i in range(items))
    old = f"<orx:deprecatedID>{deprecated}</orx:deprecatedID>" if deprecated else ""
    return (
        f'<data xmlns:orx="http://openrosa.org/xforms" id="{form_id}" version="{version}">'
        f"<name>{name}</name><count>{count}</count><location>21.5 105.8 10 4</location>"
        f"<photo>{photo}</photo><contact><phone>+84 900</phone></contact>{entries}"
        f"<meta>{old}<instanceID>{instance_id}</instanceID><instanceName>{name}</instanceName></meta></data>"
    )


def new_id() -> str:
    return f"uuid:{uuid.uuid4()}"


class Admin:
    """A web user's view of one fresh project on the sandbox."""

    def __init__(self, server: SandboxServer):
        self.url = server.url
        token = requests.post(
            f"{self.url}/v1/sessions", json={"email": server.admin_email, "password": server.admin_password}
        ).json()["token"]
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.project = self.post("/v1/projects", json={"name": f"probe {uuid.uuid4()}"}).json()["id"]
        self.base = f"{self.url}/v1/projects/{self.project}"
        self.form = f"{self.base}/forms/{FORM_ID}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(path if path.startswith("http") else self.url + path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.http.post(path if path.startswith("http") else self.url + path, **kw)

    def publish(self, xml: str, publish: bool = True) -> requests.Response:
        return self.post(
            f"{self.base}/forms?publish={str(publish).lower()}",
            data=xml.encode(),
            headers={"Content-Type": "application/xml"},
        )

    def submit(self, xml: str) -> requests.Response:
        return self.post(
            f"{self.form}/submissions", data=xml.encode(), headers={"Content-Type": "application/xml"}
        )

    def odata(self, query: str = "", table: str = "Submissions") -> dict[str, Any]:
        response = self.get(f"{self.form}.svc/{table}{query}")
        assert response.status_code == 200, response.text
        return response.json()

    def app_user(self) -> str:
        """An app user assigned to the probe form; returns its OpenRosa base URL."""
        user = self.post(f"{self.base}/app-users", json={"displayName": "phone"}).json()
        assert self.post(f"{self.form}/assignments/2/{user['id']}").status_code == 200
        return f"{self.url}/v1/key/{user['token']}/projects/{self.project}"


def openrosa_post(key_url: str, xml: str, files: dict[str, bytes] | None = None) -> requests.Response:
    parts = [("xml_submission_file", ("submission.xml", xml.encode(), "text/xml"))]
    parts += [(name, (name, data, "image/jpeg")) for name, data in (files or {}).items()]
    return requests.post(f"{key_url}/submission?deviceID=test", files=parts, headers=OPENROSA)


@pytest.fixture
def admin(shared_sandbox: SandboxServer) -> Admin:
    """A fresh project with the probe form published, on the shared sandbox."""
    admin = Admin(shared_sandbox)
    assert admin.publish(xform()).status_code == 200
    return admin


def test_paging_follows_next_link_to_the_end_with_count_on_every_page(admin: Admin) -> None:
    ids = [new_id() for _ in range(23)]
    for i, instance_id in enumerate(ids):
        assert admin.submit(submission(instance_id, count=i, items=i % 3)).status_code == 200
    seen, pages = [], 0
    url: str | None = f"{admin.form}.svc/Submissions?$top=10&$count=true"
    while url:
        page = admin.get(url).json()
        pages += 1
        assert page["@odata.count"] == 23
        seen += [row["__id"] for row in page["value"]]
        url = page.get("@odata.nextLink")
        assert url is None or url.startswith(admin.url)  # absolute, from the configured domain
    assert pages == 3 and seen == list(reversed(ids))  # newest first, nothing twice

    repeat_rows, url = [], f"{admin.form}.svc/Submissions.items?$top=4&$count=true"
    while url:
        page = admin.get(url).json()
        assert page["@odata.count"] == sum(i % 3 for i in range(23))
        repeat_rows += page["value"]
        url = page.get("@odata.nextLink")
    assert len({row["__id"] for row in repeat_rows}) == sum(i % 3 for i in range(23))

    expanded = admin.odata("?$expand=*&$top=3")["value"]
    assert [len(row.get("items", [])) for row in expanded] == [22 % 3, 21 % 3, 20 % 3]
    assert all("__Submissions-id" not in item for row in expanded for item in row.get("items", []))


def test_filters_on_system_fields_only(admin: Admin) -> None:
    ids = [new_id() for _ in range(5)]
    for instance_id in ids:
        admin.submit(submission(instance_id))
    rows = admin.odata()["value"]
    middle = rows[2]["__system"]["submissionDate"]
    newer = admin.odata(f"?$filter=__system/submissionDate gt {middle}&$count=true")
    assert newer["@odata.count"] == 2
    admin.http.patch(f"{admin.form}/submissions/{ids[0]}", json={"reviewState": "approved"})
    received = admin.odata("?$filter=__system/reviewState eq null&$count=true")
    assert received["@odata.count"] == 4
    unsupported = admin.get(f"{admin.form}.svc/Submissions?$filter=name eq 'A'")
    assert unsupported.status_code == 501 and unsupported.json()["code"] == 501.5
    broken = admin.get(f"{admin.form}.svc/Submissions?$filter=name eq ")
    assert broken.status_code == 400 and broken.json()["code"] == 400.18


def test_deleted_submissions_are_hidden_unless_the_filter_names_deleted_at(admin: Admin) -> None:
    keep, gone = new_id(), new_id()
    admin.submit(submission(keep))
    admin.submit(submission(gone))
    assert admin.http.delete(f"{admin.form}/submissions/{gone}").json() == {"success": True}
    assert [s["instanceId"] for s in admin.get(f"{admin.form}/submissions").json()] == [keep]
    assert admin.odata("?$count=true")["@odata.count"] == 1
    deleted = admin.odata("?$filter=__system/deletedAt ne null")["value"]
    assert [r["__id"] for r in deleted] == [gone] and deleted[0]["__system"]["deletedAt"]
    assert admin.get(f"{admin.form}/submissions/{gone}").status_code == 404
    assert [s["instanceId"] for s in admin.get(f"{admin.form}/submissions?deleted=true").json()] == [gone]
    assert admin.post(f"{admin.form}/submissions/{gone}/restore").status_code == 200
    assert admin.odata("?$count=true")["@odata.count"] == 2


def test_identical_resend_is_201_and_completes_attachments_conflicting_is_409(admin: Admin) -> None:
    key_url = admin.app_user()
    instance_id = new_id()
    xml = submission(instance_id, photo="photo.jpg")
    assert openrosa_post(key_url, xml).status_code == 201
    listed = admin.get(f"{admin.form}/submissions/{instance_id}/attachments").json()
    assert listed == [{"name": "photo.jpg", "exists": False}]
    assert openrosa_post(key_url, xml, {"photo.jpg": b"\xff\xd8 photo"}).status_code == 201
    assert admin.get(f"{admin.form}/submissions/{instance_id}/attachments").json()[0]["exists"] is True
    photo = admin.get(f"{admin.form}/submissions/{instance_id}/attachments/photo.jpg")
    assert photo.content == b"\xff\xd8 photo" and photo.headers["content-type"] == "image/jpeg"
    conflict = openrosa_post(key_url, submission(instance_id, name="changed", photo="photo.jpg"))
    assert conflict.status_code == 409 and 'nature="error"' in conflict.text
    assert len(admin.get(f"{admin.form}/submissions").json()) == 1
    assert requests.get(f"{key_url}/formList").status_code == 400  # X-OpenRosa-Version required
    assert requests.get(key_url.replace("/key/", "/key/x") + "/formList", headers=OPENROSA).status_code == 401


def test_an_edit_keeps_the_logical_id_and_stale_edits_conflict(admin: Admin) -> None:
    first, second, third = new_id(), new_id(), new_id()
    admin.submit(submission(first, name="before", items=1))
    edited = admin.http.put(
        f"{admin.form}/submissions/{first}",
        data=submission(second, name="after", items=2, deprecated=first).encode(),
        headers={"Content-Type": "application/xml"},
    )
    assert edited.status_code == 200 and edited.json()["reviewState"] == "edited"
    row = admin.odata(f"('{first}')")["value"][0]
    assert row["__id"] == first and row["meta"]["instanceID"] == second
    assert row["name"] == "after" and row["__system"]["edits"] == 1
    assert len(admin.odata(f"('{first}')/items")["value"]) == 2
    stale = admin.http.put(
        f"{admin.form}/submissions/{first}",
        data=submission(third, deprecated=first).encode(),
        headers={"Content-Type": "application/xml"},
    )
    assert stale.status_code == 409 and stale.json()["code"] == 409.9
    moved = admin.get(f"{admin.form}/submissions/{second}", allow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"].endswith(f"/versions/{second}")
    versions = admin.get(f"{admin.form}/submissions/{first}/versions").json()
    assert [v["instanceId"] for v in versions] == [second, first]


def test_conditional_get_gives_304_until_the_data_change(admin: Admin) -> None:
    instance_id = new_id()
    admin.submit(submission(instance_id))
    for path in (f"{admin.form}.svc/Submissions?$top=2", f"{admin.form}/submissions"):
        first = admin.get(path)
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        again = admin.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        admin.http.patch(f"{admin.form}/submissions/{instance_id}", json={"reviewState": "hasIssues"})
        changed = admin.get(path, headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_publishing_with_missing_media_succeeds_and_the_manifest_is_empty(
    shared_sandbox: SandboxServer,
) -> None:
    admin = Admin(shared_sandbox)
    assert admin.publish(xform(media="provinces.csv")).status_code == 200
    assert admin.get(f"{admin.form}/attachments").json() == [
        {
            "name": "provinces.csv",
            "type": "file",
            "hash": None,
            "exists": False,
            "blobExists": False,
            "datasetExists": False,
        }
    ]
    key_url = admin.app_user()
    form_list = requests.get(f"{key_url}/formList", headers=OPENROSA).text
    assert "<manifestUrl>" in form_list
    manifest = requests.get(f"{key_url}/forms/{FORM_ID}/manifest", headers=OPENROSA).text
    assert "<mediaFile>" not in manifest

    assert admin.post(f"{admin.form}/draft").status_code == 200
    csv = "name,label\nsoc_trang,Sóc Trăng\n".encode()
    uploaded = admin.post(
        f"{admin.form}/draft/attachments/provinces.csv", data=csv, headers={"Content-Type": "text/csv"}
    )
    assert uploaded.json()["exists"] is True
    assert admin.post(f"{admin.form}/draft/attachments/other.csv", data=csv).status_code == 404
    assert admin.post(f"{admin.form}/draft/publish?version=1").status_code == 409  # version taken
    assert admin.post(f"{admin.form}/draft/publish?version=2").status_code == 200
    manifest = requests.get(f"{key_url}/forms/{FORM_ID}/manifest", headers=OPENROSA).text
    assert "<filename>provinces.csv</filename>" in manifest
    assert requests.get(f"{key_url}/forms/{FORM_ID}/attachments/provinces.csv").content == csv


def test_a_doctype_or_entity_is_refused_and_never_expanded(
    admin: Admin, shared_sandbox: SandboxServer
) -> None:
    instance_id = new_id()
    evil = (
        '<?xml version="1.0"?><!DOCTYPE data [<!ENTITY x SYSTEM "file:///etc/passwd">'
        '<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        + submission(instance_id, name="&x;&lol2;")
    )
    refused = admin.submit(evil)
    assert refused.status_code == 400
    key_url = admin.app_user()
    assert openrosa_post(key_url, evil).status_code == 400
    assert admin.get(f"{admin.form}/submissions").json() == []
    form = admin.publish(
        xform(form_id="evil_form").replace(
            '<?xml version="1.0"?>', '<?xml version="1.0"?><!DOCTYPE h:html [<!ENTITY e "boom">]>'
        )
    )
    assert form.status_code == 400
    assert "root:" not in (Path(shared_sandbox.log_path).read_text())


def test_attachment_names_cannot_escape_the_data_dir(admin: Admin, shared_sandbox: SandboxServer) -> None:
    assert shared_sandbox.data_dir is not None
    key_url = admin.app_user()
    name = "../../../escaped.jpg"
    instance_id = new_id()
    assert openrosa_post(key_url, submission(instance_id, photo=name), {name: b"not here"}).status_code == 201
    data_dir = Path(shared_sandbox.data_dir)
    assert not (data_dir.parent / "escaped.jpg").exists() and not list(data_dir.parent.rglob("escaped.jpg"))
    stored = admin.get(f"{admin.form}/submissions/{instance_id}/attachments").json()
    assert stored == [{"name": name, "exists": True}]
    fetched = admin.get(f"{admin.form}/submissions/{instance_id}/attachments/{quote(name, safe='')}")
    assert fetched.status_code == 200 and fetched.content == b"not here"
    stored_files = [p for p in data_dir.rglob("*") if p.is_file() and "blobs" in p.parts]
    assert stored_files and all(re.fullmatch("[0-9a-f]{64}", p.name) for p in stored_files)


def test_vietnamese_text_round_trips(admin: Admin) -> None:
    instance_id = new_id()
    key_url = admin.app_user()
    assert openrosa_post(key_url, submission(instance_id, name=VIETNAMESE)).status_code == 201
    assert admin.odata()["value"][0]["name"] == VIETNAMESE
    assert VIETNAMESE in admin.get(f"{admin.form}/submissions/{instance_id}.xml").text
    assert VIETNAMESE in admin.get(f"{admin.form}/submissions.csv").text
    comment = "Số điện thoại cần xác minh lại"
    admin.post(f"{admin.form}/submissions/{instance_id}/comments", json={"body": comment})
    assert admin.get(f"{admin.form}/submissions/{instance_id}/comments").json()[0]["body"] == comment


@pytest.fixture
def pyodk_config(sandbox: SandboxServer, tmp_path: Path) -> Iterator[Path]:
    config = tmp_path / "pyodk_config.toml"
    config.write_text(
        f'[central]\nbase_url = "{sandbox.url}"\nusername = "{sandbox.admin_email}"\n'
        f'password = "{sandbox.admin_password}"\ndefault_project_id = 1\n'
    )
    yield config


def test_pyodk_as_an_independent_client(sandbox: SandboxServer, pyodk_config: Path, tmp_path: Path) -> None:
    from pyodk.client import Client

    admin = Admin(sandbox)  # creates project 1, the default project of the config
    definition = tmp_path / f"{FORM_ID}.xml"
    definition.write_text(xform())
    with Client(config_path=pyodk_config, cache_path=tmp_path / "pyodk_cache.toml") as client:
        form = client.forms.create(definition=definition)
        assert form.xmlFormId == FORM_ID and form.projectId == admin.project
        assert [f.xmlFormId for f in client.forms.list()] == [FORM_ID]
        ids = [new_id() for _ in range(3)]
        for i, instance_id in enumerate(ids):
            created = client.submissions.create(
                xml=submission(instance_id, name=f"n{i}", items=i), form_id=FORM_ID
            )
            assert created.instanceId == instance_id
        table = client.submissions.get_table(form_id=FORM_ID, count=True, expand="*", top=2)
        assert table["@odata.count"] == 3 and len(table["value"]) == 2 and "@odata.nextLink" in table
        client.submissions.review(
            instance_id=ids[0], review_state="hasIssues", form_id=FORM_ID, comment="Số liệu cần kiểm tra"
        )
        reviewed = client.submissions.get(instance_id=ids[0], form_id=FORM_ID)
        assert reviewed.reviewState == "hasIssues"
        comments = client.submissions.list_comments(instance_id=ids[0], form_id=FORM_ID)
        assert [c.body for c in comments] == ["Số liệu cần kiểm tra"]
        issues = client.submissions.get_table(form_id=FORM_ID, filter="__system/reviewState eq 'hasIssues'")
        assert [row["__id"] for row in issues["value"]] == [ids[0]]


def test_data_survive_a_restart(tmp_path: Path) -> None:
    """The SQLite file and blobs in the data dir are the whole state: a new process sees it all."""
    with SandboxServer(data_dir=tmp_path, admin_password="restart-pass") as first:
        admin = Admin(first)
        admin.publish(xform())
        instance_id = new_id()
        admin.submit(submission(instance_id, name=VIETNAMESE))
    with SandboxServer(data_dir=tmp_path, admin_password="restart-pass") as second:
        again = Admin(second)
        rows = again.get(f"{second.url}/v1/projects/{admin.project}/forms/{FORM_ID}.svc/Submissions").json()
        assert [(r["__id"], r["name"]) for r in rows["value"]] == [(instance_id, VIETNAMESE)]
