"""Entity lists into the reporting database (SQLite and PostgreSQL), from the sandbox over HTTP."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from consult.central import CentralSession, deploy_forms, resolve_project
from consult.central.deploy import BuiltForm
from consult.cli import app
from consult.entities import import_entities
from consult.sandbox import SandboxServer
from consult.warehouse.database import create_engine_for
from consult.warehouse.entities import EntityError, sync_entity_lists, sync_project_entity_lists

from .conftest import PASSWORD
from .fieldwork import register, update_phone


def _rows(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_entities_versions_conflicts_deletions_and_errors_reach_the_warehouse(
        central: CentralSession, server: SandboxServer, entity_forms: list[BuiltForm], db_url: str,
        tmp_path: Path) -> None:
    project_id = resolve_project(central, central.settings.project)
    deploy_forms(central, project_id, entity_forms, {})
    _, minh = register(central, project_id, "Trần Văn Minh", "soc_trang", "Sở Tài chính Sóc Trăng", "+84 299 382 2222")
    bad_instance, _ = register(central, project_id, "Không Tên", "an_giang", label="")
    server.exhaust_worker()
    sheet = tmp_path / "seed.csv"
    sheet.write_text("label,full_name,province,phone\nĐặng Thu Hà - thanh_hoa,Đặng Thu Hà,thanh_hoa,+84 237 1\n"
                     "Võ Văn Tám - an_giang,Võ Văn Tám,an_giang,+84 296 2\n", encoding="utf-8")
    import_entities(central, project_id, "focal_points", sheet, "phone")
    engine = create_engine_for(db_url)
    try:
        (first,) = sync_entity_lists(central, engine, project_id)
        assert (first.list_name, first.pulled, first.new, first.versions, first.conflicts) == ("focal_points", 3, 3,
                                                                                               3, 0)
        assert [(e.form_id, e.instance_id, e.problem_code) for e in first.errors] == [
            ("focal_point_entity_test", bad_instance, "400.2")]
        assert _rows(engine, "SELECT label, full_name, phone, version, creator_name FROM entities__focal_points "
                             f"WHERE uuid = '{minh}'") == [("Trần Văn Minh - soc_trang", "Trần Văn Minh",
                                                            "+84 299 382 2222", 1, server.admin_email)]

        update_phone(central, project_id, minh, 1, "+84 299 999 0000")
        server.exhaust_worker()
        update_phone(central, project_id, minh, 1, "+84 299 111 1111")  # stale: applied, hard conflict
        server.exhaust_worker()
        (ha,) = [u for (u,) in _rows(engine, "SELECT uuid FROM entities__focal_points WHERE full_name = 'Đặng Thu Hà'")]
        assert central.client.entities.delete(uuid=ha, entity_list_name="focal_points", project_id=project_id)
        (second,) = sync_entity_lists(central, engine, project_id, ["focal_points"])
        assert (second.pulled, second.new, second.updated, second.deleted, second.conflicts) == (1, 0, 1, 1, 1)
        assert _rows(engine, "SELECT version, conflict, phone FROM entities__focal_points "
                             f"WHERE uuid = '{minh}'") == [(3, "hard", "+84 299 111 1111")]
        versions = _rows(engine, "SELECT version, source_form_id, data FROM entity_versions "
                                 f"WHERE uuid = '{minh}' ORDER BY version")
        assert [(v, form) for v, form, _ in versions] == [(1, "focal_point_entity_test"),
                                                         (2, "focal_point_update_test"),
                                                         (3, "focal_point_update_test")]
        assert json.loads(versions[1][2])["phone"] == "+84 299 999 0000"
        assert _rows(engine, "SELECT CASE WHEN deleted_at IS NULL THEN 'live' ELSE 'deleted' END "
                             f"FROM entities__focal_points WHERE uuid = '{ha}'") == [("deleted",)]
        fresh = create_engine_for(f"sqlite:///{tmp_path / 'fresh.db'}")
        try:  # a warehouse that first meets the list after the delete: the row, no versions to read
            (first_look,) = sync_entity_lists(central, fresh, project_id)
            assert (first_look.pulled, first_look.new, first_look.deleted, first_look.conflicts) == (2, 3, 1, 1)
            assert _rows(fresh, "SELECT deleted_at IS NOT NULL, label FROM entities__focal_points "
                                f"WHERE uuid = '{ha}'") == [(1, "Đặng Thu Hà - thanh_hoa")]
            assert _rows(fresh, f"SELECT count(*) FROM entity_versions WHERE uuid = '{ha}'") == [(0,)]
        finally:
            fresh.dispose()

        central.json("POST", f"projects/{project_id}/datasets/focal_points/entities/{ha}/restore")
        central.json("PATCH", f"projects/{project_id}/datasets/focal_points/entities/{minh}",
                     params={"resolve": "true", "baseVersion": "3"}, json={})
        (third,) = sync_entity_lists(central, engine, project_id)
        assert (third.restored, third.conflicts, third.deleted) == (1, 0, 0)
        assert _rows(engine, "SELECT count(*) FROM entities__focal_points WHERE deleted_at IS NULL") == [(3,)]
        assert _rows(engine, f"SELECT conflict FROM entities__focal_points WHERE uuid = '{minh}'") == [(None,)]
        assert third.errors == first.errors and isinstance(third.errors[0], EntityError)

        (quiet,) = sync_project_entity_lists(central.settings, project_id, db_url)
        assert (quiet.pulled, quiet.new, quiet.updated, quiet.versions) == (0, 0, 0, 0)
        assert (quiet.conflicts, len(quiet.errors)) == (0, 1)
    finally:
        engine.dispose()


def test_consult_entities_sync_prints_the_counts_and_the_failed_submissions(
        central: CentralSession, server: SandboxServer, entity_forms: list[BuiltForm], tmp_path: Path) -> None:
    project_id = resolve_project(central, central.settings.project)
    deploy_forms(central, project_id, entity_forms, {})
    register(central, project_id, "Lê Thị Thu", "tra_vinh", "Sở KH&ĐT Trà Vinh")
    bad_instance, _ = register(central, project_id, "Ai Đó", "tra_vinh", label="")
    server.exhaust_worker()
    env = {**os.environ, "CONSULT_CENTRAL_URL": server.url, "CONSULT_CENTRAL_USER": server.admin_email,
           "CONSULT_CENTRAL_PASSWORD": PASSWORD, "CONSULT_CENTRAL_PROJECT": str(project_id)}
    database = f"sqlite:///{tmp_path / 'reporting.db'}"
    result = CliRunner(env=env).invoke(app, ["entities", "sync", "--db", database])
    assert result.exit_code == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    cells = [line.split("│")[1:-1] for line in result.stdout.splitlines() if line.startswith("│")]
    assert [c.strip() for c in cells[-1]] == ["focal_points", "1", "0", "0", "0", "0", "1"]
    assert result.stderr.strip().startswith(f"focal_points: no entity from focal_point_entity_test {bad_instance}:")


def test_a_sync_run_brings_the_entity_lists_in_with_the_forms(
        central: CentralSession, server: SandboxServer, entity_forms: list[BuiltForm], entity_build: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`consult sync` (the run without a Prefect API) syncs the project's forms, then its entity lists, and
    says in `sync_runs` what it did, the submissions Central made no entity from included."""
    from consult.sync import LocalSteps, SyncRequest, run_sync

    project_id = resolve_project(central, central.settings.project)
    deploy_forms(central, project_id, entity_forms, {})
    register(central, project_id, "Lê Thị Thu", "tra_vinh", "Sở KH&ĐT Trà Vinh")
    register(central, project_id, "Ai Đó", "tra_vinh", label="")
    server.exhaust_worker()
    database = f"sqlite:///{tmp_path / 'reporting.db'}"
    for key, value in {"CONSULT_CENTRAL_URL": server.url, "CONSULT_CENTRAL_USER": server.admin_email,
                       "CONSULT_CENTRAL_PASSWORD": PASSWORD, "CONSULT_CENTRAL_PROJECT": str(project_id)}.items():
        monkeypatch.setenv(key, value)
    run_sync(SyncRequest.of(build_dir=entity_build, database=database, reports_dir=None), LocalSteps())
    engine = create_engine_for(database)
    try:
        assert _rows(engine, "SELECT full_name FROM entities__focal_points") == [("Lê Thị Thu",)]
        (summary,) = _rows(engine, "SELECT summary FROM sync_runs")[0]
    finally:
        engine.dispose()
    (entity_list,) = json.loads(summary)["entity_lists"]
    assert (entity_list["list"], entity_list["new"], entity_list["entity_errors"]) == ("focal_points", 1, 1)
    assert entity_list["versions"] == 1 and entity_list["seconds"] > 0  # where a run's time went


def test_the_per_entity_and_per_submission_requests_go_eight_at_a_time_in_order():
    """A first sync asks Central once per entity (versions) and per submission (audits): eight in flight
    at once, the answers in the order asked."""
    import threading

    from consult.warehouse.entities import CONCURRENT_REQUESTS, _concurrently

    together = threading.Barrier(CONCURRENT_REQUESTS, timeout=10)

    def fetch(n: int) -> int:
        together.wait()  # breaks (BrokenBarrierError) unless eight calls are in flight at once
        return n * n

    assert _concurrently(fetch, list(range(4 * CONCURRENT_REQUESTS))) == [n * n for n in range(4 * CONCURRENT_REQUESTS)]


def test_a_list_sync_reads_its_source_submissions_from_the_warehouse_and_skips_one_central_purged(
        central: CentralSession, server: SandboxServer, entity_forms: list[BuiltForm], db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync run loads the forms before their entity lists, so the list's sync takes the source form's
    submissions from the warehouse instead of listing all of them from Central at every sync; one the
    warehouse holds but Central purged since (its audits answer 404) has no outcome and stops nothing."""
    from datetime import UTC, datetime

    from consult.warehouse.tables import ensure_schema, submissions

    project_id = resolve_project(central, central.settings.project)
    deploy_forms(central, project_id, entity_forms, {})
    good, _ = register(central, project_id, "Trần Văn Minh", "soc_trang", "Sở Tài chính Sóc Trăng", "+84 299 1")
    bad, _ = register(central, project_id, "Không Tên", "an_giang", label="")
    server.exhaust_worker()
    engine = create_engine_for(db_url)
    try:
        ensure_schema(engine, [])
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(submissions.insert(), [
                {"project_id": project_id, "form_id": "focal_point_entity_test", "instance_id": instance_id,
                 "submission_date": now, "validation_status": "valid", "raw_json": "{}", "loaded_at": now, "edits": 0}
                for instance_id in (good, bad, "uuid:purged-since-the-warehouse-saw-it")])

        def listed(_service, form_id: str, **_kwargs) -> list:
            assert form_id != "focal_point_entity_test", "the warehouse holds this form: not listed from Central"
            return []  # the update form, which the warehouse does not hold, has no submissions here

        monkeypatch.setattr(type(central.client.submissions), "list", listed)
        (summary,) = sync_entity_lists(central, engine, project_id, ["focal_points"])
        assert [(e.instance_id, e.problem_code) for e in summary.errors] == [(bad, "400.2")]
        assert _rows(engine, "SELECT instance_id, outcome FROM entity_submissions ORDER BY outcome") == [
            (good, "entity"), (bad, "error")]
    finally:
        engine.dispose()


def test_a_submission_whose_answers_asked_nothing_of_the_list_costs_no_request(
        central: CentralSession, server: SandboxServer, entity_forms: list[BuiltForm], entity_build: Path,
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """focal_point_update_test updates an entity only when `${new_phone} != ''`. A submission without a
    new phone did nothing to the list, and its answers in the warehouse say so: its outcome is `none`
    at once, where its audits (one request per submission on a first sync) would have had to wait an
    hour to say the same. One with a new phone is still judged by what Central did."""
    from consult.forms.schema import FormSchema
    from consult.sync import FormSync, SyncOptions
    from consult.warehouse import entities

    project_id = resolve_project(central, central.settings.project)
    deploy_forms(central, project_id, entity_forms, {})
    _, minh = register(central, project_id, "Trần Văn Minh", "soc_trang", "Sở Tài chính Sóc Trăng", "+84 299 1")
    server.exhaust_worker()
    quiet = update_phone(central, project_id, minh, 1, "")
    changed = update_phone(central, project_id, minh, 1, "+84 299 2")
    server.exhaust_worker()
    schema = FormSchema.read(entity_build / "focal_point_update_test.schema.json")
    assert [(d.list_name, d.updates, d.update_if) for d in schema.entities] == [
        ("focal_points", True, "${new_phone} != ''")]
    engine = create_engine_for(db_url)
    try:
        FormSync(central, engine, project_id, schema, SyncOptions()).run()
        asked: list[str] = []
        audits = entities.submission_audits
        monkeypatch.setattr(entities, "submission_audits",
                            lambda c, p, form_id, instance_id: asked.append(instance_id) or audits(c, p, form_id,
                                                                                                  instance_id))
        sync_entity_lists(central, engine, project_id, ["focal_points"], {"focal_point_update_test": schema})
        assert quiet not in asked
        assert dict(_rows(engine, "SELECT instance_id, outcome FROM entity_submissions "
                                  "WHERE form_id = 'focal_point_update_test'")) == {quiet: "none", changed: "entity"}
    finally:
        engine.dispose()
