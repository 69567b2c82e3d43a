"""The sync benchmark runs end to end at a tiny size (figures are not checked: bench/ prints them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module's runs: the form is built (ODK Validate) once."""
    return tmp_path_factory.mktemp("bench-cache")


@pytest.mark.slow
def test_sync_bench_smallest_size(tmp_path: Path, bench_cache: Path):
    out = tmp_path / "sync.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "sync_bench.py"), "--sizes", "120", "--repeat", "1",
         "--only", "floor,baseline,consult,no-op", "--page-sizes", "50", "--baseline-page-size", "50",
         "--check", "30", "--cache-dir", str(bench_cache), "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "same OData: True" in done.stdout
    report = json.loads(out.read_text())
    rows = {(r["variant"], r["page_size"]): r for r in report["results"]}
    assert set(rows) == {("floor", 50), ("baseline", 50), ("consult", 50), ("no-op", 50)}
    assert rows[("consult", 50)]["detail"]["rows"] == 120
    assert rows[("consult", 50)]["detail"]["valid"] + rows[("consult", 50)]["detail"]["quarantined"] == 120
    assert rows[("no-op", 50)]["detail"]["not_modified"] is True
    assert report["machine"]["cpu_count"] >= 1
    assert {s["stage"] for s in report["stages"]} >= {"pull", "records", "validate", "load"}
    values = report["values_against_baseline"]["120"]
    assert values["same"] and values["columns"] == 63 and values["rows"]["province_consultation"] == 120
    assert "consult's values against the baseline's" in done.stdout


@pytest.mark.slow
def test_sync_bench_postgres_and_million_flags(tmp_path: Path, bench_cache: Path):
    """`--postgres` syncs into a throwaway PostgreSQL cluster and `--million` adds a larger,
    chunk-filled size; both reach issue 17's target table (tiny sizes: the flags, not the figures)."""
    out = tmp_path / "sync.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "sync_bench.py"), "--sizes", "60", "--repeat", "1",
         "--only", "consult", "--page-sizes", "60", "--check", "0", "--postgres",
         "--million", "--million-size", "150", "--fill-chunk", "60",
         "--cache-dir", str(bench_cache), "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    report = json.loads(out.read_text())
    rows = {(r["size"], r["variant"]): r for r in report["results"]}
    assert set(rows) == {(60, "consult"), (60, "postgres"), (150, "floor"), (150, "consult")}
    assert rows[(60, "postgres")]["detail"]["database"] == "postgresql"
    assert rows[(60, "consult")]["detail"]["database"] == "sqlite"
    pg = rows[(60, "postgres")]["detail"]
    assert pg["rows"] == 60 and pg["valid"] == 60  # chunk 0 of a fill is the plain fill: all correct
    big = rows[(150, "consult")]["detail"]
    assert big["rows"] == 150 and big["valid"] == 150  # chunks in later periods: no duplicate interviews
    targets = {t["measure"]: t for t in report["targets"]}
    assert targets["PostgreSQL 60 (local server, COPY), vs SQLite"]["met"] is not None
    assert "x" in targets["150 sandbox submissions, vs 60"]["measured"]
    assert targets["peak RSS growth, 150 / 60"]["met"] is not None
    assert "Issue 17's targets" in done.stdout


@pytest.mark.slow
def test_page_rules_bench_splits_a_page_cost_and_names_the_rules(bench_cache: Path):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "page_rules_bench.py"), "--size", "120", "--page-sizes", "40,120",
         "--repeat", "1", "--cache-dir", str(bench_cache)],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "120 submissions of province_consultation" in done.stdout
    assert "page    40:    3 pages" in done.stdout and "page   120:    1 pages" in done.stdout
    assert "fixed cost of a page" in done.stdout
    assert "required_if_relevant members member_name" in done.stdout


@pytest.mark.slow
def test_the_whole_command_says_where_its_time_went(tmp_path: Path, bench_cache: Path):
    """`--command`: the command's own run record splits its time between the forms and the entity lists."""
    out = tmp_path / "command.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "sync_bench.py"), "--command", "--sizes", "120", "--repeat", "1",
         "--page-sizes", "50", "--check", "0", "--cache-dir", str(bench_cache), "--out", str(out)],
        capture_output=True, text=True, timeout=180, cwd=REPO, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    rows = {r["what"]: r for r in json.loads(out.read_text())["results"]}
    command, noop = rows["command"], rows["no-op command"]
    assert 0 < command["forms_s"] + command["entity_lists_s"] < command["min_s"]
    assert command["entity_lists_s"] > noop["entity_lists_s"]  # the first sync reads every entity's versions
    assert "versions read" in done.stdout


def test_a_resumed_fill_generates_the_same_interviews_after_those_it_holds(bench_cache: Path):
    """A fill that stopped resumes after the submissions it holds: the chunks it skips whole are not
    generated, and what follows is exactly the rest of a fill from the start."""
    sys.path.insert(0, str(REPO / "bench"))
    import fill

    form = fill.build_form(bench_cache / "forms")
    whole = [xml for chunk in fill.interview_chunks(form, 25, seed=7, chunk=10) for xml in chunk]
    for skip in (0, 10, 13, 25):
        rest = [xml for chunk in fill.interview_chunks(form, 25, seed=7, chunk=10, skip=skip) for xml in chunk]
        assert rest == whole[skip:], skip
    assert len(whole) == 25 and len(set(whole)) == 25
