"""The sandbox over HTTP with step 26's forms: Central's CSV exports, its worker, assignment by role name.

The forms and submissions are the recorded ones (tests/central/contract); every expected value
below is what the real Central answered for them (26-22, 26-23, 26-36 … 26-40).
"""

from __future__ import annotations

import csv
import io
import sqlite3
import time
import zipfile
from collections.abc import Iterator

import pytest
import requests

from consult.sandbox import SandboxServer

from .admin import AdminProject
from .recorded import exchange, submitted_xml

PASSWORD = "step-26-password"
SPLIT = "?attachments=false&splitSelectMultiples=true"


class Project(AdminProject):
    """A fresh project for step 26's recorded forms."""

    def __init__(self, server: SandboxServer, name: str):
        super().__init__(server, name, PASSWORD)

    def zip(self, form_id: str, query: str = "?attachments=false") -> tuple[dict[str, list[list[str]]], str]:
        """Each CSV of the export, as rows, and the ETag."""
        response = self.call("GET", f"{self.form(form_id)}/submissions.csv.zip{query}")
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        tables = {n: list(csv.reader(io.StringIO(archive.read(n).decode()))) for n in archive.namelist()}
        return tables, response.headers["ETag"]


def server(tmp_path_factory: pytest.TempPathFactory, worker_interval: float) -> SandboxServer:
    return SandboxServer(data_dir=tmp_path_factory.mktemp("step26"), admin_password=PASSWORD,
                         worker_interval=worker_interval).start()


@pytest.fixture(scope="module")
def manual(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A sandbox whose worker runs only when asked (as the replay of the recording uses it)."""
    started = server(tmp_path_factory, 0)
    yield started
    started.stop()


NAMES_TYPES = [submitted_xml(p) for p in ("26-08", "26-09", "26-10")]


def column(table: list[list[str]], name: str) -> list[str]:
    at = table[0].index(name)
    return [row[at] for row in table[1:]]


def test_repeat_files_are_named_by_the_repeat_and_keys_follow_the_xml(manual: SandboxServer) -> None:
    project = Project(manual, "names and types")
    project.publish("names_types_test", *NAMES_TYPES)
    tables, _ = project.zip("names_types_test")
    assert list(tables) == ["names_types_test.csv", "names_types_test-household.csv",
                            "names_types_test-member.csv", "names_types_test-asset.csv"]
    newest = "uuid:232fcb8b-d332-4988-8de5-0d8b232888c0"
    asset = tables["names_types_test-asset.csv"]
    assert asset[0] == ["asset_name", "PARENT_KEY", "KEY"]
    household = f"{newest}/household[1]"
    assert asset[1] == ["Tài sản 0-0", household, f"{household}/hh_group/asset[1]"]
    assert len(asset) == 13 and len(tables["names_types_test-member.csv"]) == 13
    root = tables["names_types_test.csv"]
    # values as sent: geotrace latitude first, the accuracy as written, XML names in the header
    assert column(root, "q_geotrace")[0] == "21.0 105.8 0 0;21.01 105.81 12.5 3;21.02 105.83 0 0"
    assert column(root, "q_geopoint-Accuracy") == ["5.0"] * 3
    assert column(root, "tên") == ["Tên 2", "Tên 1", "Tên 0"]
    assert "q-hyphen" in root[0] and "g2-g2_count" in root[0]
    recorded = exchange("26-22")["response"]["body_summary"]["zip_members"]
    assert [m["first_3_lines"][0] for m in recorded] == [",".join(t[0]) for t in tables.values()]


def test_a_repeat_in_a_group_keeps_its_xml_name_in_the_file_and_the_key(manual: SandboxServer) -> None:
    project = Project(manual, "unicode names")
    project.publish("names_unicode_test", submitted_xml("26-29"))
    tables, _ = project.zip("names_unicode_test")
    instance = "uuid:2584c940-5e66-4124-a3c3-c42ad425dc44"
    assert tables["names_unicode_test-hộ-gia.đình.csv"][1:] == [
        ["Hộ số 1", instance, f"{instance}/nhóm/hộ-gia.đình[1]"],
        ["Hộ số 2", instance, f"{instance}/nhóm/hộ-gia.đình[2]"],
    ]
    fields = project.call("GET", project.form("names_unicode_test") + "/fields?odata=true").json()
    assert [f["path"] for f in fields if f["type"] == "repeat"] == ["/nh_m/h_gia_nh"]
    table = project.call("GET", project.form("names_unicode_test") + ".svc/Submissions.nh_m.h_gia_nh").json()
    assert [row["t_n_h_"] for row in table["value"]] == ["Hộ số 1", "Hộ số 2"]


def test_split_columns_appear_once_the_worker_has_run_under_the_same_etag(manual: SandboxServer) -> None:
    project = Project(manual, "split select multiples")
    project.publish("names_types_test", *NAMES_TYPES)
    before, etag = project.zip("names_types_test", SPLIT)
    assert not any("/" in name for name in before["names_types_test.csv"][0])  # 26-23, 26-37
    assert manual.exhaust_worker() >= 3
    after, same = project.zip("names_types_test", SPLIT)
    root = after["names_types_test.csv"]
    at = root[0].index("q_select_multiple")
    assert root[0][at:at + 3] == ["q_select_multiple", "q_select_multiple/blue", "q_select_multiple/red"]
    assert [row[at:at + 3] for row in root[1:]] == [["red blue", "1", "1"]] * 3  # 26-39
    assert same == etag  # 26-38: the ETag does not change when the split columns appear
    form = project.form("names_types_test")
    plain = project.call("GET", f"{form}/submissions.csv?splitSelectMultiples=true")
    assert plain.text.splitlines()[0] == exchange("26-40")["response"]["body"].splitlines()[0]
    assert project.zip("names_types_test")[0]["names_types_test.csv"][0] == before["names_types_test.csv"][0]


def test_an_edit_is_split_by_its_new_values_only(manual: SandboxServer) -> None:
    project = Project(manual, "split after an edit")
    first = NAMES_TYPES[0]
    project.publish("names_types_test", first)
    old_id = "uuid:f8ff57dd-6bc7-4ecb-a029-4518b7549696"
    edited = first.replace("<q_select_multiple>red blue</q_select_multiple>",
                           "<q_select_multiple>green</q_select_multiple>").replace(
        f"<meta><instanceID>{old_id}</instanceID>",
        f"<meta><deprecatedID>{old_id}</deprecatedID><instanceID>uuid:edited-1</instanceID>")
    project.call("PUT", f"{project.form('names_types_test')}/submissions/{old_id}", data=edited.encode(),
                  headers={"Content-Type": "application/xml"})
    manual.exhaust_worker()
    root = project.zip("names_types_test", SPLIT)[0]["names_types_test.csv"]
    assert [name for name in root[0] if "/" in name] == ["q_select_multiple/green"]
    assert column(root, "q_select_multiple/green") == ["1"]


def test_a_data_folder_from_before_the_worker_gets_its_split_columns(manual: SandboxServer) -> None:
    """Versions stored before values were noted at ingest: the worker reads their XML instead."""
    project = Project(manual, "older data folder")
    project.publish("names_types_test", NAMES_TYPES[1])
    assert manual.data_dir is not None
    with sqlite3.connect(manual.data_dir / "sandbox.sqlite3") as db:
        form = "SELECT id FROM forms WHERE project_id = ? AND xml_form_id = 'names_types_test'"
        db.execute(f"DELETE FROM form_field_values WHERE form_id = ({form})", (project.id,))
    manual.exhaust_worker()
    assert "q_select_multiple/blue" in header(project)


def header(project: Project) -> list[str]:
    return project.zip("names_types_test", SPLIT)[0]["names_types_test.csv"][0]


def test_the_worker_runs_by_itself(tmp_path_factory: pytest.TempPathFactory) -> None:
    running = server(tmp_path_factory, 0.2)
    try:
        project = Project(running, "worker loop")
        project.publish("names_types_test", NAMES_TYPES[0])
        deadline = time.monotonic() + 15
        while "q_select_multiple/red" not in header(project):
            assert time.monotonic() < deadline, "the worker never split the select_multiple"
            time.sleep(0.1)
    finally:
        running.stop()


def test_a_form_assignment_may_name_the_role(manual: SandboxServer) -> None:
    project = Project(manual, "assignment by role name")
    project.publish("names_unicode_test")
    user = project.call("POST", f"/v1/projects/{project.id}/app-users", json={"displayName": "phone"}).json()
    form = project.form("names_unicode_test")
    assert project.call("POST", f"{form}/assignments/app-user/{user['id']}").json() == {"success": True}
    assert {"actorId": user["id"], "roleId": 2} in project.call("GET", f"{form}/assignments").json()
    formlist = requests.get(f"{manual.url}/v1/key/{user['token']}/projects/{project.id}/formList",
                            headers={"X-OpenRosa-Version": "1.0"}, timeout=30)
    assert "<formID>names_unicode_test</formID>" in formlist.text
    assert project.call("DELETE", f"{form}/assignments/app-user/{user['id']}").json() == {"success": True}
    unknown = project.call("POST", f"{form}/assignments/no-such-role/{user['id']}", expect=404)
    assert unknown.json()["code"] == 404.1


TWINS = """<?xml version="1.0"?><h:html xmlns="http://www.w3.org/2002/xforms"
 xmlns:h="http://www.w3.org/1999/xhtml" xmlns:jr="http://openrosa.org/javarosa">
 <h:head><h:title>Twins</h:title><model>
 <instance><data id="twins" version="1"><a><visit jr:template=""><when/></visit></a>
 <b><visit jr:template=""><when/><tags/></visit></b><meta><instanceID/></meta></data></instance>
 <bind nodeset="/data/a/visit/when" type="date"/><bind nodeset="/data/b/visit/when" type="date"/>
 <bind nodeset="/data/b/visit/tags" type="string"/><bind nodeset="/data/meta/instanceID" type="string"/>
 </model></h:head><h:body><group ref="/data/a"><repeat nodeset="/data/a/visit">
 <input ref="/data/a/visit/when"/></repeat></group><group ref="/data/b"><repeat nodeset="/data/b/visit">
 <input ref="/data/b/visit/when"/>
 <select ref="/data/b/visit/tags"><item><label>x</label><value>x</value></item></select></repeat></group>
 </h:body></h:html>"""


def test_two_repeats_with_one_name_get_numbered_files_and_split_in_their_table(manual: SandboxServer) -> None:
    """Central's briefcase export: `<form>-visit~1.csv`, `~2` in form order; a select_multiple in a
    repeat is split in the repeat's own file."""
    project = Project(manual, "twin repeats")
    project.call("POST", f"/v1/projects/{project.id}/forms?publish=true", data=TWINS.encode(),
                 headers={"Content-Type": "application/xml"})
    xml = ('<data id="twins" version="1"><a><visit><when>2026-01-01</when></visit></a>'
           '<b><visit><when>2026-02-01</when><tags>x y</tags></visit>'
           '<visit><when>2026-03-01</when></visit></b><meta><instanceID>uuid:t1</instanceID></meta></data>')
    project.call("POST", f"{project.form('twins')}/submissions", data=xml.encode(),
                 headers={"Content-Type": "application/xml"})
    manual.exhaust_worker()
    tables, _ = project.zip("twins", SPLIT)
    assert list(tables) == ["twins.csv", "twins-visit~1.csv", "twins-visit~2.csv"]
    assert tables["twins-visit~1.csv"] == [["when", "PARENT_KEY", "KEY"],
                                           ["2026-01-01", "uuid:t1", "uuid:t1/a/visit[1]"]]
    assert tables["twins-visit~2.csv"] == [
        ["when", "tags", "tags/x", "tags/y", "PARENT_KEY", "KEY"],
        ["2026-02-01", "x y", "1", "1", "uuid:t1", "uuid:t1/b/visit[1]"],
        ["2026-03-01", "", "0", "0", "uuid:t1", "uuid:t1/b/visit[2]"],
    ]
