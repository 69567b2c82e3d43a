"""The sync's validation moves what its imports built out of the garbage collector's sight, once.

Run in a fresh interpreter: the freeze is per process, and this test process has judged pages
already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from consult.forms import FormSchema

from .submissions import VALID, odata_row

SCRIPT = """
import gc, json, sys
from datetime import date
from pathlib import Path
from consult.forms.schema import FormSchema
from consult.sync import judge_page
from consult.validate import ValidationContext
from consult.warehouse.records import RecordBuilder

schema = FormSchema.read(Path(sys.argv[1]))
records = RecordBuilder(schema).build(json.loads(Path(sys.argv[2]).read_text(encoding="utf-8")))
before = gc.get_freeze_count()
failures = judge_page(schema, records, ValidationContext(date(2025, 1, 15)))
first = gc.get_freeze_count()
kept = [{"n": n} for n in range(100_000)]
judge_page(schema, records, ValidationContext(date(2025, 1, 15)))
print(json.dumps({"before": before, "first": first, "second": gc.get_freeze_count(), "failures": len(failures)}))
"""


def test_first_page_freezes_the_imports_and_later_pages_do_not(schemas: dict[str, FormSchema],
                                                                 tmp_path: Path) -> None:
    schema = schemas["province_consultation"]
    schema.write(tmp_path / "schema.json")
    rows = [odata_row(schema, "uuid:gc-1", VALID["province_consultation"])]
    (tmp_path / "rows.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "schema.json"), str(tmp_path / "rows.json")],
                          capture_output=True, text=True, timeout=120, check=True)
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["before"] == 0
    assert counts["first"] > 100_000  # pandas, GX and the ruleset: hundreds of thousands of objects
    assert counts["second"] == counts["first"]  # the 100,000 dicts made since were not frozen
    assert counts["failures"] == 0
