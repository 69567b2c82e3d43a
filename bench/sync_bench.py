"""What a sync costs at 1k, 10k, 100k (and 1M) submissions, against pyodk + pandas and against the raw transfer.

For each size N, a sandbox Central is filled with N province_consultation interviews (with
their `members` repeat and select_multiples) by the bulk loader (`bench/fill.py`, cached in
build/bench-cache/), then each variant runs `--repeat` times, each time in a fresh process
(`bench/variants.py`), interleaved round-robin:

  floor      plain requests over `Submissions?$expand=*` pages following nextLink, parsed and
             discarded (page sizes as `--page-sizes`), and the one-shot request (no `$top`);
  baseline   pyodk `submissions.get_table` in a `$top`/`$skip` loop over `Submissions` and
             `Submissions.members`, `pandas.json_normalize`, `DataFrame.to_sql` into SQLite;
  consult    `FormSync.run()`: pull → records → validate (GX) → load into SQLite, write-back
             off, per page size, with its stages timed inside the same run;
  postgres   (`--postgres`) the consult sync into a fresh database of a throwaway local
             PostgreSQL 15 cluster started for the run (tests/postgres.py, `POSTGRES_SETTINGS`);
  flow       the same through the Prefect flow `sync_submissions` (one Prefect server for the
             whole benchmark: in production there is one);
  no-op      the sync again on a database a full sync filled (Central answers 304).

`--million` adds a size (1M, or `--million-size`) measured by the floor and the consult sync
only, once, against the largest of `--sizes`; its fill goes in chunks (`fill.interview_chunks`,
~30 min for 1M, cached). `--with-command N` and `--with-incremental N` add, after the table,
the whole `consult sync` command and "1 % new rows" at N (`--command` and `--incremental`
alone measure only those, at `--sizes`).

Printed: one table (min and median seconds, rows/s, peak RSS of the measuring process,
ratios to the baseline and to the floor at the same page size), the stage table and issue
17's target table, row by row, from what this run measured; written to
bench/results/sync-<sizes>.json with the machine's facts and load averages.

    .venv/bin/python bench/sync_bench.py --sizes 1000,10000,100000
    .venv/bin/python bench/sync_bench.py --sizes 1000,10000,100000 --lean-from 100000   # 100k: consult + floor only
    .venv/bin/python bench/sync_bench.py --sizes 100000 --only consult --page-sizes 1000 --repeat 1 --profile
    .venv/bin/python bench/sync_bench.py --sizes 10000,100000 --only floor,baseline,consult --postgres \
        --with-command 10000 --with-incremental 100000 --million       # every row of issue 17's table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO)]

from fill import (
    CACHE,
    CHUNK,
    add_submissions,
    build_form,
    check_same_odata,
    prepared_sandbox,
    sandbox_copy,
)
from same_values import compare

from tests.postgres import ThrowawayPostgres

PYTHON = sys.executable
RESULTS = REPO / "bench" / "results"
VARIANTS = ("floor", "one-shot", "baseline", "consult", "before", "postgres", "flow", "no-op")
TARGETS = {"vs_floor": 2.0, "vs_baseline": 3.0, "command_s": 3.0, "noop_command_s": 1.5,
           "validate_rows_per_s": 50_000, "peak_rss_mb": 250.0, "rss_growth": 1.2, "incremental": 0.03,
           "postgres": 1.5, "linear": 1.1}
"""Issue 17's targets. `rss_growth` (peak RSS at the largest size ÷ at the smallest) is this
bench's reading of "flat"; `linear`: the 1M sync within 1.1 × 10 the 100k one."""
POSTGRES_SETTINGS = ("-c synchronous_commit=off -c max_connections=20 -c shared_preload_libraries=auto_explain "
                     "-c auto_explain.log_min_duration=5s -c auto_explain.log_nested_statements=on")
"""The bench's cluster: PostgreSQL's defaults (fsync, full-page writes, 128 MB shared buffers)
but for commits that do not wait for their WAL flush, the durability SQLite's WAL with
`synchronous = NORMAL` gives the consult sync (the tests' cluster runs with fsync off). Any
statement over 5 s has its plan logged (`auto_explain`), and the run keeps those plans
(`PostgresDatabases`): a plan made on stale statistics shows up as one such statement."""


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    memory = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), None)
    return {"cpu_count": os.cpu_count(), "cpu_model": model, "memory_mb": memory,
            "python": platform.python_version(), "platform": platform.platform(),
            "sqlite": __import__("sqlite3").sqlite_version}


@dataclass
class Measure:
    """One line of the table: a variant at one size and page size, over its runs."""

    size: int
    variant: str
    page_size: int
    runs: list[dict] = field(default_factory=list)

    @property
    def times(self) -> list[float]:
        return [r["seconds"] for r in self.runs]

    @property
    def best(self) -> dict:
        return min(self.runs, key=lambda r: r["seconds"])

    def row(self) -> dict:
        best = min(self.times)
        return {"size": self.size, "variant": self.variant, "page_size": self.page_size or None,
                "runs": len(self.runs), "min_s": round(best, 3), "median_s": round(statistics.median(self.times), 3),
                "rows_per_s": round(self.size / best) if best else None,
                "peak_rss_mb": max(r["peak_rss_mb"] for r in self.runs),
                "process_wall_s_min": round(min(r["process_wall_s"] for r in self.runs), 2),
                "detail": {k: v for k, v in self.best.items() if k not in ("seconds", "peak_rss_mb")}}


class PrefectServer:
    """One `prefect server start` for the flow runs, in a throwaway PREFECT_HOME."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="bench-prefect-"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.env = {**os.environ, "PREFECT_HOME": str(self.home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "PREFECT_API_URL": f"http://127.0.0.1:{self.port}/api"}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> PrefectServer:
        prefect = str(Path(PYTHON).with_name("prefect"))
        self.log = open(self.home / "server.log", "wb")
        self.process = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                                        env=self.env, stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        raise TimeoutError("the Prefect server did not start")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.home, ignore_errors=True)


class PostgresDatabases:
    """A throwaway PostgreSQL cluster (tests/postgres.py) for the run, and a fresh database per
    measured sync, dropped after it."""

    def __init__(self, settings: str = POSTGRES_SETTINGS) -> None:
        self.cluster = ThrowawayPostgres(settings)
        self.created = 0

    def __enter__(self) -> PostgresDatabases:
        from sqlalchemy import make_url

        from consult.warehouse.database import create_engine_for

        self.cluster.start()
        self.admin = create_engine_for(self.cluster.url, isolation_level="AUTOCOMMIT")
        self._url = make_url(self.cluster.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.admin.dispose()
        self._keep_slow_plans()
        self.cluster.stop()

    def _keep_slow_plans(self) -> None:
        """Copy the plans `auto_explain` logged (statements over 5 s) to results/ before the
        cluster and its log are removed, and say how many there were."""
        server_log = self.cluster.dir / "server.log"
        text = server_log.read_text(encoding="utf-8", errors="replace") if server_log.exists() else ""
        entries = re.findall(r"^\S.* LOG:  duration: .*\n(?:\t.*\n?)*", text, flags=re.MULTILINE)
        if entries:
            out = RESULTS / f"postgres-slow-plans-{time.strftime('%Y%m%d-%H%M%S')}.log"
            out.write_text("\n".join(entries), encoding="utf-8")
            print(f"  PostgreSQL: {len(entries)} statement(s) over 5 s, their plans in {out}")

    @contextmanager
    def fresh(self) -> Iterator[str]:
        from sqlalchemy import text

        name = f"bench_{self.created}"
        self.created += 1
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield self._url.set(database=name).render_as_string(hide_password=False)
        finally:
            with self.admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


def run_variant(spec: dict, env: dict | None = None, timeout: float = 3600) -> dict:
    """One fresh process; its RESULT line, plus its whole wall time."""
    Path(spec["workdir"]).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    done = subprocess.run([PYTHON, str(REPO / "bench" / "variants.py"), json.dumps(spec)], capture_output=True,
                          text=True, env=env or {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
                          timeout=timeout, cwd=spec["workdir"])
    wall = time.perf_counter() - started
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"{spec['variant']} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(line.removeprefix("RESULT "))
    result["process_wall_s"] = wall
    return result


def plan(size: int, args: argparse.Namespace) -> list[tuple[str, int]]:
    """(variant, page size) pairs measured at this size."""
    lean = args.lean_from is not None and size >= args.lean_from
    wanted = set(args.only or set(VARIANTS) - {"postgres", "before"})
    if args.postgres:
        wanted.add("postgres")
    if args.before:
        wanted.add("before")
    if lean:
        wanted &= {"floor", "one-shot", "consult", "before", "postgres", "no-op"}
    if args.million and size == args.million_size:
        wanted = {"floor", "consult"}
    pairs: list[tuple[str, int]] = []
    for variant in VARIANTS:
        if variant not in wanted:
            continue
        if variant == "one-shot":
            pairs.append((variant, 0))
        elif variant == "baseline":
            pairs.append((variant, args.baseline_page_size))
        elif variant == "flow":
            pairs += [(variant, p) for p in args.flow_page_sizes]
        elif variant == "no-op":
            pairs.append((variant, args.page_sizes[0]))
        else:
            pairs += [(variant, p) for p in args.page_sizes]
    return pairs


def estimate_fill(size: int, args: argparse.Namespace, log) -> None:
    """Say what a fill not yet cached will cost before paying it (1M: about half an hour)."""
    cached = any((d / "filled.json").is_file() for d in args.cache_dir.glob(f"province_consultation-{size}-*"))
    if not cached and size > 100_000:
        log(f"  {size} submissions are not cached in {args.cache_dir}: generating and filling them takes "
            f"~{size / 6800 / 60 + size / 650 / 60:.0f} min (~6800/s generated, ~650/s loaded on one core), "
            f"~{size * 8.3 / 1e6:.1f} GB on disk")


def bench_size(size: int, args: argparse.Namespace, prefect_env: dict | None, log) -> list[Measure]:
    pairs = plan(size, args)
    measures = {pair: Measure(size, pair[0], pair[1]) for pair in pairs}
    first_sync = ("consult", args.page_sizes[0])
    before_env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                  "CONSULT_BENCH_SRC": str(args.before)} if args.before else None
    repeats = args.million_repeat if args.million and size == args.million_size else args.repeat
    estimate_fill(size, args, log)
    with prepared_sandbox(size, cache=args.cache_dir, log=log, chunk=args.fill_chunk) as filled, \
            tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        base = filled.spec()
        args.load_average[size] = {"start": os.getloadavg()}
        # Warm the server (its SQLite pages, its parsed form) with one unmeasured pass; one response
        # of more than 100k rows would cost more memory than the runs measured.
        run_variant({**base, "variant": "floor", "page_size": 0 if size <= 100_000 else max(args.page_sizes),
                     "workdir": str(Path(tmp) / "warm-up")})
        synced_db: Path | None = None
        baseline_db: Path | None = None
        for repeat in range(repeats):
            for variant, page_size in pairs:
                workdir = Path(tmp) / f"{variant}-{page_size}-{repeat}"
                spec = {**base, "variant": {"one-shot": "floor", "no-op": "noop", "postgres": "consult",
                                            "before": "consult"}.get(
                    variant, variant), "page_size": page_size, "workdir": str(workdir),
                        "sqlite_pragmas": args.sqlite_pragma, "commit_pages": args.commit_pages}
                if variant == "no-op":
                    if synced_db is None:  # a full sync first, not measured (unless one ran already)
                        first = Path(tmp) / "synced"
                        run_variant({**spec, "variant": "consult", "workdir": str(first)})
                        synced_db = first / "reporting.db"
                    spec["db"] = str(synced_db)
                if variant == "postgres":
                    with args.databases.fresh() as url:
                        result = run_variant({**spec, "database": url})
                else:
                    result = run_variant(spec, env=prefect_env if variant == "flow" else before_env if
                                         variant == "before" else None)
                measures[(variant, page_size)].runs.append(result)
                log(f"  {size:>7} {variant:9} p={page_size or '-':<5} run {repeat + 1}: {result['seconds']:8.2f} s, "
                    f"{result['peak_rss_mb']:6.0f} MB" + (f"  stages {fmt_stages(result)}" if "stages" in result else ""))
                if variant == "baseline":
                    baseline_db = workdir / "baseline.db"
                if (variant, page_size) == first_sync and synced_db is None:
                    synced_db = workdir / "reporting.db"  # the no-op re-syncs what this run loaded
                elif variant in ("consult", "before", "flow"):
                    shutil.rmtree(workdir, ignore_errors=True)  # a reporting DB not needed again
        if synced_db is not None and baseline_db is not None:
            check = compare(synced_db, baseline_db, filled.form.schema)
            args.values_checks[size] = {**vars(check), "same": check.same}
            log(f"  {check.line()}")
            for example in check.examples:
                log(f"    {example}")
        if args.profile and size == args.profile_size:
            page_size = args.page_sizes[0]
            out = RESULTS / f"profile-sync-{size}-p{page_size}"
            spec = {**base, "variant": "profile", "page_size": page_size, "workdir": str(Path(tmp) / "prof"),
                    "profile_out": str(out)}
            result = run_variant(spec)
            log(f"  profile of the consult sync at {size}, page {page_size}: {out.with_suffix('.txt')} "
                f"({result['seconds']:.1f} s under the profiler)")
        args.load_average[size]["end"] = os.getloadavg()
    log(f"  load average (1, 5, 15 min) at start {args.load_average[size]['start']}, "
        f"at end {args.load_average[size]['end']}")
    return list(measures.values())


def fmt_stages(result: dict) -> str:
    return " ".join(f"{k} {v:.2f}" for k, v in result["stages"].items())


def bench_incremental(size: int, args: argparse.Namespace, log) -> list[dict]:
    """Issue 17's "1 % new rows on a warehouse of N": a full sync of a copy of the N sandbox
    (measured, `--repeat` times), then `--incremental` × N new submissions added by the bulk
    loader, then the re-sync of a copy of the full sync's database (`--incremental-repeat` times),
    for this tree's code and, with `--incremental-before`, another tree's, interleaved."""
    codes = {"after": str(REPO / "src")}
    if args.incremental_before:
        codes = {"before": str(args.incremental_before), **codes}
    added = max(1, round(size * args.incremental))
    page_size = args.page_sizes[0]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp, \
            sandbox_copy(size, Path(tmp), cache=args.cache_dir, log=log) as filled:
        base = {**filled.spec(), "variant": "consult", "page_size": page_size}
        envs = {name: {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "CONSULT_BENCH_SRC": src}
                for name, src in codes.items()}
        run_variant({**base, "variant": "floor", "page_size": 0, "workdir": str(Path(tmp) / "warm-up")})
        full: dict[str, list[dict]] = {name: [] for name in codes}
        synced: dict[str, Path] = {}
        for repeat in range(args.repeat):
            for name in codes:
                workdir = Path(tmp) / f"full-{name}-{repeat}"
                result = run_variant({**base, "workdir": str(workdir)}, env=envs[name])
                full[name].append(result)
                synced.setdefault(name, workdir / "reporting.db")
                log(f"  {size:>7} full sync ({name}) run {repeat + 1}: {result['seconds']:8.2f} s  "
                    f"stages {fmt_stages(result)}")
        seconds = add_submissions(filled, added, seed=args.incremental_seed)
        log(f"  added {added} submissions in {seconds:.1f} s (bulk loader)")
        again: dict[str, list[dict]] = {name: [] for name in codes}
        for repeat in range(args.incremental_repeat):
            for name in codes:
                workdir = Path(tmp) / f"again-{name}-{repeat}"
                workdir.mkdir()
                db = workdir / "reporting.db"
                shutil.copy(synced[name], db)
                result = run_variant({**base, "workdir": str(workdir), "db": str(db)}, env=envs[name])
                if result["rows"] < added:
                    raise RuntimeError(f"the re-sync pulled {result['rows']} rows, not the {added} added")
                again[name].append(result)
                log(f"  {size:>7} re-sync, {added} new ({name}) run {repeat + 1}: {result['seconds']:8.3f} s  "
                    f"stages {fmt_stages(result)}")
        for name in codes:
            best_full = min(full[name], key=lambda r: r["seconds"])
            best_again = min(again[name], key=lambda r: r["seconds"])
            rows.append({"size": size, "code": name, "added": added, "page_size": page_size,
                         "full_min_s": round(best_full["seconds"], 3),
                         "resync_min_s": round(best_again["seconds"], 3),
                         "resync_median_s": round(statistics.median(r["seconds"] for r in again[name]), 3),
                         "ratio": round(best_again["seconds"] / best_full["seconds"], 4),
                         "full_duplicates_s": round(best_full["stages"].get("duplicates", 0), 3),
                         "resync_duplicates_s": round(best_again["stages"].get("duplicates", 0), 3),
                         "resync_rows": best_again["rows"], "resync_stages": best_again["stages"],
                         "full_stages": best_full["stages"],
                         "peak_rss_mb": max(r["peak_rss_mb"] for r in full[name] + again[name])})
    return rows


def timed_command(command: list[str], env: dict, cwd: Path) -> dict:
    """A whole command in a fresh process under /usr/bin/time -v: its wall time and peak RSS."""
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    facts = dict(line.strip().rsplit(": ", 1) for line in done.stderr.splitlines()
                 if line.startswith("\t") and ": " in line)
    clock = facts["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
    wall = sum(float(part) * 60 ** n for n, part in enumerate(reversed(clock)))
    return {"seconds": wall, "peak_rss_mb": round(int(facts["Maximum resident set size (kbytes)"]) / 1024, 1)}


def bench_command(size: int, args: argparse.Namespace, log) -> list[dict]:
    """Issue 17's "the whole `consult sync` command": `python -m consult.cli sync --form ...` as
    a fresh process (interpreter, imports, login, everything) into a fresh SQLite file, then the
    same command again on that database (a no-op: one 304), against the floor in a fresh process
    too (its process wall includes its own start-up), interleaved, `--repeat` times each."""
    page_size = args.page_sizes[0]
    runs: dict[str, list[dict]] = {"floor": [], "command": [], "no-op command": []}
    with prepared_sandbox(size, cache=args.cache_dir, log=log, chunk=args.fill_chunk) as filled, \
            tempfile.TemporaryDirectory(prefix="bench-command-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
        env.update({**filled.env, "PYTHONPATH": str(REPO / "src"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
        base = filled.spec()
        run_variant({**base, "variant": "floor", "page_size": 0, "workdir": str(Path(tmp) / "warm-up")})
        for repeat in range(args.repeat):
            floor = run_variant({**base, "variant": "floor", "page_size": page_size,
                                 "workdir": str(Path(tmp) / f"floor-{repeat}")})
            runs["floor"].append({"seconds": floor["seconds"], "process_wall_s": floor["process_wall_s"],
                                  "peak_rss_mb": floor["peak_rss_mb"]})
            workdir = Path(tmp) / f"command-{repeat}"
            workdir.mkdir()
            command = [PYTHON, "-m", "consult.cli", "sync", "--form", base["form_id"],
                       "--db", f"sqlite:///{workdir / 'reporting.db'}", "--build-dir", base["build_dir"],
                       "--reports", str(workdir / "reports"), "--page-size", str(page_size)]
            for name in ("command", "no-op command"):
                result = timed_command(command, env, workdir) | where_time_went(workdir / "reporting.db")
                runs[name].append(result)
                log(f"  {size:>7} {name:14} run {repeat + 1}: {result['seconds']:7.2f} s, "
                    f"{result['peak_rss_mb']:6.0f} MB (floor {floor['seconds']:.2f} s of work, "
                    f"{floor['process_wall_s']:.2f} s as a process); forms {result['forms_s']:.2f} s, "
                    f"entity lists {result['entity_lists_s']:.2f} s ({result['entity_versions']} versions read)")
            shutil.rmtree(workdir, ignore_errors=True)
    floor_work = min(r["seconds"] for r in runs["floor"])
    floor_process = min(r["process_wall_s"] for r in runs["floor"])
    rows = []
    for name, measured in runs.items():
        best = min(r["process_wall_s" if name == "floor" else "seconds"] for r in measured)
        rows.append({"size": size, "what": name, "page_size": page_size, "runs": len(measured),
                     "min_s": round(best, 3),
                     "median_s": round(statistics.median(r["process_wall_s" if name == "floor" else "seconds"]
                                                         for r in measured), 3),
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in measured),
                     **({key: min(r[key] for r in measured) for key in ("forms_s", "entity_lists_s")}
                        if name != "floor" else {}),
                     "floor_work_s": round(floor_work, 3),
                     "ratio_to_floor_process": round(best / floor_process, 2),
                     "ratio_to_floor_work": round(best / floor_work, 2)})
    return rows


def where_time_went(db: Path) -> dict:
    """The command's own record of its last run (`sync_runs.summary`): seconds in the forms' syncs
    and in the entity lists', and how many entity versions it read (one request each)."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        (summary,) = conn.execute("SELECT summary FROM sync_runs ORDER BY id DESC LIMIT 1").fetchone()
    run = json.loads(summary)
    return {"forms_s": round(sum(f["seconds"] for f in run["forms"]), 3),
            "entity_lists_s": round(sum(e["seconds"] for e in run["entity_lists"]), 3),
            "entity_versions": sum(e["versions"] for e in run["entity_lists"])}


def print_command(rows: list[dict]) -> None:
    print(f"\n{'N':>7} {'whole process':16} {'page':>5} {'min s':>7} {'median s':>9} {'peak MB':>8} "
          f"{'÷ floor process':>16} {'÷ floor work':>13} {'forms s':>8} {'lists s':>8}")
    for r in rows:
        split = f"{r['forms_s']:8.2f} {r['entity_lists_s']:8.2f}" if "forms_s" in r else ""
        print(f"{r['size']:>7} {r['what']:16} {r['page_size']:>5} {r['min_s']:7.2f} {r['median_s']:9.2f} "
              f"{r['peak_rss_mb']:8.0f} {r['ratio_to_floor_process']:16.2f} {r['ratio_to_floor_work']:13.2f} {split}")


def print_incremental(rows: list[dict], target: float = 0.03) -> None:
    print(f"\n{'N':>7} {'code':7} {'new':>5} {'full min s':>11} {'re-sync min s':>14} {'÷ full':>7} "
          f"{'dup full s':>10} {'dup re-sync s':>13}")
    for r in rows:
        print(f"{r['size']:>7} {r['code']:7} {r['added']:>5} {r['full_min_s']:11.3f} {r['resync_min_s']:14.3f} "
              f"{r['ratio']:7.2%} {r['full_duplicates_s']:10.3f} {r['resync_duplicates_s']:13.3f}  "
              f"target <= {target:.0%}: {'MET' if r['ratio'] <= target else 'missed'}")


# The table ------------------------------------------------------------------------------------

def label(m: Measure) -> str:
    names = {"floor": "floor (requests, nextLink)", "one-shot": "floor, one-shot request",
             "baseline": "baseline (pyodk+pandas)", "consult": "consult sync", "before": "consult sync, code before",
             "postgres": "consult sync, PostgreSQL",
             "flow": "consult sync, Prefect flow", "no-op": "consult no-op re-sync"}
    return names[m.variant]


def ratios(m: Measure, measures: list[Measure]) -> tuple[float | None, float | None]:
    same = [x for x in measures if x.size == m.size]
    baseline = next((x for x in same if x.variant == "baseline"), None)
    floor = next((x for x in same if x.variant == "floor" and x.page_size == m.page_size), None) or next(
        (x for x in same if x.variant == "floor"), None)
    best = min(m.times)
    return (best / min(baseline.times) if baseline else None, best / min(floor.times) if floor else None)


def table(measures: list[Measure]) -> list[dict]:
    rows = []
    for m in measures:
        row = m.row()
        row["label"] = label(m)
        row["ratio_to_baseline"], row["ratio_to_floor"] = (round(r, 2) if r is not None else None
                                                           for r in ratios(m, measures))
        if m.variant == "no-op":
            row["rows_per_s"] = None
        rows.append(row)
    return rows


def stage_rows(measures: list[Measure]) -> list[dict]:
    rows = []
    for m in measures:
        if m.variant not in ("consult", "before", "postgres", "flow"):
            continue
        best = m.best
        stages = dict(best["stages"])
        stages["other"] = best["seconds"] - sum(stages.values())
        stages |= {f"({generation})": seconds for generation, seconds in best.get("collector", {}).items()}
        for stage, seconds in stages.items():
            n = best["stage_rows"].get(stage)
            rows.append({"size": m.size, "variant": m.variant, "page_size": m.page_size, "stage": stage,
                         "seconds": round(seconds, 3), "rows": n,
                         "peak_raised_mb": best.get("stage_peak_mb", {}).get(stage),
                         "rows_per_s": round(n / seconds) if n and seconds else None,
                         "share": round(seconds / best["seconds"], 3)})
    return rows


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n))


def _fastest(measures: list[Measure]) -> Measure | None:
    return min(measures, key=lambda m: min(m.times), default=None)


def issue17_targets(measures: list[Measure], command: list[dict], incremental: list[dict],
                    million: int | None) -> list[dict]:
    """Issue 17's table, one row per target, from what this run measured (`met` None: the
    run did not measure it; the row says which flag does)."""
    rows: list[dict] = []

    def add(measure: str, figure: str, target: str, met: bool | None) -> None:
        rows.append({"measure": measure, "measured": figure, "target": target, "met": met})

    synced = sorted({m.size for m in measures if m.variant == "consult"})
    ref = max((n for n in synced if n != million), default=None)
    at_ref = [m for m in measures if m.size == ref and m.variant == "consult"]
    best = _fastest(at_ref)
    what = f"{_size(ref)} sandbox, sync in-process" if ref else "sandbox, sync in-process"
    if best is None:
        add(f"{what}, vs floor", "not measured (the table's consult variant)", f"<= {TARGETS['vs_floor']}x", None)
        add(f"{what}, vs baseline", "not measured", f">= {TARGETS['vs_baseline']}x faster", None)
    else:
        vs_baseline, vs_floor = ratios(best, measures)
        seconds = min(best.times)
        add(f"{what}, vs floor", f"{seconds:.2f} s (page {best.page_size}) = {vs_floor:.2f}x the floor"
            if vs_floor else "floor not measured", f"<= {TARGETS['vs_floor']}x",
            vs_floor <= TARGETS["vs_floor"] if vs_floor else None)
        add(f"{what}, vs baseline", f"{1 / vs_baseline:.2f}x faster than the baseline ({seconds / vs_baseline:.2f} s)"
            if vs_baseline else "baseline not measured", f">= {TARGETS['vs_baseline']}x faster",
            1 / vs_baseline >= TARGETS["vs_baseline"] if vs_baseline else None)
    whole = {r["what"]: r for r in command}
    for name, key, target in (("command", "command_s", "whole `consult sync` command (fresh process)"),
                              ("no-op command", "noop_command_s", "no-op `consult sync`, whole command")):
        r = whole.get(name)
        if r is None:
            add(target, "not measured (--with-command N, or --command)", f"<= {TARGETS[key]} s", None)
        else:
            add(f"{_size(r['size'])} {target}" if name == "command" else target,
                f"{r['min_s']:.2f} s, {r['peak_rss_mb']:.0f} MB (floor process {whole['floor']['min_s']:.2f} s)",
                f"<= {TARGETS[key]} s", r["min_s"] <= TARGETS[key])
    rates = {m.page_size: m.best["stage_rows"].get("validate", 0) / (m.best["stages"]["validate"]
                                                                     + m.best["stages"].get("suites", 0))
             for m in at_ref if m.best["stages"].get("validate")}
    if rates:
        rate = max(rates.values())
        add(f"validation rate at {_size(ref)} (rows / s of the validate and suites stages)",
            ", ".join(f"{r:,.0f} rows/s (page {p})" for p, r in sorted(rates.items())),
            f">= {TARGETS['validate_rows_per_s']:,}", rate >= TARGETS["validate_rows_per_s"])
    else:
        add("validation rate (validate stage rows / s)", "not measured", f">= {TARGETS['validate_rows_per_s']:,}",
            None)
    peaks = {n: max(m.row()["peak_rss_mb"] for m in measures if m.size == n and m.variant == "consult")
             for n in synced}
    for n, mb in peaks.items():
        add(f"peak RSS at {_size(n)} (consult sync, any page size)", f"{mb:.0f} MB",
            f"< {TARGETS['peak_rss_mb']:.0f} MB", mb < TARGETS["peak_rss_mb"])
    if not peaks:
        add("peak RSS at 10k, 100k and 1M (consult sync)", "not measured (the table's consult variant)",
            f"< {TARGETS['peak_rss_mb']:.0f} MB", None)
    if len(peaks) > 1:
        low, high = min(peaks), max(peaks)
        growth = peaks[high] / peaks[low]
        add(f"peak RSS growth, {_size(high)} / {_size(low)}",
            f"{growth:.2f}x ({'flat' if growth <= TARGETS['rss_growth'] else 'growing'})",
            f"<= {TARGETS['rss_growth']}x (flat)", growth <= TARGETS["rss_growth"])
    after = [r for r in incremental if r["code"] == "after"]
    for r in after:
        add(f"{r['added'] / r['size']:.0%} new rows on a {_size(r['size'])} warehouse",
            f"{r['resync_min_s']:.2f} s of a {r['full_min_s']:.1f} s full sync = {r['ratio']:.1%}",
            f"<= {TARGETS['incremental']:.0%}", r["ratio"] <= TARGETS["incremental"])
    if not after:
        add("1 % new rows on a 100k warehouse", "not measured (--with-incremental N, or --incremental)",
            f"<= {TARGETS['incremental']:.0%}", None)
    pg = _fastest([m for m in measures if m.size == ref and m.variant == "postgres"])
    sqlite = next((m for m in at_ref if pg and m.page_size == pg.page_size), None)
    if pg and sqlite:
        ratio = min(pg.times) / min(sqlite.times)
        add(f"PostgreSQL {_size(ref)} (local server, COPY), vs SQLite",
            f"{min(pg.times):.2f} s against {min(sqlite.times):.2f} s (page {pg.page_size}) = {ratio:.2f}x",
            f"<= {TARGETS['postgres']}x", ratio <= TARGETS["postgres"])
    else:
        add("PostgreSQL (local server, COPY), vs SQLite", "not measured (--postgres)", f"<= {TARGETS['postgres']}x",
            None)
    big = [m for m in measures if million and m.size == million and m.variant == "consult"]
    pairs = [(m, next((r for r in at_ref if r.page_size == m.page_size), None)) for m in big]
    pairs = [(m, r) for m, r in pairs if r is not None]
    if pairs:
        limit = TARGETS["linear"] * million / ref
        for m, r in pairs:
            ratio = min(m.times) / min(r.times)
            floor = next((f for f in measures if f.size == million and f.variant == "floor"
                          and f.page_size == m.page_size), None)
            add(f"{_size(million)} sandbox submissions, vs {_size(ref)}",
                f"{min(m.times):.1f} s against {min(r.times):.1f} s (page {m.page_size}) = {ratio:.2f}x"
                + (f"; floor {min(floor.times):.1f} s" if floor else ""),
                f"<= {limit:.3g}x (linear)", ratio <= limit)
    else:
        add("1M sandbox submissions, vs 100k", "not measured (--million)", f"<= {TARGETS['linear'] * 10:.3g}x",
            None)
    return rows


def print_targets(rows: list[dict]) -> None:
    print("\nIssue 17's targets, from this run")
    width = max(len(r["measure"]) for r in rows)
    measured = max(len(r["measured"]) for r in rows)
    for r in rows:
        verdict = {True: "MET", False: "missed", None: "-"}[r["met"]]
        print(f"  {r['measure']:{width}}  {r['measured']:{measured}}  target {r['target']:14} {verdict}")


def print_report(rows: list[dict], stages: list[dict], goals: list[dict], facts: dict) -> None:
    print(f"\nMachine: {facts['cpu_count']} CPUs, {facts['cpu_model']}, {facts['memory_mb']} MB, "
          f"Python {facts['python']}, SQLite {facts['sqlite']}")
    head = (f"{'N':>7} {'variant':28} {'page':>5} {'min s':>8} {'median s':>9} {'rows/s':>8} {'peak MB':>8} "
            f"{'÷ base':>7} {'÷ floor':>8}")
    print(head)
    print("-" * len(head))
    size = None
    for r in rows:
        if size is not None and r["size"] != size:
            print()
        size = r["size"]
        ratio = lambda v: f"{v:.2f}" if v is not None else "-"
        print(f"{r['size']:>7} {r['label']:28} {r['page_size'] or '-':>5} {r['min_s']:8.3f} {r['median_s']:9.3f} "
              f"{r['rows_per_s'] or '-':>8} {r['peak_rss_mb']:8.0f} {ratio(r['ratio_to_baseline']):>7} "
              f"{ratio(r['ratio_to_floor']):>8}")
    for r in rows:
        if r["variant"] == "before" and (now := next((x for x in rows if x["variant"] == "consult" and
                                                      (x["size"], x["page_size"]) == (r["size"], r["page_size"])),
                                                     None)):
            print(f"  {r['size']} page {r['page_size']}: this tree's consult sync ÷ the code before = "
                  f"{now['min_s'] / r['min_s']:.2f} (min), {now['median_s'] / r['median_s']:.2f} (median)")
    if stages:
        print("\nStages inside the consult sync (best run): seconds, rows/s, share of the run, and how many MB the "
              "stage raised the process's peak RSS by (the rest is the imports and set-up before the sync); "
              "(gcN): the garbage collector's time in generation N, within the stages above")
        print(f"{'N':>7} {'variant':8} {'page':>5} {'stage':11} {'s':>8} {'rows/s':>8} {'share':>6} {'peak +MB':>9}")
        for s in stages:
            raised = s.get("peak_raised_mb")
            print(f"{s['size']:>7} {s['variant']:8} {s['page_size']:>5} {s['stage']:11} {s['seconds']:8.2f} "
                  f"{s['rows_per_s'] or '-':>8} {s['share']:6.0%} {'-' if raised is None else f'{raised:.0f}':>9}")
    print_targets(goals)


def write_results(out: Path, payload: dict, started: float) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"\nwritten {out} ({time.perf_counter() - started:.0f} s in all)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--page-sizes", default="1000,5000", help="for the floor and the consult sync")
    parser.add_argument("--flow-page-sizes", default="1000")
    parser.add_argument("--baseline-page-size", type=int, default=1000)
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--before", type=Path, metavar="SRC",
                        help="adds the variant `before`: the consult sync with another tree's src/ (e.g. "
                             "`git archive main src | tar -x -C /tmp/before`), interleaved with this tree's")
    parser.add_argument("--lean-from", type=int, help="from this size on, run only the floor and the consult "
                                                      "sync and no-op (no baseline, no flow)")
    parser.add_argument("--check", type=int, default=300, help="bulk vs OpenRosa OData check size (0: skip)")
    parser.add_argument("--profile", action="store_true", help="profile the consult sync (pyinstrument) at "
                                                                 "--profile-size, writing bench/results/profile-*")
    parser.add_argument("--profile-size", type=int, help="default: 10000 if measured, else the largest size")
    parser.add_argument("--cache-dir", type=Path, default=CACHE, help="where filled sandboxes are kept")
    parser.add_argument("--fill-chunk", type=int, default=CHUNK,
                        help="fills above this size go in chunks of it, each a later consultation period")
    parser.add_argument("--sqlite-pragma", action="append", default=[], metavar="PRAGMA",
                        help="an experiment: run `PRAGMA <PRAGMA>` on each reporting-DB connection of the "
                             "consult variant, e.g. --sqlite-pragma 'cache_size = -65536'")
    parser.add_argument("--commit-pages", type=int, metavar="N",
                        help="an experiment: pages per transaction of the consult variant "
                             "(SyncOptions.commit_pages; the code's default when not given)")
    parser.add_argument("--postgres", action="store_true",
                        help="also the consult sync into a fresh database of a throwaway local PostgreSQL "
                             "cluster (variant `postgres`, at every size but --million's)")
    parser.add_argument("--postgres-settings", default=POSTGRES_SETTINGS, help="that cluster's server options")
    parser.add_argument("--million", action="store_true",
                        help="also the floor and the consult sync at --million-size submissions (filled once "
                             "and cached: ~30 min for 1M), against the largest of --sizes")
    parser.add_argument("--million-size", type=int, default=1_000_000,
                        help="the size --million measures (a smaller one checks the flag cheaply)")
    parser.add_argument("--million-repeat", type=int, default=1)
    parser.add_argument("--with-command", type=int, metavar="N",
                        help="after the table, the whole `consult sync` command at N (as --command does)")
    parser.add_argument("--with-incremental", type=int, metavar="N",
                        help="after the table, 1 %% (or --incremental) new rows on a warehouse of N")
    parser.add_argument("--incremental", type=float, metavar="FRACTION",
                        help="instead of the table: per size, a full sync, then FRACTION × N new submissions "
                             "and the re-sync, with their ratio (issue 17: 0.01)")
    parser.add_argument("--incremental-before", type=Path, metavar="SRC",
                        help="with --incremental: also measure the consult package in SRC (another "
                             "worktree's src/), side by side")
    parser.add_argument("--incremental-seed", type=int, default=2026)
    parser.add_argument("--incremental-repeat", type=int, default=3, help="re-syncs per code (the full syncs: --repeat)")
    parser.add_argument("--command", action="store_true",
                        help="instead of the table: per size, the whole `consult sync` command (fresh process, "
                             "wall and peak RSS by /usr/bin/time -v) and its no-op re-run, against the floor")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.page_sizes = [int(p) for p in args.page_sizes.split(",")]
    args.flow_page_sizes = [int(p) for p in args.flow_page_sizes.split(",")]
    args.only = args.only.split(",") if args.only else None
    args.postgres = args.postgres or "postgres" in (args.only or ())
    args.load_average = {}
    args.values_checks = {}
    args.profile_size = args.profile_size or (10000 if 10000 in args.sizes else max(args.sizes))
    if args.million and args.million_size not in args.sizes:
        if args.million_size <= max(args.sizes):
            parser.error("--million-size must be above the --sizes it is compared with")
        args.sizes.append(args.million_size)
    if args.with_incremental and not args.incremental:
        args.incremental = 0.01
    facts = machine()
    started = time.perf_counter()
    log = lambda text: print(text, flush=True)
    modes = {"command": (bench_command, print_command, "the whole consult sync command, then again (no-op), "
                                                       "and the floor"),
             "incremental": (bench_incremental, print_incremental, f"full sync, then {args.incremental or 0:.0%} new "
                                                                   "submissions and the re-sync")}
    for mode, (bench, show, what) in modes.items():
        if getattr(args, mode) and not (mode == "incremental" and args.with_incremental):
            rows = []
            for size in args.sizes:
                log(f"N = {size}: {what}")
                rows += bench(size, args, log)
            show(rows)
            print_targets(issue17_targets([], rows if mode == "command" else [],
                                          rows if mode == "incremental" else [], None))
            write_results(args.out or RESULTS / f"{mode}-{'-'.join(str(s) for s in args.sizes)}.json", {
                "issue": 17, "written_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": facts,
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "repeat": args.repeat,
                "load_average": os.getloadavg(), "results": rows,
                "total_s": round(time.perf_counter() - started, 1),
            }, started)
            return
    check = None
    if args.check:
        check = check_same_odata(args.check, form=build_form(args.cache_dir / "forms"))
        log(f"bulk vs OpenRosa, {check['n']} submissions: same OData: {check['same']} {check['rows']} "
            f"(OpenRosa {check['openrosa_s']} s, bulk {check['bulk_s']} s)")
        if not check["same"]:
            raise SystemExit(f"the bulk loader's OData differs: {check['differences']}")
    measures: list[Measure] = []
    needs_prefect = any(v == "flow" for size in args.sizes for v, _ in plan(size, args))
    with ExitStack() as running:
        prefect_env = running.enter_context(PrefectServer()).env if needs_prefect else None
        args.databases = running.enter_context(PostgresDatabases(args.postgres_settings)) if args.postgres else None
        for size in args.sizes:
            log(f"N = {size}: {', '.join(f'{v}' + (f' p={p}' if p else '') for v, p in plan(size, args))}")
            measures += bench_size(size, args, prefect_env, log)
    command: list[dict] = []
    incremental: list[dict] = []
    if args.with_command:
        log(f"N = {args.with_command}: the whole consult sync command, then again (no-op), and the floor")
        load = {"start": os.getloadavg()}
        command = bench_command(args.with_command, args, log)
        args.load_average[f"command {args.with_command}"] = {**load, "end": os.getloadavg()}
    if args.with_incremental:
        log(f"N = {args.with_incremental}: full sync, then {args.incremental:.0%} new submissions and the re-sync")
        load = {"start": os.getloadavg()}
        incremental = bench_incremental(args.with_incremental, args, log)
        args.load_average[f"incremental {args.with_incremental}"] = {**load, "end": os.getloadavg()}
    rows, stages = table(measures), stage_rows(measures)
    goals = issue17_targets(measures, command, incremental, args.million_size if args.million else None)
    print_report(rows, stages, goals, facts)
    if command:
        print_command(command)
    if incremental:
        print_incremental(incremental)
    write_results(args.out or RESULTS / f"sync-{'-'.join(str(s) for s in args.sizes)}.json", {
        "issue": 17, "written_at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": facts,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "repeat": args.repeat,
        "lean_from": args.lean_from, "sqlite_pragmas": args.sqlite_pragma, "commit_pages": args.commit_pages,
        "postgres_settings": args.postgres_settings if args.postgres else None,
        "load_average": args.load_average, "bulk_vs_openrosa": check, "values_against_baseline": args.values_checks,
        "results": rows, "stages": stages,
        "command_results": command, "incremental_results": incremental,
        "targets": goals, "total_s": round(time.perf_counter() - started, 1),
        "notes": [
            "seconds: the work only, measured inside a fresh process (library imports outside, logins, GX "
            "context and table creation inside); process_wall_s_min includes interpreter start and imports",
            "peak_rss_mb: ru_maxrss of the measuring process (the sandbox server, the Prefect server and the "
            "PostgreSQL cluster are separate processes)",
            "the sandbox server runs on the same machine and shares its CPUs with the client; other "
            "processes may too (load_average, per size: 1, 5 and 15 minutes, at its start and end)",
            "write-back off; reporting DB: a fresh SQLite file per run, or a fresh PostgreSQL database "
            "(variant postgres) in a cluster started for the run",
        ]}, started)
    if not all(c["same"] for c in args.values_checks.values()):
        raise SystemExit("consult's database holds other values than the baseline's (values_against_baseline)")


if __name__ == "__main__":
    main()
