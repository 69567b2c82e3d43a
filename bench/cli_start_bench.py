"""A no-op sync as an analyst types it: `consult sync` against `python -m consult.sync`, side by side.

Issue 14 / 17 (start-up): with nothing new in Central, the whole `consult sync` command must cost
at most 1.3× the bare module sync and under 2 s on an idle 2-core machine (5 forms). Both run in
fresh processes, interleaved round after round, against one sandbox Central holding the five
forms' fieldwork and one SQLite database a first sync filled, so each run is 5 conditional GETs
answered 304 plus whatever the command costs to start and finish.

    PYTHONPATH=src:. .venv/bin/python bench/cli_start_bench.py --runs 7

The built forms are kept in build/bench-cache/cli-start/ (keyed by a hash of forms/), so only the
first run pays for ODK Validate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "build" / "bench-cache" / "cli-start"
PROJECT = "ISG Consultations"
LIMITS = {"ratio": 1.3, "seconds": 2.0}


def forms_hash(forms_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in forms_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(forms_dir)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def built_forms() -> Path:
    """The five forms built once per version of forms/ (ODK Validate costs ~2 s a form)."""
    from consult.forms import FormSources, build_forms

    out = CACHE / forms_hash(REPO / "forms")
    if not (out / ".complete").is_file():
        shutil.rmtree(out, ignore_errors=True)
        sources = FormSources(REPO / "forms")
        reports = build_forms(sources.xlsforms(), sources.media_dir, out)
        bad = [str(i) for r in reports for i in r.issues if not r.ok]
        if bad:
            raise SystemExit(f"the forms do not build: {bad}")
        (out / ".complete").write_text("ok")
    return out


def fill(server, build_dir: Path) -> None:
    """Deploy the five forms and send a round of fieldwork, as the tests' sandbox does."""
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
    from consult.forms import FormSchema

    form_ids = sorted(p.name.removesuffix(".schema.json") for p in build_dir.glob("*.schema.json"))
    settings = CentralSettings(url=server.url, username=server.admin_email, password=server.admin_password,
                               project=PROJECT)
    with CentralSession(settings) as central:
        project_id = resolve_project(central, PROJECT)
        deploy_forms(central, project_id, [BuiltForm.load(build_dir, f) for f in form_ids])
        (team,) = ensure_teams(central, project_id, [FieldTeam(name="Đội đo", forms=form_ids)])
    schemas = {f: FormSchema.read(build_dir / f"{f}.schema.json") for f in form_ids}
    with collect_session() as session:
        for interview in fieldwork(schemas, seed=11, scale=0.5):
            submit(session, settings.base_url, project_id, team.token, interview.xml, interview.attachments)


FLOW = """import sys
from flows.sync_submissions import sync_submissions
for s in sync_submissions(build_dir=sys.argv[1], database=sys.argv[2], reports_dir=sys.argv[3]):
    print('not modified' if s.not_modified else s.form_id)
"""


def commands(build_dir: Path, db: str, reports: Path, options: bool) -> dict[str, list[str]]:
    """The two measured commands; with `options`, the ways tried and dropped, for bench/README.md."""
    consult = Path(sys.executable).parent / "consult"
    cli = [str(consult)] if consult.is_file() else [sys.executable, "-c", "from consult.cli import app; app()"]
    common = ["--build-dir", str(build_dir), "--db", db]
    outputs = ["--reports", str(reports), "--attachments-dir", str(reports.parent / "attachments")]
    measured = {
        "consult sync": [*cli, "sync", *common, *outputs],
        "python -m consult.sync": [sys.executable, "-m", "consult.sync", *common],
    }
    if options:
        measured |= {
            "flow, temporary Prefect server": [sys.executable, "-c", FLOW, str(build_dir), db, str(reports)],
            "consult sync, Prefect imported": [sys.executable, "-c", ("import prefect\nfrom consult.cli import app\n"
                                                                     "app()"), "sync", *common, *outputs],
        }
    return measured


def timed(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one fresh process, which must have found nothing to do for any of the 5 forms."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    quiet = done.stdout.count("not modified") + done.stdout.count('"not_modified": true')
    if quiet < 5:
        raise SystemExit(f"not a no-op of 5 forms:\n{done.stdout}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="rounds; each runs both commands once")
    parser.add_argument("--options", action="store_true",
                        help="also time the flow on a temporary Prefect server and the CLI with Prefect imported")
    args = parser.parse_args()

    from consult.sandbox import SandboxServer

    build_dir = built_forms()
    with tempfile.TemporaryDirectory(prefix="cli-start-") as tmp, SandboxServer() as server:
        fill(server, build_dir)
        env = {**os.environ, "CONSULT_CENTRAL_URL": server.url, "CONSULT_CENTRAL_USER": server.admin_email,
               "CONSULT_CENTRAL_PASSWORD": server.admin_password, "CONSULT_CENTRAL_PROJECT": PROJECT,
               "COLUMNS": "200"}
        env.pop("PREFECT_API_URL", None)
        db = f"sqlite:///{Path(tmp) / 'reporting.db'}"
        runs = commands(build_dir, db, Path(tmp) / "reports", args.options)
        first = subprocess.run([*runs["python -m consult.sync"], "--write-back"], env=env, cwd=REPO,
                               capture_output=True, text=True, check=False)
        if first.returncode != 0:
            raise SystemExit(f"the first sync failed:\n{first.stderr}")
        for command in runs.values():  # warm the file cache; the no-op ETags are in place after the first sync
            timed(command, env)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.runs):
            for name, command in runs.items():
                times[name].append(timed(command, env))
    load = os.getloadavg()
    cli, module = times["consult sync"], times["python -m consult.sync"]
    print(f"no-op sync of 5 forms, {args.runs} fresh processes each, interleaved "
          f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores)")
    print(f"{'command':32} {'min s':>7} {'median s':>9} {'max s':>7} {'÷ module (min)':>15}")
    for name, values in times.items():
        print(f"{name:32} {min(values):7.2f} {statistics.median(values):9.2f} {max(values):7.2f} "
              f"{min(values) / min(module):15.2f}")
    ratio_min, ratio_median = min(cli) / min(module), statistics.median(cli) / statistics.median(module)
    print(f"{'ratio consult / module':32} {ratio_min:7.2f} {ratio_median:9.2f}")
    met = ratio_min <= LIMITS["ratio"] and min(cli) < LIMITS["seconds"]
    print(f"target: ≤ {LIMITS['ratio']}× and < {LIMITS['seconds']:.0f} s → {'met' if met else 'missed'}")
    print(json.dumps({"runs": args.runs, "load": load, "seconds": times}, separators=(",", ":")))


if __name__ == "__main__":
    main()
