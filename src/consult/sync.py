"""One form's sync: Central OData pages → records → validation → the reporting database.

Exactly once: each page's rows, its validation results and the watermark advance commit
in one transaction, so a sync killed anywhere and run again leaves the database as an
uninterrupted one would. The watermark only moves forward and the pull re-reads a small
overlap, which the upsert absorbs.

Write-back is made idempotent on Central's side, not ours: before commenting, the
submission's comments are read, and a comment already there is not written again, so a
kill between Central's answer and our bookkeeping cannot duplicate it. Writing a review
changes the form's data on Central, so the sync pulls once more afterwards and keeps the
ETag of that last, quiet pull: the next sync then gets a 304 and stops at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from consult.central import (
    CentralError,
    CentralSession,
    CentralSettings,
    ReviewState,
    SubmissionQuery,
    pull_submissions,
    read_ahead,
    resolve_project,
    submission_ids,
)
from consult.central.review import comments, write_review
from consult.forms.schema import FormSchema
from consult.validate import ValidationContext, validate_records
from consult.warehouse.database import create_engine_for, database_url
from consult.warehouse.load import (
    FailureRow,
    LoadCounts,
    advance_watermark,
    failures_hash,
    load_page,
    mark_deleted,
    mark_purged,
    read_watermark,
    recheck_duplicates,
    record_write_back,
    remember_etag,
    written_back,
)
from consult.warehouse.locks import FormBusy, form_lock
from consult.warehouse.records import FormLayout, FormRecords, RecordBuilder
from consult.warehouse.tables import ensure_schema
from consult.warehouse.verdicts import quarantined_ids, verdicts_of

MAX_PASSES = 4


@dataclass
class Pulled:
    """What one pass over the pages saw."""

    etag: str | None = None
    served_at: datetime | None = None
    latest: datetime | None = None
    changed: int = 0
    """Submissions new to the database or different from what it held."""

    @property
    def watermark(self) -> datetime | None:
        """The latest change seen, but never past the moment Central served the first page: what
        changed while we paged (rows already read may have changed since) is pulled next time."""
        if self.latest and self.served_at:
            return min(self.latest, self.served_at - timedelta(seconds=1))
        return self.latest


@dataclass
class SyncSummary:
    """What one form's sync did: the run summary analysts read."""

    project_id: int
    form_id: str
    expected: int | None = None
    """Rows the pull will bring, as Central counts them on the first page."""
    pulled: int = 0
    """Distinct submissions pulled (a pass that re-reads one counts it once)."""
    new: int = 0
    updated: int = 0
    """Submissions whose data changed in Central (edits, reviews)."""
    deleted: int = 0
    purged: int = 0
    valid: int = 0
    quarantined: int = 0
    written_back: int = 0
    pages: int = 0
    not_modified: bool = False
    busy: bool = False
    """Another sync was loading this form, so this one left it alone."""
    seconds: float = 0.0
    failures_by_rule: dict[str, int] = field(default_factory=dict)

    def as_row(self) -> dict:
        row = asdict(self)
        row["failures_by_rule"] = ", ".join(f"{k}: {v}" for k, v in sorted(self.failures_by_rule.items()))
        return row


@dataclass(frozen=True)
class SyncOptions:
    full: bool = False
    """Pull everything, ignoring watermark and ETag, and mark purged what Central no longer has."""
    write_back: bool = False
    page_size: int = 1000
    today: date | None = None


ProgressCallback = Callable[[SyncSummary], None]


def failure_comment(failures: list[FailureRow]) -> str:
    """The review comment a field supervisor reads in Central: one line per failure, both languages."""
    lines = ["Kiểm tra dữ liệu không đạt / Data checks failed:"]
    for failure in failures:
        where = failure.column + (f" [{failure.row_id[:8]}]" if failure.row_id else "")
        lines.append(f"- {where}: {failure.message_vi} / {failure.message_en}")
    return "\n".join(lines)


class FormSync:
    """Syncs one form of one project into one database."""

    def __init__(self, central: CentralSession, engine: Engine, project_id: int, schema: FormSchema,
                 options: SyncOptions = SyncOptions(), progress: ProgressCallback | None = None):
        self.central, self.engine, self.project_id, self.schema = central, engine, project_id, schema
        self.options, self.progress = options, progress
        self.builder = RecordBuilder(schema)
        self.summary = SyncSummary(project_id, schema.form_id)
        self.seen: set[str] = set()
        self.deleted: set[str] = set()
        self.today = options.today or datetime.now(UTC).date()

    def run(self) -> SyncSummary:
        """Pull passes until one changes nothing; that quiet pass's ETag is what the next sync sends.

        Central's ETag covers the rows a query returns, so it answers 304 only to the very query
        that produced it: the ETag is kept with that query's `since`, and the next sync asks that
        query first."""
        started = time.perf_counter()
        ensure_schema(self.engine, [FormLayout.of(self.schema)])
        try:
            with form_lock(self.engine, self.project_id, self.schema.form_id):
                self._run()
        except FormBusy:
            self.summary.busy = True
        self.summary.seconds = time.perf_counter() - started
        self._report()
        return self.summary

    def _run(self) -> None:
        with self.engine.connect() as conn:
            watermark = None if self.options.full else read_watermark(conn, self.project_id, self.schema.form_id)
        since, etag = (watermark.etag_since, watermark.etag) if watermark and watermark.etag else (
            watermark.last_change if watermark else None, None)
        for _ in range(MAX_PASSES):
            pulled = self._pull(since, etag)
            if pulled is None:
                self.summary.not_modified = True
                break
            self._pull_deleted(since)
            with self.engine.begin() as conn:
                recheck_duplicates(conn, self.project_id, self.schema, self.builder.layout)
                advance_watermark(conn, self.project_id, self.schema.form_id, pulled.watermark, None)
            wrote = self._write_back() if self.options.write_back else 0
            if not wrote and not pulled.changed:
                with self.engine.begin() as conn:
                    remember_etag(conn, self.project_id, self.schema.form_id, pulled.etag or "", since)
                break
            with self.engine.connect() as conn:
                since, etag = read_watermark(conn, self.project_id, self.schema.form_id).last_change, None
        if self.options.full:
            live = submission_ids(self.central, self.project_id, self.schema.form_id)
            with self.engine.begin() as conn:
                self.summary.purged = mark_purged(conn, self.project_id, self.schema.form_id, live)
                recheck_duplicates(conn, self.project_id, self.schema, self.builder.layout)
        with self.engine.connect() as conn:
            verdicts = verdicts_of(conn, self.project_id, self.schema.form_id, self.seen)
        self.summary.valid, self.summary.quarantined = verdicts.valid, verdicts.quarantined
        self.summary.failures_by_rule = verdicts.failures_by_rule

    def _report(self) -> None:
        if self.progress:
            self.progress(self.summary)

    def _pull(self, since: datetime | None, etag: str | None) -> Pulled | None:
        """Load every page, each in its own transaction; None when Central answers 304.

        Central pages newest first and cannot page oldest first (`$orderby` with `$skiptoken`
        is refused), so the watermark moves only once the last page is in: a sync killed
        midway pulls again from the old watermark, and the upsert absorbs what it re-reads."""
        query = SubmissionQuery(self.project_id, self.schema.form_id, since=since, page_size=self.options.page_size)
        pulled = Pulled()
        for page in read_ahead(pull_submissions(self.central, query, etag=etag)):
            if page.not_modified:
                return None
            if page.number == 0:
                pulled.etag, pulled.served_at = page.etag or "", page.served_at
                self.summary.expected = max(self.summary.expected or 0, page.count or 0)
            records = self.builder.build(page.rows)
            report = validate_records(self.schema, records, ValidationContext(today=self.today))
            failures = [FailureRow(self.project_id, self.schema.form_id, f.instance_id, f.rule, f.column,
                                   f.row_id, f.value, f.message_vi, f.message_en) for f in report.failures]
            with self.engine.begin() as conn:
                counts = load_page(conn, self.project_id, records, report.statuses, failures)
            pulled.latest = max(filter(None, (pulled.latest, page.last_change)), default=None)
            pulled.changed += counts.new + counts.updated - counts.unchanged
            self._count(records, counts)
        return pulled

    def _count(self, records: FormRecords, counts: LoadCounts) -> None:
        self.seen.update(records.instance_ids)
        self.summary.pages += 1
        self.summary.pulled = len(self.seen)
        self.summary.new += counts.new
        self.summary.updated += counts.updated - counts.unchanged
        self._report()

    def _pull_deleted(self, since: datetime | None) -> None:
        query = SubmissionQuery(self.project_id, self.schema.form_id, since=since, deleted=True,
                                page_size=self.options.page_size, select=("__id", "__system/deletedAt"),
                                expand=False)
        for page in pull_submissions(self.central, query):
            rows = [(row["__id"], (row.get("__system") or {}).get("deletedAt")) for row in page.rows]
            with self.engine.begin() as conn:
                mark_deleted(conn, self.project_id, self.schema.form_id, rows)
            self.deleted.update(instance_id for instance_id, _ in rows)
            self.summary.deleted = len(self.deleted)

    def _write_back(self) -> int:
        """Mark each newly quarantined submission `hasIssues` with a comment listing why, once."""
        wrote = 0
        with self.engine.connect() as conn:
            quarantined = quarantined_ids(conn, self.project_id, self.schema.form_id)
        for instance_id in sorted(quarantined):
            with self.engine.connect() as conn:
                failures = written_back(conn, self.project_id, self.schema.form_id, instance_id)
            if failures is None:
                continue
            if self._review(instance_id, failure_comment(failures)):
                wrote += 1
            with self.engine.begin() as conn:
                record_write_back(conn, self.project_id, self.schema.form_id, instance_id, failures_hash(failures),
                                  str(ReviewState.HAS_ISSUES))
        self.summary.written_back += wrote
        return wrote

    def _review(self, instance_id: str, comment: str) -> bool:
        """Set `hasIssues` and post `comment` unless Central holds it already; True when this call wrote it.

        urllib3 never retries a PATCH or a POST, so a write that failed on the way is retried here,
        with the session's backoff, up to `settings.retries` times. The comments are read again before
        each try: a comment Central stored whose answer was lost is found there and not posted twice
        (pyodk sets the review state before posting the comment, so a stored comment means both)."""
        settings = self.central.settings
        for attempt in range(settings.retries + 1):
            if comment in comments(self.central, self.project_id, self.schema.form_id, instance_id):
                return attempt > 0
            try:
                write_review(self.central, self.project_id, self.schema.form_id, instance_id,
                             ReviewState.HAS_ISSUES, comment)
                return True
            except CentralError as error:
                if attempt == settings.retries or not is_transient(error):
                    raise
                time.sleep(settings.backoff * 2 ** attempt)
        return False


@dataclass(frozen=True)
class SyncPlan:
    """Everything a sync of several forms needs, resolved once; secrets stay inside `settings`."""

    settings: CentralSettings
    project_id: int
    database_url: str
    build_dir: Path
    form_ids: tuple[str, ...]
    options: SyncOptions

    def schema(self, form_id: str) -> FormSchema:
        return FormSchema.read(self.build_dir / f"{form_id}.schema.json")


def plan_sync(build_dir: Path, forms: list[str] | None = None, project: str | None = None,
              database: str | None = None, central_config: Path | None = None,
              options: SyncOptions = SyncOptions()) -> SyncPlan:
    """Resolve the configuration, the project and the forms to sync, and create the tables."""
    settings = CentralSettings.load(central_config)
    if project:
        settings = settings.model_copy(update={"project": project})
    built = sorted(p.name.removesuffix(".schema.json") for p in build_dir.glob("*.schema.json"))
    unknown = sorted(set(forms or []) - set(built))
    if unknown or not built:
        raise ValueError(f"not built in {build_dir}: {', '.join(unknown) or 'any form'} (run `consult forms build`)")
    with CentralSession(settings) as central:
        project_id = resolve_project(central, settings.project, create=False)
    plan = SyncPlan(settings, project_id, database_url(database), build_dir, tuple(forms or built), options)
    engine = create_engine_for(plan.database_url)
    try:
        ensure_schema(engine, [FormLayout.of(plan.schema(f)) for f in plan.form_ids])
    finally:
        engine.dispose()
    return plan


def sync_planned_form(plan: SyncPlan, form_id: str, progress: ProgressCallback | None = None) -> SyncSummary:
    """One form's sync with its own Central session and database engine (safe in a worker thread)."""
    engine = create_engine_for(plan.database_url)
    try:
        with CentralSession(plan.settings) as central:
            return FormSync(central, engine, plan.project_id, plan.schema(form_id), plan.options, progress).run()
    finally:
        engine.dispose()


def is_transient(error: BaseException) -> bool:
    """Worth retrying: no answer, 429, or a 5xx from Central."""
    return isinstance(error, CentralError) and (error.status is None or error.status == 429 or error.status >= 500)


def main(argv: list[str] | None = None) -> int:
    """`python -m consult.sync`: the same sync without Prefect around it, for cron jobs and the
    kill-and-rerun tests (a process that starts in a second, not a flow run's ten)."""
    import argparse
    import json
    import sys

    from consult.central import CentralConfigError

    parser = argparse.ArgumentParser(prog="python -m consult.sync", description=main.__doc__)
    parser.add_argument("--build-dir", type=Path, default=Path("build/forms"))
    parser.add_argument("--form", action="append", dest="forms")
    parser.add_argument("--project")
    parser.add_argument("--db")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--write-back", action="store_true")
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args(argv)
    options = SyncOptions(full=args.full, write_back=args.write_back, page_size=args.page_size)
    try:
        plan = plan_sync(args.build_dir, args.forms, args.project, args.db, options=options)
        for form_id in plan.form_ids:
            print(json.dumps(sync_planned_form(plan, form_id).as_row(), ensure_ascii=False))
    except (CentralConfigError, CentralError, ValueError, OSError) as exc:
        print(f"sync failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
