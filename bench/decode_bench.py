"""OData page decoding: `response.json()` (requests + the standard library) against
`consult.central.pull.decode_page` (orjson, with the same fallback), on the pages a sync reads.

The pages of a filled sandbox (`fill.prepared_sandbox`, cached) are fetched once with
`$expand=*`; then each decoder reads every page, interleaved, `--repeat` times; min and
median per decoder and their ratio. Then the whole `pull_submissions` (HTTP included) with
each decoder, interleaved, the same way.

    PYTHONPATH=src:. .venv/bin/python bench/decode_bench.py --n 10000 --repeat 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "src", REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import requests
from fill import CACHE, prepared_sandbox

from consult.central import CentralSession, SubmissionQuery, pull_submissions
from consult.central import pull as pull_module

DECODERS = {"response.json()": lambda response: response.json(), "orjson (decode_page)": pull_module.decode_page}


def fetch_pages(central: CentralSession, query: SubmissionQuery) -> list[requests.Response]:
    pages, url, params = [], query.path(central), query.params()
    while url:
        response = central.request("GET", url, params=params)
        pages.append(response)
        url, params = response.json().get("@odata.nextLink"), None
    return pages


def summary(times: dict[str, list[float]]) -> None:
    baseline = min(times["response.json()"])
    for name, seconds in times.items():
        print(f"  {name:22} min {min(seconds):7.3f} s  median {statistics.median(seconds):7.3f} s  "
              f"÷ response.json() {min(seconds) / baseline:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    args = parser.parse_args()
    with prepared_sandbox(args.n, cache=args.cache_dir) as filled, CentralSession(filled.settings) as central:
        query = SubmissionQuery(filled.project_id, filled.spec()["form_id"], page_size=args.page_size)
        pages = fetch_pages(central, query)
        megabytes = sum(len(p.content) for p in pages) / 1e6
        print(f"{args.n} submissions, {len(pages)} pages of {args.page_size}, {megabytes:.1f} MB of JSON")
        decoded = {name: [decode(p) for p in pages] for name, decode in DECODERS.items()}
        same = decoded["response.json()"] == decoded["orjson (decode_page)"]
        print(f"same values from both decoders: {same}")
        if not same:
            raise SystemExit(1)
        del decoded
        times: dict[str, list[float]] = {name: [] for name in DECODERS}
        for _ in range(args.repeat):
            for name, decode in DECODERS.items():
                started = time.perf_counter()
                for page in pages:
                    decode(page)
                times[name].append(time.perf_counter() - started)
        print("decoding the pages alone:")
        summary(times)
        times = {name: [] for name in DECODERS}
        for _ in range(args.repeat):
            for name, decode in DECODERS.items():
                pull_module.decode_page = decode
                started = time.perf_counter()
                rows = sum(len(page.rows) for page in pull_submissions(central, query))
                times[name].append(time.perf_counter() - started)
                assert rows == args.n, rows
        pull_module.decode_page = DECODERS["orjson (decode_page)"]
        print("pull_submissions, HTTP included:")
        summary(times)


if __name__ == "__main__":
    main()
