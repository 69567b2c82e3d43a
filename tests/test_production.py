"""Production mode end to end: a Prefect server, a `consult` process work pool with a worker,
the deployments of prefect.yaml, PostgreSQL and a Central (the sandbox) with two projects.

Everything runs as it would on the office's machines: `prefect server start` with its own home,
`prefect deploy` from the repository root, `prefect worker start --pool consult` with Central's
password in its environment only. The scheduler is off so that no half-hourly run can fire
during the test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

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
from consult.fieldwork import fieldwork
from consult.sandbox import SandboxServer
from consult.warehouse.database import create_engine_for

from .conftest import REPO, BuiltForms

pytestmark = pytest.mark.slow

PROJECTS = {"Province partners": "province_consultation", "Ministry partners": "ministry_consultation"}
"""Two ODK projects, each with both forms published and fieldwork for one of them."""
DEPLOYMENT = "sync-submissions/sync-submissions"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """Stop a child started in its own session, and whatever it started (flow runs, uvicorn)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        except ProcessLookupError:
            pass


@contextmanager
def _child(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield process
    finally:
        _stop(process)


def _prefect(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", "prefect", *args], env=env, cwd=REPO, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, f"prefect {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _wait_healthy(api_url: str, server: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"prefect server exited:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"prefect server not healthy after {timeout} s:\n{log.read_text()[-3000:]}")


def _two_project_central(server: SandboxServer, built: BuiltForms) -> tuple[CentralSettings, dict[str, int],
                                                                              dict[str, int]]:
    """Both forms published in both projects; each project's fieldwork is for its own form.
    Returns the settings, the project ids by name and the interviews sent by project name."""
    settings = CentralSettings(url=server.url, username=server.admin_email, password=server.admin_password,
                               project=next(iter(PROJECTS)), backoff=0.05)
    forms = sorted(PROJECTS.values())
    interviews = fieldwork({f: built.schema(f) for f in forms}, seed=11, scale=0.3, mistake_rate=0.1)
    ids, sent = {}, {}
    with CentralSession(settings) as central, collect_session() as session:
        for name, form_id in PROJECTS.items():
            project_id = ids[name] = resolve_project(central, name)
            deploy_forms(central, project_id, [BuiltForm.load(built.out_dir, f) for f in forms])
            (team,) = ensure_teams(central, project_id, [FieldTeam(name=f"Đội {name}", forms=forms)])
            mine = sorted((i for i in interviews if i.form_id == form_id), key=lambda i: i.submitted_order)
            for interview in mine:
                submit(session, settings.base_url, project_id, team.token, interview.xml, interview.attachments)
            sent[name] = len(mine)
    return settings, ids, sent


async def _trigger(api_url: str, parameters: dict) -> str:
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api=api_url) as client:
        deployment = await client.read_deployment_by_name(DEPLOYMENT)
        run = await client.create_flow_run_from_deployment(deployment.id, parameters=parameters)
        return str(run.id)


async def _wait_runs(api_url: str, run_ids: list[str], timeout: float) -> dict[str, tuple[str, float, list[dict]]]:
    """Each run's final state, seconds from creation to its end, and its `sync-summary` rows."""
    import json
    from uuid import UUID

    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    deadline = time.monotonic() + timeout
    done: dict[str, tuple[str, float, list[dict]]] = {}
    async with PrefectClient(api=api_url) as client:
        while len(done) < len(run_ids):
            assert time.monotonic() < deadline, f"flow runs not finished after {timeout} s: {set(run_ids) - set(done)}"
            for run_id in set(run_ids) - set(done):
                run = await client.read_flow_run(UUID(run_id))
                if run.state and run.state.is_final():
                    artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
                        key=ArtifactFilterKey(any_=["sync-summary"]),
                        flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(run_id)])))
                    rows = []
                    for artifact in artifacts:
                        data = artifact.data
                        rows += json.loads(data) if isinstance(data, str) else data
                    seconds = (run.state.timestamp - run.created).total_seconds()
                    done[run_id] = (run.state.type.value, seconds, rows)
            await asyncio.sleep(0.5)
    return done


def _loaded(db_url: str) -> dict[tuple[int, str], int]:
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT project_id, form_id, count(*) FROM submissions "
                                     "GROUP BY project_id, form_id")).all()
            duplicates = conn.execute(text("SELECT count(*) FROM (SELECT instance_id FROM submissions GROUP BY "
                                           "instance_id, project_id, form_id HAVING count(*) > 1) d")).scalar_one()
        assert duplicates == 0
        return {(r[0], r[1]): r[2] for r in rows}
    finally:
        engine.dispose()


@pytest.fixture
def second_db(request: pytest.FixtureRequest, postgres_url: str) -> Iterator[str]:
    admin: Engine = request.getfixturevalue("_postgres_admin")
    name = f"production_race_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" STRATEGY = FILE_COPY'))
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def test_worker_syncs_two_projects_and_concurrent_triggers_do_not_double_load(
        built_forms: BuiltForms, postgres_db_url: str, second_db: str, tmp_path: Path):
    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="prefect-home-", dir=tmp_path))
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CONSULT_"))}
    prefect_env = {**base, "PREFECT_HOME": str(home), "PREFECT_API_URL": api_url,
                   "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false",
                   "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false", "PREFECT_CLI_PROMPT": "false",
                   "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_LOGGING_LEVEL": "WARNING"}
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    reports = tmp_path / "reports"
    server_command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]

    with _child(server_command, prefect_env, server_log) as server, SandboxServer() as central:
        settings, project_ids, sent = _two_project_central(central, built_forms)
        _wait_healthy(api_url, server, server_log)
        _prefect("work-pool", "create", "consult", "--type", "process", env=prefect_env)
        _prefect("concurrency-limit", "create", "central-api", "2", env=prefect_env)
        _prefect("--no-prompt", "deploy", "--prefect-file", "prefect.yaml", "--name", "sync-submissions",
                 env=prefect_env)
        worker_env = {**prefect_env, "CONSULT_CENTRAL_URL": central.url, "CONSULT_CENTRAL_USER": central.admin_email,
                      "CONSULT_CENTRAL_PASSWORD": central.admin_password,
                      "CONSULT_CENTRAL_PROJECT": settings.project, "CONSULT_DATABASE_URL": postgres_db_url}
        worker_command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", "consult", "--type",
                          "process", "--limit", "4"]
        with _child(worker_command, worker_env, worker_log):
            ready = time.monotonic()
            common = {"build_dir": str(built_forms.out_dir), "reports_dir": str(reports), "page_size": 50}
            # one run: two projects, two forms (each project has both forms, fieldwork in one)
            both = asyncio.run(_trigger(api_url, {**common, "projects": list(PROJECTS),
                                                  "forms": sorted(PROJECTS.values())}))
            # two runs at once for the same form of the same project, into an empty database
            province, form = next(iter(PROJECTS.items()))
            race = {**common, "projects": [province], "forms": [form], "database": second_db}
            racers = [asyncio.run(_trigger(api_url, race)) for _ in range(2)]
            results = asyncio.run(_wait_runs(api_url, [both, *racers], timeout=75))
            finished = time.monotonic()

        for run_id, (state, _, _) in results.items():
            assert state == "COMPLETED", f"run {run_id} ended {state}:\n{worker_log.read_text()[-4000:]}"
        assert central.admin_password not in worker_log.read_text()

    loaded = _loaded(postgres_db_url)
    for name, form_id in PROJECTS.items():
        assert loaded[(project_ids[name], form_id)] == sent[name], (name, loaded)
    assert sum(loaded.values()) == sum(sent.values()), "nothing but the fieldwork sent"
    summaries = results[both][2]
    assert len(summaries) == 4, "two forms in each of two projects"

    raced = _loaded(second_db)
    assert raced == {(project_ids[province], form): sent[province]}, "one load, whatever the overlap"
    race_rows = [row for run_id in racers for row in results[run_id][2]]
    busy = [row for row in race_rows if row["busy"]]
    assert len(race_rows) == 2
    assert sum(row["new"] for row in race_rows) == sent[province], race_rows
    assert len(busy) <= 1

    seconds = {run_id: round(result[1], 1) for run_id, result in results.items()}
    print(f"\nproduction: setup {ready - started:.1f} s, triggers to last completion {finished - ready:.1f} s, "
          f"trigger→completion per run {sorted(seconds.values())} s, race busy={len(busy)}")
