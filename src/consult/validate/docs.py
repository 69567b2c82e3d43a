"""The validation Data Docs of the latest sync, as static HTML that opens offline (`reports/validation/`).

GX's own Data Docs load Bootstrap, jQuery and their table plugins from CDNs and build their
tables in the browser, so in an office without internet they show a blank page. These pages are
rendered here from the same GX suites and results (`gx_context.take_latest`): one page per table
with every expectation, its verdict, counts and a sample of failing rows, and an index. Plain
HTML with inline CSS, no script, every text escaped: it opens from a USB stick.

Call `write_data_docs` once per sync, after the last page: it only renders results already
computed, so it adds no validation work and nothing to the per-page path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consult.output_dirs import claim

from . import gx_context

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.core import ExpectationSuiteValidationResult

SHOWN_ROWS = 20
"""Failing rows shown per expectation; the failures table in the database holds them all."""

STYLE = """
body { font-family: "Noto Sans", "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: #1d2b26;
       margin: 0 auto; max-width: 1100px; padding: 20px; line-height: 1.4; }
h1, h2 { color: #1f6f5c; } table { border-collapse: collapse; font-size: 13px; margin: 6px 0; width: 100%; }
th { background: #1f6f5c; color: #fff; text-align: left; padding: 4px 8px; }
td { border-bottom: 1px solid #d5e0db; padding: 4px 8px; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.ok { color: #1f6f5c; font-weight: 700; } .failed { color: #b5524a; font-weight: 700; }
.vi { color: #4a5a54; font-size: 12px; } code { font-size: 12px; word-break: break-all; }
"""


@dataclass(frozen=True)
class SuitePage:
    """One table's suite and the verdicts of its latest validated page."""

    name: str
    evaluated: int
    failed: int
    rows: int
    html: str

    @property
    def file(self) -> str:
        return f"validations/{self.name}.html"


def write_data_docs(reports_dir: Path) -> Path | None:
    """Write `reports_dir/validation/`; returns its index.html, or None when nothing was validated."""
    latest = gx_context.take_latest()
    if not latest:
        return None
    site = claim(reports_dir.resolve() / "validation", option="--reports")
    (site / "validations").mkdir(exist_ok=True)
    for old in (site / "validations").glob("*.html"):
        old.unlink()
    generated = datetime.now(UTC)
    pages = [_suite_page(name, suite, result, generated) for name, (suite, result) in sorted(latest.items())]
    for page in pages:
        (site / page.file).write_text(page.html, encoding="utf-8")
    index = site / "index.html"
    index.write_text(_index(pages, generated), encoding="utf-8")
    return index


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def _index(pages: list[SuitePage], generated: datetime) -> str:
    rows = "".join(
        f'<tr><td><a href="{escape(p.file)}">{escape(p.name)}</a></td><td class="num">{p.rows}</td>'
        f'<td class="num">{p.evaluated}</td><td class="num">{p.failed}</td>'
        f'<td class="{"failed" if p.failed else "ok"}">{"failed" if p.failed else "passed"}</td></tr>'
        for p in pages)
    return _document("Validation results", (
        f"<h1>Validation results</h1><p>Each table as the sync last judged it: the rows of every submission its latest pass loaded, "
        f"{escape(generated.strftime('%Y-%m-%d %H:%M UTC'))}. Failing submissions are quarantined; the "
        "database's <code>validation_failures</code> table lists every failure.</p>"
        "<table><thead><tr><th>table (expectation suite)</th><th>rows</th><th>expectations</th>"
        f"<th>failed</th><th>verdict</th></tr></thead><tbody>{rows}</tbody></table>"))


def _suite_page(name: str, suite: ExpectationSuite, result: ExpectationSuiteValidationResult,
                generated: datetime) -> SuitePage:
    rows, failed, element_count = [], 0, 0
    for expectation, outcome in zip(suite.expectations, result.results, strict=True):
        failed += not outcome.success
        detail: dict[str, Any] = outcome.result or {}
        element_count = max(element_count, int(detail.get("element_count") or 0))
        rows.append(_expectation_row(expectation, outcome.success, detail))
    body = (f'<p><a href="../index.html">← all tables</a></p><h1>{escape(name)}</h1>'
            f"<p>{len(rows)} expectations, {failed} failed, on the rows the latest pass loaded into this table "
            f"({escape(generated.strftime('%Y-%m-%d %H:%M UTC'))}).</p>"
            "<table><thead><tr><th>column</th><th>expectation</th><th>what it means</th><th>verdict</th>"
            f"<th>failing rows</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return SuitePage(name, len(rows), failed, element_count, _document(f"Validation: {name}", body))


def _expectation_row(expectation: Any, success: bool, detail: dict[str, Any]) -> str:
    kwargs = {k: v for k, v in expectation.configuration.kwargs.items() if k not in ("column", "batch_id")}
    rule = (expectation.meta or {}).get("rule", "")
    shown = ", ".join(f"{k}={_short(v)}" for k, v in sorted(kwargs.items()))
    meaning = escape(expectation.description or "") + (
        f'<div class="vi">{escape(expectation.notes)}</div>' if isinstance(expectation.notes, str) else "")
    if success:
        verdict, failing = '<span class="ok">passed</span>', ""
    else:
        count = detail.get("unexpected_count")
        share = detail.get("unexpected_percent")
        verdict = '<span class="failed">failed</span>' + (
            f"<br>{count} ({share:.1f} %)" if isinstance(count, int) and isinstance(share, (int, float)) else "")
        keys = detail.get("unexpected_index_list") or []
        failing = "<br>".join(escape(_row_key(k)) for k in keys[:SHOWN_ROWS])
        if len(keys) > SHOWN_ROWS:
            failing += f"<br>… {len(keys) - SHOWN_ROWS} more"
    return (f"<tr><td><code>{escape(str(expectation.column))}</code></td>"
            f"<td><code>{escape(type(expectation).__name__)}</code><br><span class=\"vi\">{escape(rule)} "
            f"{escape(shown)}</span></td><td>{meaning}</td><td>{verdict}</td><td><code>{failing}</code></td></tr>")


def _row_key(key: Any) -> str:
    """`uuid:… / <repeat row id>` for a failing row GX names by its key columns."""
    values = key.values() if isinstance(key, dict) else [key]
    return _short(" / ".join(str(v) for v in values if v not in (None, "")))


def _short(value: Any, limit: int = 160) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
