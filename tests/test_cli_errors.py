"""Every mistake of issue 14's list gives one line, exit 1 (2 for usage) and no traceback.

The commands run as the analyst runs them: `python -m consult.cli` in a subprocess, against a real
sandbox Central, a real HTTP server that is not Central, real SQLite and PostgreSQL URLs. Their
whole output is checked, not a fragment of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from consult.central.session import central_error
from consult.cli_errors import explain
from consult.output_dirs import MARKER, NotOurFolder, claim
from consult.sandbox import SandboxServer
from consult.warehouse.database import create_engine_for

from .conftest import FORM_IDS, REPO, BuiltForms

PROJECT = "ISG Consultations"


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    server = SandboxServer(data_dir=tmp_path_factory.mktemp("sandbox"), admin_email="admin@example.org",
                           admin_password="cli-test-password").start()
    yield server
    server.stop()


def consult(*args: str, cwd: Path = REPO, preexec_fn: Callable[[], None] | None = None,
            **env: str) -> tuple[int, str]:
    """Run `consult ARGS` as a user does; its exit code and its whole output (stdout and stderr)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CONSULT_", "PYODK_"))}
    environ.update(COLUMNS="80", PYTHONPATH=os.pathsep.join(sys.path), **env)
    done = subprocess.run([sys.executable, "-m", "consult.cli", *args], cwd=cwd, env=environ, preexec_fn=preexec_fn,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    return done.returncode, done.stdout


def one_line(output: str) -> str:
    assert "Traceback" not in output, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


def central_env(server: SandboxServer, **changes: str) -> dict[str, str]:
    return {"CONSULT_CENTRAL_URL": server.url, "CONSULT_CENTRAL_USER": server.admin_email,
            "CONSULT_CENTRAL_PASSWORD": server.admin_password, "CONSULT_CENTRAL_PROJECT": PROJECT} | changes


def prefect_env() -> dict[str, str]:
    """The session's Prefect API, so a flow run in the subprocess does not start a server of its own."""
    from prefect.settings import PREFECT_API_URL

    return {"PREFECT_API_URL": str(PREFECT_API_URL.value())}


# --- Central -------------------------------------------------------------------------------------

def test_a_mistyped_project_name_says_which_projects_exist(prefect_api, central: SandboxServer,
                                                           built_forms: BuiltForms, tmp_path: Path) -> None:
    code, _ = consult("deploy", "--build-dir", str(built_forms.out_dir), **central_env(central))
    assert code == 0
    code, output = consult("sync", "--project", "ISG Consultation", "--build-dir", str(built_forms.out_dir),
                           "--db", f"sqlite:///{tmp_path / 'r.db'}", "--reports", str(tmp_path / "reports"),
                           **central_env(central), **prefect_env())
    line = one_line(output)
    assert code == 1
    assert f"no project named 'ISG Consultation' on {central.url}" in line
    assert f"(projects: {PROJECT} (id " in line


def test_a_wrong_password_in_the_sync_flow_is_said_once(prefect_api, central: SandboxServer,
                                                        built_forms: BuiltForms, tmp_path: Path) -> None:
    code, output = consult("sync", "--build-dir", str(built_forms.out_dir), "--db", f"sqlite:///{tmp_path / 'r.db'}",
                           "--reports", str(tmp_path / "reports"), **prefect_env(),
                           **central_env(central, CONSULT_CENTRAL_PASSWORD="not-the-password"))
    line = one_line(output)
    assert code == 1 and "refused the login" in line and "not-the-password" not in line


def test_a_wrong_password_is_a_refused_login_not_no_response(central: SandboxServer,
                                                            built_forms: BuiltForms) -> None:
    code, output = consult("deploy", "--build-dir", str(built_forms.out_dir),
                           **central_env(central, CONSULT_CENTRAL_PASSWORD="not-the-password"))
    line = one_line(output)
    assert code == 1 and "refused the login" in line and "HTTP 401" in line
    assert "no response" not in line and "not-the-password" not in line


def test_a_wrong_project_id_says_which_id_and_which_exist(central: SandboxServer, built_forms: BuiltForms) -> None:
    assert consult("deploy", "--build-dir", str(built_forms.out_dir), **central_env(central))[0] == 0
    code, output = consult("deploy", "--build-dir", str(built_forms.out_dir), "--project", "9999",
                           **central_env(central))
    line = one_line(output)
    assert code == 1 and "no project with id 9999" in line and f"(projects: {PROJECT} (id " in line


def test_a_server_that_is_down_is_said_once(built_forms: BuiltForms, unused_port: int) -> None:
    code, output = consult("deploy", "--build-dir", str(built_forms.out_dir),
                           CONSULT_CENTRAL_URL=f"http://127.0.0.1:{unused_port}", CONSULT_CENTRAL_USER="a@b.org",
                           CONSULT_CENTRAL_PASSWORD="x")
    line = one_line(output)
    assert code == 1 and line.startswith("cannot reach ODK Central") and f":{unused_port}/" in line


def test_a_prefect_server_that_is_down_is_named(built_forms: BuiltForms, tmp_path: Path, unused_port: int) -> None:
    code, output = consult("sync", "--build-dir", str(built_forms.out_dir), "--db", f"sqlite:///{tmp_path / 'r.db'}",
                           "--reports", str(tmp_path / "reports"), CONSULT_CENTRAL_URL="http://127.0.0.1:9",
                           CONSULT_CENTRAL_USER="a@b.org", CONSULT_CENTRAL_PASSWORD="x",
                           PREFECT_API_URL=f"http://127.0.0.1:{unused_port}/api")
    line = one_line(output)
    assert code == 1 and f"cannot reach the Prefect API at http://127.0.0.1:{unused_port}/api" in line


def test_a_url_without_scheme_is_refused_before_any_request(built_forms: BuiltForms,
                                                            not_central: NotCentral) -> None:
    code, output = consult("deploy", "--build-dir", str(built_forms.out_dir),
                           CONSULT_CENTRAL_URL=not_central.url.removeprefix("http://"),
                           CONSULT_CENTRAL_USER="a@b.org", CONSULT_CENTRAL_PASSWORD="x")
    line = one_line(output)
    assert code == 1 and "has no scheme" in line and "e.g. https://127.0.0.1:" in line
    assert not_central.requests == [], "refused at once, not retried"


def test_an_unreadable_pyodk_config_names_the_file(built_forms: BuiltForms, tmp_path: Path) -> None:
    config = tmp_path / "pyodk_config.toml"
    config.write_text("[central\nbase_url = 'https://central.example.org'\n", encoding="utf-8")
    code, output = consult("deploy", "--build-dir", str(built_forms.out_dir), "--central-config", str(config))
    line = one_line(output)
    assert code == 1 and f"cannot read the Central config file {config}" in line


def test_a_proxy_answering_html_is_named(built_forms: BuiltForms, not_central: NotCentral) -> None:
    not_central.answer = (200, "text/html", b"<html><body>Sign in to the office network</body></html>")
    code, output = consult("deploy", "--build-dir", str(built_forms.out_dir), CONSULT_CENTRAL_URL=not_central.url,
                           CONSULT_CENTRAL_USER="a@b.org", CONSULT_CENTRAL_PASSWORD="x")
    line = one_line(output)
    assert code == 1 and "HTML page from a proxy" in line and "JSONDecodeError" not in line


def test_a_central_without_the_api_call_is_a_version_question(built_forms: BuiltForms,
                                                              not_central: NotCentral) -> None:
    not_central.answer = (404, "text/plain", b"Cannot POST /v1/sessions")
    code, output = consult("deploy", "--build-dir", str(built_forms.out_dir), CONSULT_CENTRAL_URL=not_central.url,
                           CONSULT_CENTRAL_USER="a@b.org", CONSULT_CENTRAL_PASSWORD="x")
    line = one_line(output)
    assert code == 1 and "does not know this API call" in line and "of a version that has it" in line


@pytest.mark.parametrize("body, said", [
    (b'{"unexpected": true}', "answered without a session token"),
    (b'{"token": 5}', "not in the shape ODK Central's API has (TypeError"),
    (b'{"token": "abc", "expiresAt": "2030-01-01T00:00:00Z"}', "not in the shape ODK Central's API has (TypeError"),
])
@pytest.mark.parametrize("command", ["deploy", "sync"])
def test_json_in_a_shape_central_never_sends_is_one_line(built_forms: BuiltForms, not_central: NotCentral,
                                                          tmp_path: Path, command: str, body: bytes, said: str) -> None:
    """Another program on the URL answers JSON: each call is 200 with this body, so the login, the project
    list and the form list all read something Central never sends."""
    not_central.answer = (200, "application/json", body)
    extra = ["--db", f"sqlite:///{tmp_path / 'r.db'}", "--no-attachments"] if command == "sync" else []
    code, output = consult(command, "--build-dir", str(built_forms.out_dir), *extra, CONSULT_CENTRAL_URL=not_central.url,
                           CONSULT_CENTRAL_USER="a@b.org", CONSULT_CENTRAL_PASSWORD="x")
    line = one_line(output)
    assert code == 1 and said in line and "Traceback" not in output and "CONSULT_CENTRAL_URL" in line, output


def test_an_expired_session_says_so(central: SandboxServer) -> None:
    """A real 401 from Central for a session token it no longer accepts."""
    response = requests.get(f"{central.url}/v1/projects", headers={"Authorization": "Bearer expired-token"},
                            timeout=10)
    assert response.status_code == 401
    explained = explain(central_error(response))
    assert explained is not None
    message, code = explained
    assert code == 1 and "no longer accepts this session" in message and "\n" not in message


# --- the reporting database ----------------------------------------------------------------------

@pytest.mark.parametrize("url, said", [
    ("notaurl", "not a database URL"),
    ("postgresql://nonexistent.invalid/x", "cannot use the reporting database"),
    ("sqlite+pysqlcipher:///reporting.db", "the database driver 'pysqlcipher3' is not installed"),
    ("mysql://db.example.org/consult", "unsupported reporting database mysql://"),
])
def test_a_database_url_that_cannot_work_is_said_before_the_sync_starts(url: str, said: str, tmp_path: Path,
                                                                         built_forms: BuiltForms) -> None:
    code, output = consult("sync", "--db", url, "--build-dir", str(built_forms.out_dir), "--reports",
                           str(tmp_path / "reports"), CONSULT_CENTRAL_URL="http://127.0.0.1:9",
                           CONSULT_CENTRAL_USER="a@b.org", CONSULT_CENTRAL_PASSWORD="x")
    assert code == 1 and said in one_line(output)
    assert not (tmp_path / "reports").exists(), "nothing written before the mistake is found"


def test_a_sync_on_a_full_disk_is_one_line(prefect_api, central: SandboxServer, built_forms: BuiltForms,
                                           tmp_path: Path) -> None:
    """The sync's process may write no file beyond 64 KB (RLIMIT_FSIZE), as on a disk that fills up while
    the reporting database is made (SQLite then says "disk I/O error"; on a full disk, "database or disk
    is full": the test below); the session's Prefect API runs in its own process, unlimited."""
    import resource
    import signal

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    assert consult("deploy", "--build-dir", str(built_forms.out_dir), **central_env(central))[0] == 0
    code, output = consult("sync", "--build-dir", str(built_forms.out_dir), "--db", f"sqlite:///{tmp_path / 'r.db'}",
                           "--reports", str(tmp_path / "reports"), preexec_fn=full_disk, **central_env(central),
                           **prefect_env())
    line = one_line(output)
    assert code == 1 and "the reporting database could not be written (disk I/O error)" in line
    assert "check that its disk is not full" in line


def test_a_full_disk_under_the_database_says_free_some_space(tmp_path: Path) -> None:
    """SQLite's own SQLITE_FULL, the error a full disk gives, from a database capped at its size."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'full.db'}")
    with pytest.raises(OperationalError) as raised, engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x TEXT)"))
        pages = conn.execute(text("PRAGMA page_count")).scalar()
        conn.execute(text(f"PRAGMA max_page_count = {pages + 1}"))
        conn.execute(text("INSERT INTO t SELECT hex(randomblob(4000)) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3)"))
    engine.dispose()
    explained = explain(raised.value)
    assert explained is not None and explained[1] == 1
    assert "free some disk space" in explained[0] and "database or disk is full" in explained[0]


# --- files and folders ---------------------------------------------------------------------------

@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs Linux's /sys, where no one may create a folder")
def test_an_output_folder_that_cannot_be_made_is_one_line() -> None:
    code, output = consult("forms", "build", "--out", "/sys/forms")
    line = one_line(output)
    assert code == 1 and "/sys/forms" in line and "choose a place you may write to" in line


def test_an_unknown_report_language_is_refused_before_the_demo_runs(tmp_path: Path) -> None:
    code, output = consult("demo", "--lang", "fr", "--workdir", str(tmp_path / "demo"))
    assert code == 2 and one_line(output) == "--lang must be one of vi, en, not 'fr'"
    assert not (tmp_path / "demo").exists()


def test_the_demo_outside_the_project_folder_says_where_to_run_it(tmp_path: Path) -> None:
    code, output = consult("demo", cwd=tmp_path)
    line = one_line(output)
    assert code == 1 and "run `consult demo` in the project's folder" in line
    assert list(tmp_path.iterdir()) == [], "nothing made where the user stood"


def test_the_demo_refuses_a_folder_it_did_not_make_and_leaves_it_alone(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / ".git").mkdir(parents=True)
    (checkout / "notes.txt").write_text("mine", encoding="utf-8")
    code, output = consult("demo", "--workdir", ".", "--forms-dir", str(REPO / "forms"), cwd=checkout)
    line = one_line(output)
    assert code == 1 and "--workdir . is not empty and was not made by consult" in line
    assert sorted(p.name for p in checkout.iterdir()) == [".git", "notes.txt"]
    assert (checkout / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("command", [["forms", "build", "--out"], ["report", "--out"], ["teams", "--out"]])
def test_every_output_option_refuses_a_folder_of_the_user(command: list[str], tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_bytes(b"years of work")
    code, output = consult(*command, str(mine), CONSULT_CENTRAL_URL="http://127.0.0.1:9",
                           CONSULT_CENTRAL_USER="a@b.org", CONSULT_CENTRAL_PASSWORD="x")
    assert code == 1 and "is not empty and was not made by consult" in one_line(output)
    assert [p.name for p in mine.iterdir()] == ["thesis.docx"]


def test_a_command_that_fails_before_writing_leaves_no_folder_behind(tmp_path: Path, unused_port: int) -> None:
    code, output = consult("report", "--db", f"sqlite:///{tmp_path / 'none.db'}", "--out", str(tmp_path / "out"))
    assert code == 1 and "run `consult sync` first" in one_line(output)
    code, output = consult("teams", "--out", str(tmp_path / "teams"),
                           CONSULT_CENTRAL_URL=f"http://127.0.0.1:{unused_port}", CONSULT_CENTRAL_USER="a@b.org",
                           CONSULT_CENTRAL_PASSWORD="x")
    assert code == 1 and "cannot reach ODK Central" in one_line(output)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_a_command_made_is_marked_and_reused(tmp_path: Path) -> None:
    out = tmp_path / "forms"
    for _ in range(2):
        code, output = consult("forms", "build", "--out", str(out))
        assert code == 0, output
    assert (out / MARKER).is_file() and (out / "province_consultation.xml").is_file()


def test_debug_keeps_the_traceback(built_forms: BuiltForms) -> None:
    code, output = consult("--debug", "sync", "--db", "notaurl", "--build-dir", str(built_forms.out_dir),
                           CONSULT_CENTRAL_URL="http://127.0.0.1:9", CONSULT_CENTRAL_USER="a@b.org",
                           CONSULT_CENTRAL_PASSWORD="x")
    assert code == 1 and "Traceback" in output and "ArgumentError" in output


# --- output folders: reused only when consult made them ---------------------------------------------

def test_a_folder_consult_made_is_reused_and_the_demo_may_empty_it(tmp_path: Path) -> None:
    made = claim(tmp_path / "new" / "out", option="--out")
    assert (made / MARKER).is_file()
    (made / "findings-vi.html").write_text("last run", encoding="utf-8")
    assert claim(made, option="--out") == made and (made / "findings-vi.html").is_file(), "reused, not emptied"
    claim(made, option="--workdir", empty=True)
    assert sorted(p.name for p in made.iterdir()) == [MARKER], "emptied because consult made it"
    empty = tmp_path / "empty"
    empty.mkdir()
    claim(empty, option="--out", empty=True)
    assert (empty / MARKER).is_file(), "an empty folder is adopted"


def test_a_folder_of_the_user_is_never_emptied(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("x", encoding="utf-8")
    with pytest.raises(NotOurFolder, match="is not empty and was not made by consult"):
        claim(tmp_path, option="--workdir", empty=True)
    assert [p.name for p in tmp_path.iterdir()] == ["data.csv"]
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(NotOurFolder, match="is a file"):
        claim(tmp_path / "file", option="--out")


# --- a narrow terminal ---------------------------------------------------------------------------

def test_the_sync_summary_fits_80_columns_without_stray_log_lines(prefect_api, central: SandboxServer,
                                                                 built_forms: BuiltForms, tmp_path: Path) -> None:
    assert consult("deploy", "--build-dir", str(built_forms.out_dir), **central_env(central))[0] == 0
    code, output = consult("sync", "--build-dir", str(built_forms.out_dir), "--db", f"sqlite:///{tmp_path / 'r.db'}",
                           "--reports", str(tmp_path / "reports"), "--attachments-dir", str(tmp_path / "files"),
                           **central_env(central), **prefect_env())
    assert code == 0, output
    assert "great_expectations" not in output and "Created temporary directory" not in output
    lines = output.splitlines()
    assert max(map(len, lines)) <= 80, output
    for form_id in FORM_IDS:
        assert any(line.strip().endswith(form_id) for line in lines), output


def test_many_forms_still_fit_80_columns() -> None:
    from rich.console import Console

    from consult import cli
    from consult.sync import SyncSummary

    summaries = [SyncSummary(project_id=1, form_id=f"{form_id}_{n}", pulled=123456, new=120000, valid=119000,
                             quarantined=1000, written_back=1000, seconds=312.5, not_modified=n % 2 == 0)
                 for n in range(8) for form_id in FORM_IDS]
    console, cli.console = cli.console, Console(width=80, record=True)
    try:
        cli.console.print(cli._sync_table(summaries))
        text_out = cli.console.export_text()
    finally:
        cli.console = console
    assert max(map(len, text_out.splitlines())) <= 80
    assert "workshop_evaluation_7" in text_out and "123456" in text_out and "…" not in text_out


def test_the_build_summary_fits_80_columns_with_every_form_id_whole(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from consult.cli import app

    result = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["forms", "build", "--out", str(tmp_path / "forms")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines if not line.startswith("XForms and FormSchemas written")) <= 80
    for form_id in FORM_IDS:
        assert any(line.split()[:1] == [form_id] for line in lines), result.output
    assert "provinces.csv" in result.output


# --- a server that is not Central ----------------------------------------------------------------

class NotCentral:
    """A real HTTP server on loopback that answers every request with one canned answer."""

    def __init__(self) -> None:
        self.answer: tuple[int, str, bytes] = (404, "text/plain", b"")
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                owner.requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status, content_type, body = owner.answer
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _reply

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def not_central() -> Iterator[NotCentral]:
    server = NotCentral()
    yield server
    server.close()


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
