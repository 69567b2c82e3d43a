"""Entity lists on the sandbox over HTTP: asynchronous creation, approval, conflicts, bulk, CSVs.

The forms and submissions are the recorded ones (tests/central/contract, steps 20–28); the
expected behaviour is what the real Central did with them (RECORDING.md, "What a client writer
must know about entities").
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest

from consult.sandbox import SandboxServer

from .admin import XML, AdminProject
from .recorded import submitted_xml

PASSWORD = "entities-password"
MINH = "82cb918e-ce55-44fd-bb05-189efb8c04e7"  # registered by 21-12, updated by 23-06 and 23-09


class Project(AdminProject):
    """A fresh project with the recorded focal-point forms' entity list at hand."""

    def __init__(self, server: SandboxServer, name: str):
        super().__init__(server, name, PASSWORD)
        self.list = f"/v1/projects/{self.id}/datasets/focal_points"

    def submit(self, form_id: str, exchange: str) -> None:
        self.call("POST", f"{self.form(form_id)}/submissions", data=submitted_xml(exchange).encode(), headers=XML)

    def review(self, form_id: str, exchange: str, state: str) -> None:
        instance = submitted_xml(exchange).split("<instanceID>")[1].split("</instanceID>")[0]
        self.call("PATCH", f"/v1/projects/{self.id}/forms/{form_id}/submissions/{instance}",
                  json={"reviewState": state})

    def entities(self) -> list[dict[str, Any]]:
        return self.call("GET", f"{self.list}/entities").json()

    def audits(self, form_id: str, exchange: str) -> list[str]:
        instance = submitted_xml(exchange).split("<instanceID>")[1].split("</instanceID>")[0]
        rows = self.call("GET", f"/v1/projects/{self.id}/forms/{form_id}/submissions/{instance}/audits").json()
        return [r["action"] for r in rows]


@pytest.fixture(scope="module")
def manual(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A sandbox whose worker runs only when a test asks (`exhaust_worker`)."""
    server = SandboxServer(data_dir=tmp_path_factory.mktemp("entities"), admin_password=PASSWORD,
                           worker_interval=0).start()
    yield server
    server.stop()


def test_a_submission_becomes_an_entity_only_when_the_worker_runs(manual: SandboxServer) -> None:
    project = Project(manual, "async")
    project.publish("focal_point_entity_test")
    project.submit("focal_point_entity_test", "21-12")
    project.call("GET", f"{project.list}/entities/{MINH}", expect=404)  # 404.1 until the worker ran
    assert project.entities() == []
    manual.exhaust_worker()
    entity = project.call("GET", f"{project.list}/entities/{MINH}").json()
    assert entity["currentVersion"]["data"] == {
        "full_name": "Trần Văn Minh", "province": "soc_trang", "agency": "Sở Tài chính Sóc Trăng",
        "phone": "+84 299 382 2222"}
    assert entity["currentVersion"]["label"] == "Trần Văn Minh - soc_trang"
    assert project.audits("focal_point_entity_test", "21-12") == ["entity.create", "submission.create"]


def test_the_worker_loop_makes_entities_by_itself(tmp_path: Any) -> None:
    with SandboxServer(data_dir=tmp_path, admin_password=PASSWORD, worker_interval=0.2) as server:
        project = Project(server, "loop")
        project.publish("focal_point_entity_test")
        project.submit("focal_point_entity_test", "21-12")
        deadline = time.monotonic() + 10
        while not project.entities() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [e["uuid"] for e in project.entities()] == [MINH]


def test_approval_required_waits_for_the_review_and_convert_takes_the_pending(manual: SandboxServer) -> None:
    project = Project(manual, "approval")
    project.publish("focal_point_entity_test")
    assert project.call("PATCH", project.list, json={"approvalRequired": True}).json()["approvalRequired"]
    project.submit("focal_point_entity_test", "21-02")
    project.submit("focal_point_entity_test", "21-08")
    manual.exhaust_worker()
    assert project.entities() == []  # nothing until approved (21-03)
    project.review("focal_point_entity_test", "21-02", "approved")
    manual.exhaust_worker()
    assert [e["currentVersion"]["label"] for e in project.entities()] == ["Nguyễn Thị Hoà - thai_nguyen"]
    refused = project.call("PATCH", project.list, expect=400, json={"approvalRequired": False}).json()
    assert refused == {"message": "There are 1 pending submissions", "code": 400.29, "details": {"count": 1}}
    project.call("PATCH", f"{project.list}?convert=true", json={"approvalRequired": False})
    manual.exhaust_worker()
    assert sorted(e["currentVersion"]["label"] for e in project.entities()) == [
        "Nguyễn Thị Hoà - thai_nguyen", "Phạm Quốc Bảo - tra_vinh"]


def test_a_stale_form_update_is_applied_with_a_hard_conflict(tmp_path: Any) -> None:
    with SandboxServer(data_dir=tmp_path, admin_password=PASSWORD, worker_interval=0) as manual:
        stale_update_conflict(manual)


def stale_update_conflict(manual: SandboxServer) -> None:
    """Entity uuids are unique on a server, as in Central: this story registers 21-12's again."""
    project = Project(manual, "conflict")
    project.publish("focal_point_entity_test")
    project.submit("focal_point_entity_test", "21-12")
    manual.exhaust_worker()
    project.publish("focal_point_update_test")  # its focal_points.csv is linked to the list at once
    attachments = project.call("GET", f"/v1/projects/{project.id}/forms/focal_point_update_test/attachments")
    assert attachments.json()[0]["datasetExists"] is True
    project.submit("focal_point_update_test", "23-06")  # baseVersion 1 → version 2
    manual.exhaust_worker()
    project.submit("focal_point_update_test", "23-09")  # baseVersion 1 again, the entity is at 2
    manual.exhaust_worker()
    entity = project.call("GET", f"{project.list}/entities/{MINH}").json()
    assert entity["conflict"] == "hard"
    assert entity["currentVersion"]["version"] == 3
    assert entity["currentVersion"]["conflictingProperties"] == ["phone"]
    assert entity["currentVersion"]["data"]["phone"] == "+84 299 111 1111"  # the stale update won
    project.call("PATCH", f"{project.list}/entities/{MINH}?baseVersion=2", expect=409, json={})
    resolved = project.call("PATCH", f"{project.list}/entities/{MINH}?resolve=true&baseVersion=3", json={}).json()
    assert resolved["conflict"] is None and resolved["currentVersion"]["version"] == 3
    served = project.call("GET", f"/v1/projects/{project.id}/forms/focal_point_update_test/attachments/focal_points.csv")
    rows = list(csv.DictReader(io.StringIO(served.text)))
    assert [(r["name"], r["__version"], r["phone"]) for r in rows] == [(MINH, "3", "+84 299 111 1111")]


def test_entity_errors_are_audits_on_accepted_submissions(manual: SandboxServer) -> None:
    project = Project(manual, "errors")
    project.publish("focal_point_entity_test")
    project.publish("focal_point_update_test")
    project.submit("focal_point_entity_test", "25-01")  # empty label
    project.submit("focal_point_update_test", "25-03")  # unknown entity
    manual.exhaust_worker()
    assert project.audits("focal_point_entity_test", "25-01") == ["entity.error", "submission.create"]
    assert project.audits("focal_point_update_test", "25-03") == ["entity.error", "submission.create"]
    assert project.entities() == []


def test_bulk_create_is_all_or_nothing_and_the_csv_etag_follows_changes(manual: SandboxServer) -> None:
    project = Project(manual, "bulk")
    project.publish("focal_point_entity_test")
    good = {"label": "Bùi Văn Lâm - an_giang", "data": {"full_name": "Bùi Văn Lâm", "phone": "+84 1"}}
    bad = {"label": "Bad", "data": {"email": "x@y"}}
    source = {"name": "seed.csv", "size": 2}
    refused = project.call("POST", f"{project.list}/entities", expect=400,
                           json={"entities": [good, bad], "source": source}).json()
    assert refused["code"] == 400.28
    assert project.entities() == []
    project.call("POST", f"{project.list}/entities", json={"entities": [good], "source": source})
    (entity,) = project.entities()
    extended = project.call("GET", f"/v1/projects/{project.id}/datasets", headers={"X-Extended-Metadata": "true"})
    assert [(d["name"], d["entities"], d["conflicts"]) for d in extended.json()] == [("focal_points", 1, 0)]
    first = project.call("GET", f"{project.list}/entities.csv")
    assert first.text.splitlines()[1].startswith(f"{entity['uuid']},Bùi Văn Lâm - an_giang,Bùi Văn Lâm,,,+84 1,")
    etag = first.headers["ETag"]
    assert project.call("GET", f"{project.list}/entities.csv", expect=304, headers={"If-None-Match": etag})
    project.call("PATCH", f"{project.list}/entities/{entity['uuid']}?baseVersion=1", json={"data": {"phone": "+84 2"}})
    again = project.call("GET", f"{project.list}/entities.csv", headers={"If-None-Match": etag})
    assert again.headers["ETag"] != etag and ",+84 2," in again.text


def test_each_repeat_row_makes_one_entity(manual: SandboxServer) -> None:
    project = Project(manual, "repeat")
    project.publish("focal_team_entity_test")
    project.submit("focal_team_entity_test", "28-06")
    manual.exhaust_worker()
    assert sorted(e["currentVersion"]["label"] for e in project.entities()) == [
        "Lâm Văn Mẫn - Sở NN&PTNT", "Thạch Sô Phên - UBND huyện Trần Đề", "Trần Thị Hồng - Sở KH&ĐT"]
    dataset = project.call("GET", project.list).json()
    assert dataset["sourceForms"] == [
        {"name": "Focal team entity test", "xmlFormId": "focal_team_entity_test", "repeatPath": "/member/"}]
    feed = project.call("GET", f"/v1/projects/{project.id}/datasets/focal_points.svc/Entities").json()["value"]
    assert {row["role"] for row in feed} == {"lead", "member"}


def test_pyodk_entity_calls(tmp_path: Any) -> None:
    """pyodk's `entity_lists` and `entities` (what `consult` uses) against the sandbox."""
    from pyodk.client import Client

    with SandboxServer(data_dir=tmp_path / "data", admin_password=PASSWORD, worker_interval=0) as server:
        project = Project(server, "pyodk")
        project.publish("focal_point_entity_test")
        config = tmp_path / "pyodk_config.toml"
        config.write_text(f'[central]\nbase_url = "{server.url}"\nusername = "{server.admin_email}"\n'
                          f'password = "{PASSWORD}"\ndefault_project_id = {project.id}\n')
        with Client(config_path=config, cache_path=tmp_path / "pyodk_cache.toml") as client:
            assert [d.name for d in client.entity_lists.list()] == ["focal_points"]
            made = client.entities.create(label="Đặng Thu Hà - thanh_hoa", entity_list_name="focal_points",
                                          data={"full_name": "Đặng Thu Hà", "province": "thanh_hoa"})
            assert made.currentVersion.version == 1
            client.entities.create_many(
                data=[{"label": "Võ Văn Tám - an_giang", "full_name": "Võ Văn Tám", "province": "an_giang"}],
                entity_list_name="focal_points", create_source="seed.csv")
            changed = client.entities.update(uuid=made.uuid, entity_list_name="focal_points", base_version=1,
                                             data={"phone": "+84 237 000 111"})
            assert changed.currentVersion.version == 2
            assert sorted(e.currentVersion.label for e in client.entities.list(entity_list_name="focal_points")) == [
                "Võ Văn Tám - an_giang", "Đặng Thu Hà - thanh_hoa"]
            table = client.entities.get_table(entity_list_name="focal_points", filter="__system/updatedAt ne null")
            assert [(r["__id"], r["phone"]) for r in table["value"]] == [(made.uuid, "+84 237 000 111")]
            assert client.entities.delete(uuid=made.uuid, entity_list_name="focal_points")
            assert len(client.entities.list(entity_list_name="focal_points")) == 1
