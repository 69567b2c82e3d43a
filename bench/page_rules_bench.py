"""The page rules alone: what judging one page costs, split into a cost per page and a cost per submission.

Issue 17 (validation ≥ 50k rows/s): the page rules (relevance, cascading choices, the profile's
rules; pandas over each page) are the validation a sync pays per page. This pulls a sandbox
fill's submissions once (`fill.prepared_sandbox`, cached in build/bench-cache/), builds their
records, then judges them in pages of each size, best of `--repeat`, in this one process: no
network, no database. A straight line through (pages, seconds) gives the fixed cost of a page
(pandas calls per rule, whatever the page's size) and the cost of a submission; the per-rule table
says which rules hold that cost.

`--before SRC` judges the same submissions with another tree's src/ as well (e.g. `git archive
main src | tar -x -C /tmp/before`): each code in a process of its own, one round of each in turn,
`--repeat` rounds; it prints the best of each and their ratio.

    PYTHONPATH=src:. .venv/bin/python bench/page_rules_bench.py --size 10000 --page-sizes 200,1000,5000
    PYTHONPATH=src:. .venv/bin/python bench/page_rules_bench.py --size 10000 --page-sizes 1000,5000 --before /tmp/before/src
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = Path(os.environ.get("CONSULT_BENCH_SRC") or REPO / "src")
"""The consult judged: this tree's, or `--before`'s in its own process."""
sys.path[:0] = [str(REPO / "bench"), str(CODE)]

from fill import CACHE, prepared_sandbox

from consult.central.pull import SubmissionQuery, pull_submissions
from consult.central.session import CentralSession
from consult.forms.schema import FormSchema
from consult.validate.page import Page
from consult.validate.report import ValidationContext
from consult.validate.run import judge_page, ruleset
from consult.warehouse.records import RecordBuilder

VALIDATION_DAY = date(2026, 12, 5)
"""Fixed, so that two codes (and two days) judge alike."""


def odata_rows(size: int, cache: Path) -> tuple[FormSchema, list[dict]]:
    with prepared_sandbox(size, cache=cache) as filled, CentralSession(filled.settings) as central:
        query = SubmissionQuery(filled.project_id, filled.form.schema.form_id, page_size=5000)
        return filled.form.schema, [row for page in pull_submissions(central, query) for row in page.rows]


def best_times(schema: FormSchema, rows: list[dict], sizes: list[int], repeat: int) -> dict[int, list[float]]:
    """Seconds to judge every row in pages of each size, `repeat` times per size."""
    builder, context = RecordBuilder(schema), ValidationContext(today=VALIDATION_DAY)
    times: dict[int, list[float]] = {}
    for size in sizes:
        pages = [builder.build(rows[i:i + size]) for i in range(0, len(rows), size)]
        judge_page(schema, pages[0], context)  # the ruleset, built once per form, outside the clock
        times[size] = []
        for _ in range(repeat):
            started = time.perf_counter()
            for page in pages:
                judge_page(schema, page, context)
            times[size].append(time.perf_counter() - started)
    return times


def side_by_side(schema: FormSchema, rows: list[dict], sizes: list[int], repeat: int, before: Path) -> None:
    """This tree's code and `before`'s, each round in two fresh processes, on the same rows."""
    with tempfile.TemporaryDirectory(prefix="page-rules-") as folder:
        schema_path, rows_path = Path(folder) / "schema.json", Path(folder) / "rows.json"
        schema.write(schema_path)
        rows_path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        seen: dict[str, dict[int, list[float]]] = {"this": defaultdict(list), "before": defaultdict(list)}
        for _ in range(repeat):
            for name, code in (("before", before.resolve()), ("this", REPO / "src")):
                done = subprocess.run(
                    [sys.executable, __file__, "--judge", str(schema_path), str(rows_path),
                     "--page-sizes", ",".join(map(str, sizes))],
                    env={**os.environ, "CONSULT_BENCH_SRC": str(code)}, capture_output=True, text=True, check=True)
                for size, seconds in json.loads(done.stdout.splitlines()[-1]).items():
                    seen[name][int(size)] += seconds
    print(f"{len(rows)} submissions, best of {repeat} rounds (this tree against {before}):")
    for size in sizes:
        this, then = min(seen["this"][size]), min(seen["before"][size])
        print(f"  page {size:>5}: this {this:.3f} s ({len(rows) / this:,.0f} submissions/s), "
              f"before {then:.3f} s ({len(rows) / then:,.0f}/s): {this / then:.2f}x the time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10000, help="submissions of the cached fill to judge")
    parser.add_argument("--page-sizes", default="200,1000,5000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    parser.add_argument("--before", type=Path, metavar="SRC", help="another tree's src/, judged side by side")
    parser.add_argument("--judge", nargs=2, type=Path, metavar=("SCHEMA", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.page_sizes.split(",")]
    if args.judge:  # one round of `side_by_side`, in the process of the code it measures
        rows = json.loads(args.judge[1].read_text(encoding="utf-8"))
        print(json.dumps(best_times(FormSchema.read(args.judge[0]), rows, sizes, 1)))
        return
    schema, rows = odata_rows(args.size, args.cache_dir)
    if args.before:
        side_by_side(schema, rows, sizes, args.repeat, args.before)
        return
    context = ValidationContext(today=VALIDATION_DAY)
    print(f"{len(rows)} submissions of {schema.form_id}, {len(ruleset(schema).rules)} page rules")
    points = []
    for size, times in best_times(schema, rows, sizes, args.repeat).items():
        pages = -(-len(rows) // size)
        points.append((pages, min(times)))
        print(f"  page {size:>5}: {pages:>4} pages, best {min(times):.3f} s, median {statistics.median(times):.3f} s, "
              f"{len(rows) / min(times):,.0f} submissions/s")
    if len(points) > 1:
        slope, intercept = statistics.linear_regression([p for p, _ in points], [s for _, s in points])
        print(f"fixed cost of a page {slope * 1000:.1f} ms; the rest {intercept / len(rows) * 1e6:.1f} µs per submission")
    size = sizes[-1 if len(points) == 1 else 1]
    builder = RecordBuilder(schema)
    pages = [builder.build(rows[i:i + size]) for i in range(0, len(rows), size)]
    cost: dict[str, float] = defaultdict(float)
    for page_records in pages:
        page = Page(schema, page_records, context)
        for rule in ruleset(schema).rules:
            started = time.perf_counter()
            rule.failures(page)
            cost[f"{rule.name} {getattr(rule, 'table', '') or '(form)'} {getattr(rule, 'field', '')}".strip()] += (
                time.perf_counter() - started)
    print(f"per rule, page {size} (the first rule to read a table also builds its columns):")
    for name, seconds in sorted(cost.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / len(pages) * 1000:6.2f} ms a page  {name}")


if __name__ == "__main__":
    main()
