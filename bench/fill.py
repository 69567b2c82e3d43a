"""A sandbox Central holding N province_consultation submissions, for the benchmarks.

Two ways in, one result:
- `fill_bulk`: the XML goes through the sandbox's own ingest code in this process
  (`consult.sandbox.bulk.load_submissions`): ~600 submissions/s on one core, no HTTP;
- `fill_openrosa`: each submission is POSTed as ODK Collect sends it (8 at a time), for a
  small N: the path the bulk loader stands in for.
`check_same_odata` fills two sandboxes with the same interviews, one each way, and compares
every OData feed a sync or a user reads (`Submissions`, `Submissions?$expand=*`,
`Submissions.members`), row by row, leaving out only what must differ (submission dates).

`prepared_sandbox` keeps a filled data directory under build/bench-cache/, keyed by N, seed,
the form's XForm hash and the loader's code, so the 100k fill (~3 min) is paid once. Above
100k it fills in chunks of 100k (`interview_chunks`), so 1M (~30 min, 8.3 GB) never holds
all its XML at once.

    python bench/fill.py --check 300          # bulk and OpenRosa give the same OData
    python bench/fill.py --n 100000           # fill (or reuse) the 100k sandbox
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from consult.central import (  # noqa: E402
    BuiltForm,
    CentralSession,
    CentralSettings,
    collect_session,
    deploy_forms,
    ensure_teams,
    resolve_project,
    submit,
)
from consult.central.teams import FieldTeam  # noqa: E402
from consult.fieldwork import province_interviews, provincial  # noqa: E402
from consult.forms import FormSources, build_forms  # noqa: E402
from consult.sandbox import SandboxServer  # noqa: E402
from consult.sandbox.bulk import load_submissions  # noqa: E402

FORM_ID = "province_consultation"
PROJECT = "ISG Consultations"
TEAM = "Bench"
DEVICE_ID = "collect:bench"
SEED = 2004
CACHE = REPO / "build" / "bench-cache"
SPACING = timedelta(seconds=60)
"""Submissions arrive a minute apart, ending a day before the fill (see `submitted_at`)."""
ADMIN_PASSWORD = "bench-admin-password"
LOADER_VERSION = 1
CHUNK = 100_000
"""Above this many interviews a fill goes in chunks (see `interview_chunks`)."""
PERIOD_SHIFT = timedelta(weeks=92)
"""How much later each chunk's consultations are: longer than the generator's consultation
period (638 days), whole weeks so that working days stay working days."""


def build_form(out_dir: Path = CACHE / "forms") -> BuiltForm:
    """province_consultation built from forms/ (XForm, FormSchema, media)."""
    reports = build_forms([FormSources(REPO / "forms").forms_dir / f"{FORM_ID}.xlsx"], REPO / "forms" / "media",
                          out_dir)
    bad = [str(i) for r in reports for i in r.issues if not r.ok]
    if bad:
        raise RuntimeError(f"{FORM_ID} does not build: {bad}")
    return BuiltForm.load(out_dir, FORM_ID)


@dataclass
class Filled:
    """A running sandbox holding the submissions."""

    server: SandboxServer
    settings: CentralSettings
    project_id: int
    form: BuiltForm
    n: int
    fill_seconds: float
    how: str

    @property
    def env(self) -> dict[str, str]:
        """What `consult.sync` and the Prefect flow read to reach this sandbox."""
        return {"CONSULT_CENTRAL_URL": self.server.url, "CONSULT_CENTRAL_USER": self.server.admin_email,
                "CONSULT_CENTRAL_PASSWORD": self.server.admin_password, "CONSULT_CENTRAL_PROJECT": PROJECT}

    def spec(self) -> dict:
        """What a worker process needs (the password included: a throwaway sandbox on loopback)."""
        return {"url": self.server.url, "username": self.server.admin_email,
                "password": self.server.admin_password, "project_id": self.project_id, "form_id": FORM_ID,
                "build_dir": str(self.form.xform_path.parent), "n": self.n}


def _setup(server: SandboxServer, form: BuiltForm) -> tuple[CentralSettings, int, str]:
    settings = CentralSettings(url=server.url, username=server.admin_email, password=server.admin_password,
                               project=PROJECT)
    with CentralSession(settings) as central:
        project_id = resolve_project(central, PROJECT)
        deploy_forms(central, project_id, [form])
        (team,) = ensure_teams(central, project_id, [FieldTeam(name=TEAM, forms=[FORM_ID])])
    return settings, project_id, team.token.get_secret_value()


def submitted_at(n: int, end: datetime) -> Callable[[int], datetime]:
    """The i-th of n submissions, a minute apart, the last one at `end`."""
    start = end - SPACING * (n - 1)
    return lambda i: start + SPACING * i


def fill_bulk(server: SandboxServer, form: BuiltForm, xmls: list[bytes], end: datetime | None = None,
              ) -> tuple[CentralSettings, int, float]:
    settings, project_id, token = _setup(server, form)
    started = time.perf_counter()
    assert server.data_dir is not None
    end = end or datetime.now(UTC) - timedelta(days=1)
    load_submissions(server.data_dir, project_id, token, xmls, device_id=DEVICE_ID,
                     submitted_at=submitted_at(len(xmls), end))
    return settings, project_id, time.perf_counter() - started


def fill_openrosa(server: SandboxServer, form: BuiltForm, xmls: list[bytes]) -> tuple[CentralSettings, int, float]:
    settings, project_id, token = _setup(server, form)
    from pydantic import SecretStr

    secret = SecretStr(token)
    started = time.perf_counter()

    def send(chunk: list[bytes]) -> None:
        with collect_session() as session:
            for body in chunk:
                submit(session, settings.base_url, project_id, secret, body, device_id=DEVICE_ID)

    # Collect sends one after another per phone; 8 phones at once. Order within a phone is kept.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, [xmls[i::8] for i in range(8)]))
    return settings, project_id, time.perf_counter() - started


def interview_chunks(form: BuiltForm, n: int, seed: int, chunk: int = CHUNK, skip: int = 0) -> Iterator[list[bytes]]:
    """The XML of `n` interviews, `chunk` at a time, so that a fill of 1M never holds them all;
    without the first `skip` (a resumed fill), whose whole chunks are not even generated.

    The generator plans at most ~131k province interviews (one per province, agency and working
    day of its 2003–2004 period) and holds every draft it makes. Chunk k is therefore the
    fieldwork of seed + k with its consultation period moved k × `PERIOD_SHIFT` later: other
    instance ids, other (province, agency, date) keys, so no chunk duplicates another, and the
    first chunk is exactly the fill of `chunk` interviews (the 100k sandbox is the 1M one's start)."""
    if n <= chunk:
        yield [i.xml for i in province_interviews(form.schema, n, seed=seed)][skip:]
        return
    first, last = provincial.CONSULTED
    if last + PERIOD_SHIFT * ((n - 1) // chunk) >= datetime.now(UTC).date():
        raise ValueError(f"{n} interviews in chunks of {chunk} would date consultations in the future")
    try:
        for k, start in enumerate(range(0, n, chunk)):
            if start + chunk <= skip:
                continue
            provincial.CONSULTED = (first + PERIOD_SHIFT * k, last + PERIOD_SHIFT * k)
            xmls = [i.xml for i in province_interviews(form.schema, min(chunk, n - start), seed=seed + k)]
            yield xmls[max(0, skip - start):]
    finally:
        provincial.CONSULTED = (first, last)


def _held(data_dir: Path) -> int:
    """Submissions a sandbox data folder holds already: each bulk batch is one transaction, so a
    fill that stopped holds the first ones in order, and resumes after them."""
    database = data_dir / "sandbox.sqlite3"
    if not database.is_file():
        return 0
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT count(*) FROM submissions").fetchone()[0]


def _fill_started(data_dir: Path) -> datetime:
    """When the fill of this folder began (kept in it), so a resumed fill dates its submissions on
    the same minute-apart line as the first ones."""
    started = data_dir / "fill-started"
    if not started.is_file():
        started.write_text(datetime.now(UTC).isoformat())
    return datetime.fromisoformat(started.read_text())


def _cache_key(n: int, form: BuiltForm, seed: int, chunk: int = CHUNK) -> str:
    """Same size, seed, XForm, chunking and `LOADER_VERSION`: the same submissions (delete the
    folder, or bump the version when the loader or the generator changes what a fill holds)."""
    chunked = f":chunk{chunk}" if n > chunk else ""
    digest = hashlib.sha256(f"{n}:{seed}:{form.schema.xform_sha256}:{LOADER_VERSION}{chunked}"
                            .encode()).hexdigest()[:16]
    return f"{FORM_ID}-{n}-{digest}"


@contextmanager
def prepared_sandbox(n: int, seed: int = SEED, form: BuiltForm | None = None, cache: Path = CACHE,
                     log=print, chunk: int = CHUNK) -> Iterator[Filled]:
    """A running sandbox with `n` bulk-loaded interviews, filled once and kept in `cache`
    (`chunk` at a time above `chunk`: `interview_chunks`)."""
    form = form or build_form(cache / "forms")
    data_dir = cache / _cache_key(n, form, seed, chunk)
    done = data_dir / "filled.json"
    if not done.is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        generated = seconds = 0.0
        started_fill = _fill_started(data_dir)
        dated = submitted_at(n, started_fill - timedelta(days=1))
        with SandboxServer(data_dir=data_dir, admin_password=ADMIN_PASSWORD) as server:
            _, project_id, token = _setup(server, form)
            loaded = resumed_from = _held(data_dir)
            if loaded:
                log(f"  resuming a fill that stopped at {loaded} of {n} submissions")
            chunks = interview_chunks(form, n, seed, chunk, skip=loaded)
            while True:
                started = time.perf_counter()
                xmls = next(chunks, None)
                generated += time.perf_counter() - started
                if xmls is None:
                    break
                started = time.perf_counter()
                load_submissions(data_dir, project_id, token, xmls, device_id=DEVICE_ID,
                                 submitted_at=lambda i, offset=loaded: dated(offset + i))
                seconds += time.perf_counter() - started
                loaded += len(xmls)
                if n > chunk:
                    log(f"  filled {loaded} of {n} ({generated + seconds:.0f} s)")
                del xmls
        done.write_text(json.dumps({"n": n, "seed": seed, "chunk": chunk if n > chunk else None,
                                    "generate_s": round(generated, 2), "fill_s": round(seconds, 2),
                                    "filled_at": datetime.now(UTC).isoformat(),
                                    **({"resumed_from": resumed_from} if resumed_from else {})}))
        log(f"  filled {n - resumed_from} submissions in {seconds:.1f} s ({(n - resumed_from) / seconds:.0f}/s, bulk, "
            f"no HTTP{f', after the {resumed_from} it held' if resumed_from else ''}) "
            f"after generating them in {generated:.1f} s; cached in {data_dir}")
    facts = json.loads(done.read_text())
    with SandboxServer(data_dir=data_dir, admin_password=ADMIN_PASSWORD) as server:
        settings = CentralSettings(url=server.url, username=server.admin_email, password=server.admin_password,
                                   project=PROJECT)
        with CentralSession(settings) as central:
            project_id = resolve_project(central, PROJECT, create=False)
        yield Filled(server, settings, project_id, form, n, facts["fill_s"], "bulk")


@contextmanager
def sandbox_copy(n: int, workdir: Path, seed: int = SEED, cache: Path = CACHE, log=print) -> Iterator[Filled]:
    """A running sandbox with a copy of the cached `n` interviews, in `workdir`: one to add
    submissions to (`add_submissions`) without touching the cache."""
    form = build_form(cache / "forms")
    with prepared_sandbox(n, seed=seed, form=form, cache=cache, log=log) as filled:
        source = filled.server.data_dir
        fill_s = filled.fill_seconds
    assert source is not None
    data_dir = workdir / "sandbox"
    shutil.copytree(source, data_dir)
    with SandboxServer(data_dir=data_dir, admin_password=ADMIN_PASSWORD) as server:
        settings = CentralSettings(url=server.url, username=server.admin_email, password=server.admin_password,
                                   project=PROJECT)
        with CentralSession(settings) as central:
            project_id = resolve_project(central, PROJECT, create=False)
        yield Filled(server, settings, project_id, form, n, fill_s, "bulk")


def add_submissions(filled: Filled, n: int, seed: int) -> float:
    """`n` more interviews (another seed: other instance ids) through the bulk loader, dated a
    second apart and ending two minutes ago: after everything the sandbox held, as new fieldwork
    arriving between two syncs. Returns the loader's seconds."""
    xmls = [i.xml for i in province_interviews(filled.form.schema, n, seed=seed)]
    with CentralSession(filled.settings) as central:
        (team,) = ensure_teams(central, filled.project_id, [FieldTeam(name=TEAM, forms=[FORM_ID])])
    assert filled.server.data_dir is not None
    started = time.perf_counter()
    end = datetime.now(UTC) - timedelta(minutes=2)
    load_submissions(filled.server.data_dir, filled.project_id, team.token.get_secret_value(), xmls,
                     device_id=DEVICE_ID, submitted_at=lambda i: end - timedelta(seconds=n - 1 - i))
    return time.perf_counter() - started


# The two paths give the same OData -----------------------------------------------------------

VARYING_SYSTEM = ("submissionDate", "updatedAt")
"""What must differ between two sandboxes: when each received the submission."""


def _normalise(row: dict) -> dict:
    row = json.loads(json.dumps(row))
    system = row.get("__system")
    if isinstance(system, dict):
        for key in VARYING_SYSTEM:
            system.pop(key, None)
    return row


def odata_snapshot(settings: CentralSettings, project_id: int) -> dict[str, dict[str, dict]]:
    """Every row of each feed, keyed by `__id`, normalised."""
    feeds = {"Submissions": {}, "Submissions?$expand=*": {"$expand": "*"}, "Submissions.members": {}}
    snapshot: dict[str, dict[str, dict]] = {}
    with CentralSession(settings) as central:
        base = f"projects/{project_id}/forms/{FORM_ID}.svc/"
        for name, params in feeds.items():
            table = name.split("?")[0]
            body = central.json("GET", base + table, params=params)
            snapshot[name] = {row["__id"]: _normalise(row) for row in body["value"]}
    return snapshot


def check_same_odata(n: int, seed: int = SEED, form: BuiltForm | None = None) -> dict:
    """Fill one sandbox over OpenRosa and one in bulk with the same `n` interviews; compare."""
    form = form or build_form()
    xmls = [i.xml for i in province_interviews(form.schema, n, seed=seed)]
    with tempfile.TemporaryDirectory(prefix="bench-fill-") as tmp:
        for name in ("openrosa", "bulk"):
            (Path(tmp) / name).mkdir()
        with SandboxServer(data_dir=Path(tmp) / "openrosa") as server:
            settings, project_id, openrosa_s = fill_openrosa(server, form, xmls)
            over_http = odata_snapshot(settings, project_id)
        with SandboxServer(data_dir=Path(tmp) / "bulk") as server:
            settings, project_id, bulk_s = fill_bulk(server, form, xmls)
            in_bulk = odata_snapshot(settings, project_id)
    differences = []
    for feed, rows in over_http.items():
        other = in_bulk[feed]
        if rows.keys() != other.keys():
            differences.append(f"{feed}: ids differ ({len(rows.keys() ^ other.keys())} not in both)")
            continue
        differences += [f"{feed} {key}" for key in rows if rows[key] != other[key]]
    return {"n": n, "openrosa_s": round(openrosa_s, 2), "bulk_s": round(bulk_s, 2),
            "rows": {feed: len(rows) for feed, rows in over_http.items()},
            "same": not differences, "differences": differences[:10]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, help="fill (or reuse) a cached sandbox of N submissions")
    parser.add_argument("--check", type=int, metavar="N", help="compare bulk and OpenRosa fills of N submissions")
    args = parser.parse_args()
    if args.check:
        result = check_same_odata(args.check)
        print(json.dumps(result, indent=1))
        if not result["same"]:
            raise SystemExit(1)
    if args.n:
        with prepared_sandbox(args.n) as filled:
            print(f"{filled.n} submissions at {filled.server.url}, data in {filled.server.data_dir}")


if __name__ == "__main__":
    main()
