"""The page rules alone: what judging one page costs, split into a cost per page and a cost per submission.

Issue 17 (validation ≥ 50k rows/s): the page rules (relevance, cascading choices, the profile's
rules; pandas over each page) are the validation a sync pays per page. This pulls a sandbox
fill's submissions once (`fill.prepared_sandbox`, cached in build/bench-cache/), builds their
records, then judges them in pages of each size, best of `--repeat`, in this one process: no
network, no database. A straight line through (pages, seconds) gives the fixed cost of a page
(pandas calls per rule, whatever the page's size) and the cost of a submission; the per-rule table
says which rules hold that cost.

    PYTHONPATH=src:. .venv/bin/python bench/page_rules_bench.py --size 10000 --page-sizes 200,1000,5000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench"), str(REPO / "src")]

from fill import CACHE, prepared_sandbox

from consult.central.pull import SubmissionQuery, pull_submissions
from consult.central.session import CentralSession
from consult.validate.page import Page
from consult.validate.report import ValidationContext
from consult.validate.run import judge_page, ruleset
from consult.warehouse.records import RecordBuilder


def odata_rows(size: int, cache: Path) -> tuple[object, list[dict]]:
    with prepared_sandbox(size, cache=cache) as filled, CentralSession(filled.settings) as central:
        query = SubmissionQuery(filled.project_id, filled.form.schema.form_id, page_size=5000)
        return filled.form.schema, [row for page in pull_submissions(central, query) for row in page.rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10000, help="submissions of the cached fill to judge")
    parser.add_argument("--page-sizes", default="200,1000,5000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    args = parser.parse_args()
    schema, rows = odata_rows(args.size, args.cache_dir)
    builder, context = RecordBuilder(schema), ValidationContext(today=date.today())
    print(f"{len(rows)} submissions of {schema.form_id}, {len(ruleset(schema).rules)} page rules")
    points = []
    for size in [int(s) for s in args.page_sizes.split(",")]:
        pages = [builder.build(rows[i:i + size]) for i in range(0, len(rows), size)]
        judge_page(schema, pages[0], context)  # the ruleset, built once per form, outside the clock
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            for page in pages:
                judge_page(schema, page, context)
            times.append(time.perf_counter() - started)
        points.append((len(pages), min(times)))
        print(f"  page {size:>5}: {len(pages):>4} pages, best {min(times):.3f} s, median {statistics.median(times):.3f} s, "
              f"{len(rows) / min(times):,.0f} submissions/s")
    if len(points) > 1:
        slope, intercept = statistics.linear_regression([p for p, _ in points], [s for _, s in points])
        print(f"fixed cost of a page {slope * 1000:.1f} ms; the rest {intercept / len(rows) * 1e6:.1f} µs per submission")
    size = int(args.page_sizes.split(",")[-1 if len(points) == 1 else 1])
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
