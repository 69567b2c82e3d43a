"""The sync benchmark runs end to end at a tiny size (figures are not checked: bench/ prints them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_sync_bench_smallest_size(tmp_path: Path):
    out = tmp_path / "sync.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "sync_bench.py"), "--sizes", "120", "--repeat", "1",
         "--only", "floor,baseline,consult,no-op", "--page-sizes", "50", "--baseline-page-size", "50",
         "--check", "30", "--cache-dir", str(tmp_path / "cache"), "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=REPO)
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
