"""The measured variants, each run in a fresh process: `python bench/variants.py '<json spec>'`.

The spec names the variant and the sandbox to read (URL, credentials, project, build dir).
The process imports what the variant needs, starts the clock, does the work, stops it, and
prints one line `RESULT {...}`: seconds, rows, stage timings where there are stages, and
its peak RSS (VmHWM of this process alone: the sandbox and a Prefect server are other
processes). Library imports are outside the clock (the parent also records the process's
whole wall time); everything the work itself sets up (logins, the GX context, rule sets,
tables) is inside.

Variants:
- `floor`: plain `requests` over `Submissions?$expand=*&$top=P` following nextLink, JSON
  parsed and discarded (`page_size` 0: the one-shot request, no `$top`);
- `baseline`: what a user writes today: pyodk `client.submissions.get_table` in a
  `$top`/`$skip` loop over `Submissions` and over `Submissions.members`,
  `pandas.json_normalize`, `DataFrame.to_sql` into SQLite (no validation);
- `consult`: `consult.sync.FormSync(...).run()` into a fresh SQLite file (or, when the spec
  names a `database` URL, that empty PostgreSQL database), write-back off, with stage timings
  (pull, records, validate, load, duplicates, commit) taken by wrapping the functions the sync
  calls;
- `flow`: the same through the Prefect flow `flows.sync_submissions.sync_submissions`
  (the parent points PREFECT_API_URL at one Prefect server for the whole run);
- `noop`: `FormSync(...).run()` again on a database a `consult` run filled: one 304.
- `profile`: `consult` under pyinstrument; writes the profile as text.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = Path(os.environ.get("CONSULT_BENCH_SRC") or REPO / "src")
"""The consult code measured: this tree's, or another's (`sync_bench.py --incremental-before`)."""
for path in (REPO, CODE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def peak_rss_mb() -> float:
    """This process's own peak RSS: the kernel's high-water mark of its address space (VmHWM).
    Not `ru_maxrss`, which Linux carries over an exec from the forking parent: a bench parent
    that had just generated 100k submissions made every variant it started report its 700 MB."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def login(spec: dict) -> str:
    import requests

    response = requests.post(f"{spec['url']}/v1/sessions", json={"email": spec["username"],
                                                                   "password": spec["password"]}, timeout=60)
    response.raise_for_status()
    return response.json()["token"]


def floor(spec: dict) -> dict:
    import requests

    token = login(spec)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    url = f"{spec['url']}/v1/projects/{spec['project_id']}/forms/{spec['form_id']}.svc/Submissions?$expand=*"
    if spec["page_size"]:
        url += f"&$top={spec['page_size']}&$count=true"
    started = time.perf_counter()
    rows = repeats = pages = 0
    next_url: str | None = url
    while next_url:
        response = session.get(next_url, timeout=600)
        response.raise_for_status()
        body = response.json()
        rows += len(body["value"])
        repeats += sum(len(row.get("members") or ()) for row in body["value"])
        pages += 1
        next_url = body.get("@odata.nextLink")
        del body
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "repeat_rows": repeats, "pages": pages}


def baseline(spec: dict, workdir: Path) -> dict:
    import sqlite3

    import pandas as pd
    from pyodk.client import Client

    config = workdir / "pyodk_config.toml"
    config.write_text(f'[central]\nbase_url = "{spec["url"]}"\nusername = "{spec["username"]}"\n'
                      f'password = "{spec["password"]}"\ndefault_project_id = {spec["project_id"]}\n',
                      encoding="utf-8")
    top = spec["page_size"]
    started = time.perf_counter()
    client = Client(config_path=str(config), cache_path=str(workdir / "pyodk_cache.toml"))
    db = sqlite3.connect(workdir / "baseline.db")
    counts = {}
    pages = 0
    for table in ("Submissions", "Submissions.members"):
        frames = []
        skip = 0
        while True:
            page = client.submissions.get_table(spec["form_id"], table_name=table, skip=skip, top=top)
            pages += 1
            rows = page["value"]
            if rows:
                frames.append(pd.json_normalize(rows))
            if len(rows) < top:
                break
            skip += top
        frame = pd.concat(frames, ignore_index=True)
        for column in frame.columns:  # geopoint coordinates come as lists, which SQLite cannot bind
            if frame[column].map(lambda v: isinstance(v, list)).any():
                frame[column] = frame[column].map(lambda v: json.dumps(v) if isinstance(v, list) else v)
        frame.to_sql(table.replace(".", "_"), db, if_exists="replace", index=False)
        counts[table] = len(frame)
        del frames, frame
    db.commit()
    db.close()
    seconds = time.perf_counter() - started
    client.session.close()
    return {"seconds": seconds, "rows": counts["Submissions"], "repeat_rows": counts["Submissions.members"],
            "pages": pages}


class StageTimer:
    """Wrap what `consult.sync` calls, so an end-to-end run also tells where its time went."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.rows: dict[str, int] = defaultdict(int)
        self.peak_mb: dict[str, float] = defaultdict(float)
        """How far each stage raised the process's peak RSS: where memory grows with N."""
        self.collector: dict[str, float] = defaultdict(float)
        """Seconds in the garbage collector per generation, within the stages (not beside them)."""

    def install(self) -> None:
        import gc

        import consult.sync as sync
        from consult.warehouse.records import RecordBuilder

        timer = self
        pull, ahead = sync.pull_submissions, sync.read_ahead

        def timed_pages(pages):
            """Time the sync spends waiting for pages: the read-ahead thread's fetching overlaps
            the sync's work, so only the waits of the sync's own thread count."""
            counted = threading.current_thread().name != "odata-read-ahead"
            while True:
                started = time.perf_counter()
                try:
                    page = next(pages)
                except StopIteration:
                    if counted:
                        timer.seconds["pull"] += time.perf_counter() - started
                    return
                if counted:
                    timer.seconds["pull"] += time.perf_counter() - started
                    timer.rows["pull"] += len(page.rows)
                yield page

        def wrap(name: str, fn, rows_of=None):
            def timed(*args, **kwargs):
                started, peak = time.perf_counter(), peak_rss_mb()
                try:
                    return fn(*args, **kwargs)
                finally:
                    timer.seconds[name] += time.perf_counter() - started
                    timer.peak_mb[name] += peak_rss_mb() - peak
                    if rows_of is not None:
                        timer.rows[name] += rows_of(args)
            return timed

        from sqlalchemy.engine.base import Connection

        build = RecordBuilder.build
        RecordBuilder.build = wrap("records", build, lambda a: len(a[1]))
        sync.pull_submissions = lambda *args, **kwargs: timed_pages(pull(*args, **kwargs))
        sync.read_ahead = lambda pages, *args: timed_pages(ahead(pages, *args))
        # Validation: "validate" the page rules on each page (in code before the two steps,
        # `validate_records` on each page), "suites" the suites over a pass's rows and their verdicts.
        pages = lambda a: len(a[1].instance_ids)
        for name, stage, rows_of in (("validate_records", "validate", pages), ("judge_page", "validate", pages),
                                     ("judge_loaded", "suites", None), ("record_judgement", "suites", None)):
            if hasattr(sync, name):
                setattr(sync, name, wrap(stage, getattr(sync, name), rows_of))
        sync.load_page = wrap("load", sync.load_page, lambda a: len(a[2].instance_ids))
        sync.recheck_duplicates = wrap("duplicates", sync.recheck_duplicates)
        # The rest of a run, so that "other" is what is left: each transaction's COMMIT (a page's
        # rows reach the SQLite file), the deleted-submissions pull, the verdict count at the end.
        Connection._commit_impl = wrap("commit", Connection._commit_impl)
        sync.FormSync._pull_deleted = wrap("deleted", sync.FormSync._pull_deleted)
        sync.verdicts_of = wrap("verdicts", sync.verdicts_of)
        collecting: dict[str, float] = {}

        def collected(phase: str, info: dict) -> None:
            """Time in the garbage collector, per generation: it runs inside every other stage."""
            if phase == "start":
                collecting["started"] = time.perf_counter()
            elif "started" in collecting:
                timer.collector[f"gc{info['generation']}"] += time.perf_counter() - collecting.pop("started")

        gc.callbacks.append(collected)


def _consult_setup(spec: dict, validates: bool = True):
    if validates:  # imports outside the clock (see the module docstring); a 304 validates nothing
        import great_expectations  # noqa: F401
        import pandas  # noqa: F401

        import consult.validate.run  # noqa: F401
    from consult.central import CentralSettings
    from consult.forms.schema import FormSchema

    settings = CentralSettings(url=spec["url"], username=spec["username"], password=spec["password"],
                               project=str(spec["project_id"]))
    schema = FormSchema.read(Path(spec["build_dir"]) / f"{spec['form_id']}.schema.json")
    return settings, schema


def consult(spec: dict, db_path: Path) -> dict:
    from consult.central import CentralSession
    from consult.sync import FormSync, SyncOptions
    from consult.warehouse.database import create_engine_for

    settings, schema = _consult_setup(spec)
    url = spec.get("database") or f"sqlite:///{db_path}"
    if url.startswith("postgresql"):
        import psycopg  # noqa: F401  (an import, outside the clock like the others)
    timer = StageTimer()
    timer.install()
    started = time.perf_counter()
    engine = create_engine_for(url)
    if spec.get("sqlite_pragmas") and engine.dialect.name == "sqlite":  # an experiment: `--sqlite-pragma` of sync_bench.py
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            for pragma in spec["sqlite_pragmas"]:
                dbapi_connection.execute(f"PRAGMA {pragma}")
    with CentralSession(settings) as central:
        grouping = {"commit_pages": spec["commit_pages"]} if spec.get("commit_pages") else {}  # `--commit-pages`
        summary = FormSync(central, engine, spec["project_id"], schema,
                           SyncOptions(page_size=spec["page_size"], write_back=False, **grouping)).run()
    engine.dispose()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": summary.pulled, "pages": summary.pages, "valid": summary.valid,
            "quarantined": summary.quarantined, "not_modified": summary.not_modified,
            "database": engine.dialect.name, "stages": dict(timer.seconds), "stage_rows": dict(timer.rows),
            "collector": dict(timer.collector),
            "stage_peak_mb": {k: round(v, 1) for k, v in timer.peak_mb.items()}}


def flow(spec: dict, db_path: Path, workdir: Path) -> dict:
    settings, _ = _consult_setup(spec)
    import prefect  # noqa: F401

    from flows.sync_submissions import sync_submissions

    os.environ.update({"CONSULT_CENTRAL_URL": spec["url"], "CONSULT_CENTRAL_USER": spec["username"],
                       "CONSULT_CENTRAL_PASSWORD": spec["password"],
                       "CONSULT_CENTRAL_PROJECT": str(spec["project_id"])})
    timer = StageTimer()
    timer.install()
    started = time.perf_counter()
    (summary,) = sync_submissions(forms=[spec["form_id"]], build_dir=spec["build_dir"],
                                  database=f"sqlite:///{db_path}", page_size=spec["page_size"],
                                  reports_dir=str(workdir / "reports"))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": summary.pulled, "pages": summary.pages, "valid": summary.valid,
            "quarantined": summary.quarantined, "stages": dict(timer.seconds), "stage_rows": dict(timer.rows),
            "stage_peak_mb": {k: round(v, 1) for k, v in timer.peak_mb.items()}}


def noop(spec: dict, db_path: Path) -> dict:
    from consult.central import CentralSession
    from consult.sync import FormSync, SyncOptions
    from consult.warehouse.database import create_engine_for

    settings, schema = _consult_setup(spec, validates=False)
    started = time.perf_counter()
    engine = create_engine_for(f"sqlite:///{db_path}")
    with CentralSession(settings) as central:
        grouping = {"commit_pages": spec["commit_pages"]} if spec.get("commit_pages") else {}  # `--commit-pages`
        summary = FormSync(central, engine, spec["project_id"], schema,
                           SyncOptions(page_size=spec["page_size"], write_back=False, **grouping)).run()
    engine.dispose()
    seconds = time.perf_counter() - started
    if not summary.not_modified:
        raise RuntimeError(f"the re-sync was not a no-op: {summary.as_row()}")
    return {"seconds": seconds, "rows": spec["n"], "not_modified": summary.not_modified,
            "imported_great_expectations": "great_expectations" in sys.modules}


def profile(spec: dict, db_path: Path, out: Path) -> dict:
    """`consult` under pyinstrument (a bench-only tool: `.venv/bin/pip install -e ".[bench]"`).
    Writes `<out>.txt` (the project's frames) and `<out>-detail.txt` (library frames too, those
    above 1 % of the run)."""
    try:
        from pyinstrument import Profiler
        from pyinstrument.renderers import ConsoleRenderer
    except ImportError:
        raise SystemExit("the profile needs pyinstrument: .venv/bin/pip install -e '.[bench]'") from None

    profiler = Profiler(interval=0.002)
    profiler.start()
    result = consult(spec, db_path)
    profiler.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".txt").write_text(profiler.output_text(unicode=True, color=False, show_all=False),
                                       encoding="utf-8")
    detail = profiler.output(ConsoleRenderer(unicode=True, color=False, show_all=True))
    Path(f"{out}-detail.txt").write_text(_above(detail, 0.01), encoding="utf-8")
    return result


def _above(tree: str, share: float) -> str:
    """The profile's lines whose time is at least `share` of the whole (a child never exceeds
    its parent, so the tree stays whole)."""
    kept, total = [], None
    for line in tree.splitlines():
        match = re.match(r"^[\s│├└─]*(\d+\.\d+) ", line)
        if match:
            seconds = float(match.group(1))
            total = total or seconds
            if seconds < share * total:
                continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def run(spec: dict) -> dict:
    workdir = Path(spec["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = Path(spec.get("db") or workdir / "reporting.db")
    variant = spec["variant"]
    if variant == "floor":
        result = floor(spec)
    elif variant == "baseline":
        result = baseline(spec, workdir)
    elif variant == "consult":
        result = consult(spec, db_path)
    elif variant == "flow":
        result = flow(spec, db_path, workdir)
    elif variant == "noop":
        result = noop(spec, db_path)
    elif variant == "profile":
        result = profile(spec, db_path, Path(spec["profile_out"]))
    else:
        raise ValueError(f"unknown variant {variant}")
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["code"] = str(CODE)
    return result


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    outcome = run(json.loads(sys.argv[1]))
    sys.stdout.flush()
    print("RESULT " + json.dumps(outcome), flush=True)
