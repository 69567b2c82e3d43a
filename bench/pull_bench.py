"""How fast `consult.central.pull_submissions` pages a form's submissions out of the sandbox.

Fills a fresh sandbox with N province_consultation submissions over OpenRosa (as ODK
Collect sends them, 8 at a time), then pulls them page by page with `$expand=*`:
- floor: plain `requests` following nextLink, JSON parsed and dropped;
- consult: `pull_submissions` (the same pages through our client);
- one-shot: the whole table in one response, for comparison.
Each is run --repeat times; min and median are printed with the consult/floor ratio, and
the table is written to bench/results/pull-<N>.json.

    .venv/bin/python bench/pull_bench.py --n 10000
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from consult.central import (  # noqa: E402
    BuiltForm,
    CentralSession,
    CentralSettings,
    SubmissionQuery,
    collect_session,
    deploy_forms,
    ensure_teams,
    pull_submissions,
    resolve_project,
    submit,
)
from consult.central.teams import FieldTeam  # noqa: E402
from consult.forms import FormSources, build_forms  # noqa: E402
from consult.sandbox import SandboxServer  # noqa: E402

NAMES = ["Nguyễn Thị Hoà", "Trần Văn Đức", "Lê Thị Thu Hương", "Thạch Sa Ra", "Phạm Quốc Việt", "Đặng Thị Mỹ"]
PROVINCES = ["thai_nguyen", "thanh_hoa", "tra_vinh", "soc_trang", "an_giang"]


def submission_xml(version: str, rng: random.Random, n: int) -> bytes:
    members = rng.choice([0, 1, 2, 3])
    willing = "yes" if members else rng.choice(["no", "undecided"])
    member_xml = "".join(
        f"<members><member_name>{rng.choice(NAMES)} {i}</member_name><member_agency>dard</member_agency>"
        f"<member_position/><member_gender>{rng.choice(['female', 'male'])}</member_gender><member_phone/>"
        f"<member_email/><member_role>{'lead' if i == 1 else 'member'}</member_role></members>"
        for i in range(1, members + 1))
    reasons = "" if willing == "yes" else "<reasons_not_joining>no_staff no_budget</reasons_not_joining>"
    return (
        f'<data xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" '
        f'id="province_consultation" version="{version}">'
        f"<start_time>2004-06-15T08:00:00.000+07:00</start_time><end_time>2004-06-15T09:10:00.000+07:00</end_time>"
        f"<today>2004-06-15</today><deviceid>collect:bench{n % 7}</deviceid><username>bench</username>"
        f"<interview><consultation_date>2004-06-{rng.randint(1, 28):02d}</consultation_date>"
        f"<interview_mode>in_person</interview_mode><location>9.60 105.97 12.5 4.0</location></interview>"
        f"<respondent><province>{rng.choice(PROVINCES)}</province><agency>dard</agency>"
        f"<respondent_name>{rng.choice(NAMES)}</respondent_name><position/><gender>female</gender>"
        f"<phone>0913{n:06d}</phone><email/></respondent>"
        f"<planning><cprgs_awareness>well</cprgs_awareness><mpi_2215_received>yes</mpi_2215_received>"
        f"<mpi_2215_used>partly</mpi_2215_used></planning>"
        f"<engagement><interest_level>{rng.randint(1, 5)}</interest_level><willing_to_join>{willing}"
        f"</willing_to_join>{reasons}</engagement>"
        + (f"<member_count>{members}</member_count>{member_xml}" if members else "")
        + "<priorities><priority_topics>cprgs_ard results_based_planning</priority_topics>"
        "<preferred_activities>dialogue_meetings training_workshops</preferred_activities></priorities>"
        f"<commitment><staff_days>{rng.randint(0, 400)}</staff_days><budget_mvnd>{rng.randint(0, 900)}.5"
        f"</budget_mvnd><constraints/><support_needed>training</support_needed></commitment><comments/>"
        f"<meta><instanceID>uuid:00000000-0000-4000-8000-{n:012d}</instanceID></meta></data>"
    ).encode("utf-8")


def fill(server: SandboxServer, n: int) -> tuple[CentralSession, int, float]:
    out = REPO / "build" / "bench-forms"
    reports = build_forms([FormSources(REPO / "forms").forms_dir / "province_consultation.xlsx"],
                          REPO / "forms" / "media", out)
    assert all(r.ok for r in reports)
    settings = CentralSettings(url=server.url, username=server.admin_email, password=server.admin_password)
    central = CentralSession(settings)
    project_id = resolve_project(central, "Bench")
    form = BuiltForm.load(out, "province_consultation")
    deploy_forms(central, project_id, [form])
    (team,) = ensure_teams(central, project_id, [FieldTeam(name="Bench", forms=["province_consultation"])])
    rng = random.Random(2004)
    bodies = [submission_xml(form.schema.version, rng, i) for i in range(n)]
    started = time.perf_counter()

    def send(chunk: list[bytes]) -> None:
        with collect_session() as session:
            for body in chunk:
                submit(session, settings.base_url, project_id, team.token, body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, [bodies[i::8] for i in range(8)]))
    return central, project_id, time.perf_counter() - started


def floor_pull(url: str, token: str, page_size: int) -> int:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    next_url: str | None = f"{url}?$expand=*&$top={page_size}&$count=true"
    rows = 0
    while next_url:
        body = session.get(next_url, timeout=120).json()
        rows += len(body["value"])
        next_url = body.get("@odata.nextLink")
    return rows


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with SandboxServer() as server:
        central, project_id, fill_seconds = fill(server, args.n)
        token = central.http.auth.login().removeprefix("Bearer ")
        url = f"{server.url}/v1/projects/{project_id}/forms/province_consultation.svc/Submissions"
        query = SubmissionQuery(project_id, "province_consultation", page_size=args.page_size)
        pages = -(-args.n // args.page_size)

        def consult_pull() -> None:
            assert sum(len(p.rows) for p in pull_submissions(central, query)) == args.n

        def floor() -> None:
            assert floor_pull(url, token, args.page_size) == args.n

        def one_shot() -> None:
            assert floor_pull(url, token, args.n + 1) == args.n

        results = {name: timed(fn, args.repeat) for name, fn in
                   (("floor (requests, nextLink)", floor), ("consult pull_submissions", consult_pull),
                    ("one-shot request", one_shot))}
    base = min(results["floor (requests, nextLink)"])
    print(f"\n{args.n} submissions, $expand=*, $top={args.page_size} ({pages} pages); filled over OpenRosa in "
          f"{fill_seconds:.1f} s ({args.n / fill_seconds:.0f}/s); {platform.processor() or platform.machine()}")
    print(f"{'how':32} {'min s':>7} {'median s':>9} {'pages/s':>8} {'rows/s':>8} {'÷ floor':>8}")
    table = []
    for name, times in results.items():
        best = min(times)
        row = {"how": name, "min_s": round(best, 3), "median_s": round(statistics.median(times), 3),
               "pages_per_s": round(pages / best, 1), "rows_per_s": round(args.n / best),
               "ratio_to_floor": round(best / base, 2)}
        table.append(row)
        print(f"{name:32} {row['min_s']:7.3f} {row['median_s']:9.3f} {row['pages_per_s']:8.1f} "
              f"{row['rows_per_s']:8d} {row['ratio_to_floor']:8.2f}")
    out = REPO / "bench" / "results" / f"pull-{args.n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n": args.n, "page_size": args.page_size, "fill_s": round(fill_seconds, 2),
                               "results": table}, indent=1) + "\n", encoding="utf-8")
    print(f"written {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
