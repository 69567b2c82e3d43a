"""Consultation findings: tables computed from the reporting database, rendered for the ISG Office.

    findings = compute_findings(engine, schemas, lang="vi")   # valid, live submissions only
    write_html(findings, Path("reports/findings-vi.html"))    # self-contained, charts inline
    write_workbook(findings, Path("reports/findings-vi.xlsx"))
    markdown_summary(findings)                                # for a Prefect artifact

`compile_report` does all three for `consult report`.
"""

from __future__ import annotations

from .compute import compute_findings
from .html import write_html
from .markdown import markdown_summary
from .model import (
    LANGUAGES,
    Chart,
    ChartKind,
    Column,
    Findings,
    Headline,
    Kind,
    Lang,
    Section,
    Table,
    Unsummarised,
)
from .report import ReportPaths, compile_report, load_schemas, report_paths, reporting_engine, write_report
from .workbook import write_workbook

__all__ = ["LANGUAGES", "Chart", "ChartKind", "Column", "Findings", "Headline", "Kind", "Lang", "ReportPaths",
           "Section", "Table", "compile_report", "compute_findings", "load_schemas", "markdown_summary",
           "report_paths", "reporting_engine", "write_html", "write_report", "write_workbook",
           "Unsummarised"]
