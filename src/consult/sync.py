"""One form's sync: Central OData pages → records → validation → the reporting database.

A pass loads each page in its own transaction with the page rules' verdicts (`judge_page`), its
submissions waiting for the expectation suites; when the pass ends, the suites judge everything
waiting once per table, as SQL in the database (`judge_loaded`), and their verdicts, the
duplicate recheck and the watermark advance commit in one transaction. Exactly once: a sync
killed anywhere and run again leaves the database as an uninterrupted one would. The watermark
only moves forward and the pull re-reads a small overlap, which the upsert absorbs; what a killed
pass loaded still waits for the suites and is judged by the next pass (or the next 304).

Write-back is made idempotent on Central's side, not ours: before commenting, the
submission's comments are read, and a comment already there is not written again, so a
kill between Central's answer and our bookkeeping cannot duplicate it. Writing a review
changes the form's data on Central, so the sync pulls once more afterwards and keeps the
ETag of that last, quiet pull: the next sync then gets a 304 and stops at once. With
`--write-back`, a 304 still leaves the write-backs due (of submissions an earlier sync without
it quarantined) to be written.

A run (`run_sync`) is the same whoever executes its steps, Prefect tasks in the flow or plain
calls here (`LocalSteps`): one `sync_runs` row, one Central session per account, the forms,
the summary, the Data Docs.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol, Self

from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.exc import SQLAlchemyError

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
from consult.central.session import central_session, shared_sessions
from consult.forms.schema import FormSchema
from consult.validate import Failure, ValidationContext
from consult.validate.gx_context import forget as forget_database
from consult.warehouse.database import create_engine_for, database_url, refresh_stale_statistics
from consult.warehouse.load import (
    FailureRow,
    LoadCounts,
    advance_watermark,
    awaiting_suites,
    failures_hash,
    load_page,
    mark_deleted,
    mark_purged,
    read_watermark,
    recheck_duplicates,
    record_judgement,
    record_run_finish,
    record_run_start,
    record_write_back,
    remember_etag,
    written_back,
)
from consult.warehouse.locks import FormBusy, form_lock
from consult.warehouse.records import FormLayout, FormRecords, RecordBuilder
from consult.warehouse.tables import SUBMISSION_SELECTORS, defer_child_keys, ensure_schema, submissions
from consult.warehouse.verdicts import loaded_count, quarantined_ids, verdicts_of

MAX_PASSES = 4
SUCCEEDED, FAILED = "succeeded", "failed"

log = logging.getLogger(__name__)


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
    """Distinct submissions pulled (a pass that re-reads one counts it once): while the run goes,
    the rows read so far; when it ends, counted in the database."""
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
    error: str | None = None
    """Why this form's sync failed (a failed form's row carries nothing else)."""

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
    commit_pages: int = 5
    """Pages per transaction (`LoadTransaction`)."""


ProgressCallback = Callable[[SyncSummary], None]


class LoadTransaction:
    """The transaction a pass loads its pages in, committed every `pages` pages and at the end.

    Several pages per transaction because each submission's rows go into indexes keyed by random
    UUIDs: a page of 1000 submissions touches most of the index pages it writes only once, and five
    pages share each of them among five times as many rows (SQLite writes a changed page to its WAL
    once per transaction, and copies it into the file once per checkpoint). A kill loses the pages
    since the last commit, which the re-run pulls again anyway: the watermark moves only when a
    pass ends, and loading is an upsert. On SQLite a transaction holds the database's write lock
    (other forms of the run wait for it), so it is also committed whenever the next page has not
    arrived yet: it spans only the sync's own work on pages already read."""

    def __init__(self, engine: Engine, pages: int):
        self.engine, self.pages = engine, pages
        self._conn: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._held = 0
        self._submissions = 0
        """Submissions loaded so far: on PostgreSQL, `submissions`' statistics follow them."""

    def __enter__(self) -> Self:
        return self

    def connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
            self._transaction = self._conn.begin()
            refresh_stale_statistics(self._conn, submissions, self._submissions, SUBMISSION_SELECTORS,
                                     at_least=True)
        return self._conn

    def loaded(self, count: int) -> None:
        """A page of `count` submissions is in: commit once the transaction holds `pages` of them."""
        self._held += 1
        self._submissions += count
        if self._held >= self.pages:
            self.commit()

    def commit(self) -> None:
        """Commit what is loaded so far (nothing when nothing is): the sync calls it before it
        waits for Central, so that it never holds SQLite's write lock while Central is slow."""
        self._end(commit=True)

    def _end(self, commit: bool) -> None:
        if self._conn is None or self._transaction is None:
            return
        try:
            if commit:
                self._transaction.commit()
            else:
                self._transaction.rollback()
        finally:
            self._conn.close()
            self._conn, self._transaction, self._held = None, None, 0

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._end(commit=exc_type is None)


def judge_page(schema: FormSchema, records: FormRecords, context: ValidationContext) -> list[Failure]:
    """`consult.validate.run.judge_page`, imported on the first page: pandas costs a no-op sync
    (Central answers 304) more than all of its work."""
    from consult.validate.run import judge_page as judge

    try:
        return judge(schema, records, context)
    finally:
        _freeze_once("pages")


def judge_loaded(schema: FormSchema, engine: Engine, project_id: int, context: ValidationContext) -> list[Failure]:
    """`consult.validate.run.judge_loaded`, imported once something awaits the suites: Great
    Expectations takes seconds to import."""
    from consult.validate.run import judge_loaded as judge

    try:
        return judge(schema, engine, project_id, context)
    finally:
        _freeze_once("suites")


@functools.cache
def _freeze_once(stage: str) -> None:
    """Once per process, after a validation stage's first call has imported what it needs (pandas,
    Great Expectations: a quarter of a GB of objects) and built its rulesets and GX context: those
    live as long as the process, so they leave the garbage collector's sight (`gc.freeze`), which
    would otherwise walk them at every full collection (0.9 s of a 100k sync's 32 s; 0.2 s after)."""
    gc.freeze()


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
        self.loaded_since = datetime.now(UTC)
        """When this run began loading: what it pulled is what it loaded since (`verdicts_of`)."""
        self.updated: set[str] = set()
        self.reviewed: set[str] = set()
        """Submissions this run wrote a review to."""
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
        finally:
            forget_database(self.engine.url)
        self.summary.seconds = time.perf_counter() - started
        self._report()
        return self.summary

    def _run(self) -> None:
        self.loaded_since = datetime.now(UTC)
        with self.engine.connect() as conn:
            watermark = None if self.options.full else read_watermark(conn, self.project_id, self.schema.form_id)
        since, etag = (watermark.etag_since, watermark.etag) if watermark and watermark.etag else (
            watermark.last_change if watermark else None, None)
        for number in range(MAX_PASSES):
            pulled = self._pull(since, etag)
            if pulled is None:
                self._judge(None)
                if not (self.options.write_back and self._write_back()):
                    self.summary.not_modified = number == 0
                    break
            else:
                self._pull_deleted(since)
                self._judge(pulled)
                wrote = self._write_back() if self.options.write_back else 0
                if not wrote and not pulled.changed:
                    with self.engine.begin() as conn:
                        remember_etag(conn, self.project_id, self.schema.form_id, pulled.etag or "", since)
                    break
            with self.engine.connect() as conn:
                since, etag = read_watermark(conn, self.project_id, self.schema.form_id).last_change, None
        if self.options.full:
            self._mark_purged()
        with self.engine.connect() as conn:
            verdicts = verdicts_of(conn, self.project_id, self.schema.form_id, self.loaded_since)
            self.summary.pulled = loaded_count(conn, self.project_id, self.schema.form_id, self.loaded_since)
        self.summary.valid, self.summary.quarantined = verdicts.valid, verdicts.quarantined
        self.summary.failures_by_rule = verdicts.failures_by_rule

    def _judge(self, pulled: Pulled | None) -> None:
        """Close a pass in one transaction: the suites' verdicts on what it loaded, the form-wide
        duplicate recheck, and the watermark moved to what the pass saw. A 304 pass has nothing new,
        but a killed run may have left loaded submissions unjudged: they are judged then."""
        with self.engine.connect() as conn:
            waiting = awaiting_suites(conn, self.project_id, self.schema.form_id)
        if pulled is None and not waiting:
            return
        judged = judge_loaded(self.schema, self.engine, self.project_id, self._context) if waiting else []
        with self.engine.begin() as conn:
            if waiting:
                record_judgement(conn, self.project_id, self.schema.form_id, self._failure_rows(judged))
            recheck_duplicates(conn, self.project_id, self.schema, self.builder.layout)
            if pulled is not None:
                advance_watermark(conn, self.project_id, self.schema.form_id, pulled.watermark, None)

    @property
    def _context(self) -> ValidationContext:
        return ValidationContext(today=self.today)

    def _failure_rows(self, failures: list[Failure]) -> list[FailureRow]:
        return [FailureRow.of(self.project_id, self.schema.form_id, f) for f in failures]

    def _mark_purged(self) -> None:
        """Central purges only soft-deleted submissions (`purge`, after 30 days in the trash): a stored
        submission that is neither live nor in the trash any more was purged. Live ids are read
        first, so one deleted in between is in the trash, not missing."""
        live = submission_ids(self.central, self.project_id, self.schema.form_id)
        trash = {row["__id"] for page in pull_submissions(self.central, self._deleted_query(None))
                 for row in page.rows}
        with self.engine.begin() as conn:
            self.summary.purged = mark_purged(conn, self.project_id, self.schema.form_id, live, deleted_ids=trash)
            recheck_duplicates(conn, self.project_id, self.schema, self.builder.layout)

    def _report(self) -> None:
        if self.progress:
            self.progress(self.summary)

    def _pull(self, since: datetime | None, etag: str | None) -> Pulled | None:
        """Load every page, in transactions of `commit_pages` pages (`LoadTransaction`); None when
        Central answers 304.

        Central pages newest first and cannot page oldest first (`$orderby` with `$skiptoken`
        is refused), so the watermark moves only once the last page is in: a sync killed
        midway pulls again from the old watermark, and the upsert absorbs what it re-reads.
        A form's first load builds its child tables' keys once its pages are in
        (`defer_child_keys`)."""
        deferred = defer_child_keys(self.engine, self.builder.layout)
        pulled = self._load_pages(since, etag)
        if deferred:
            ensure_schema(self.engine, [self.builder.layout])
        return pulled

    def _load_pages(self, since: datetime | None, etag: str | None) -> Pulled | None:
        query = SubmissionQuery(self.project_id, self.schema.form_id, since=since, page_size=self.options.page_size)
        pulled = Pulled()
        with LoadTransaction(self.engine, self.options.commit_pages) as transaction:
            for page in read_ahead(pull_submissions(self.central, query, etag=etag), transaction.commit):
                if page.not_modified:
                    return None
                if page.number == 0:
                    pulled.etag, pulled.served_at = page.etag or "", page.served_at
                    self.summary.expected = max(self.summary.expected or 0, page.count or 0)
                records = self.builder.build(page.rows)
                failures = self._failure_rows(judge_page(self.schema, records, self._context))
                counts = load_page(transaction.connection(), self.project_id, records, {}, failures)
                transaction.loaded(len(records.instance_ids))
                pulled.latest = max(filter(None, (pulled.latest, page.last_change)), default=None)
                pulled.changed += counts.new + len(counts.changed)
                self._count(records, counts)
        return pulled

    def _count(self, records: FormRecords, counts: LoadCounts) -> None:
        """`updated` counts what others changed in Central: a row that differs only by the review
        this run wrote back is our own doing, not news."""
        self.summary.pages += 1
        self.summary.pulled += len(records.instance_ids)
        self.summary.new += counts.new
        self.updated.update(counts.changed - (counts.review_only & self.reviewed))
        self.summary.updated = len(self.updated)
        self._report()

    def _deleted_query(self, since: datetime | None) -> SubmissionQuery:
        return SubmissionQuery(self.project_id, self.schema.form_id, since=since, deleted=True,
                               page_size=self.options.page_size, select=("__id", "__system/deletedAt"),
                               expand=False)

    def _pull_deleted(self, since: datetime | None) -> None:
        """Mark Central's soft deletes; `deleted` counts the stored submissions this run marked, not
        every id in the trash (a `--full` reads all of it, and some were never stored)."""
        for page in pull_submissions(self.central, self._deleted_query(since)):
            rows = [(row["__id"], (row.get("__system") or {}).get("deletedAt")) for row in page.rows]
            with self.engine.begin() as conn:
                self.summary.deleted += mark_deleted(conn, self.project_id, self.schema.form_id, rows)

    def _write_back(self) -> int:
        """Mark `hasIssues`, with a comment listing why, every live quarantined submission whose
        failures are not written back yet: whether this run pulled it or an earlier one did."""
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
                self.reviewed.add(instance_id)
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

    def built_schemas(self) -> dict[str, FormSchema]:
        """Every form built here, synced in this run or not: what the entity lists' source forms declare."""
        return {path.name.removesuffix(".schema.json"): FormSchema.read(path)
                for path in sorted(self.build_dir.glob("*.schema.json"))}


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
    with central_session(settings) as central:
        project_id = resolve_project(central, settings.project, create=False)
    plan = SyncPlan(settings, project_id, database_url(database), build_dir, tuple(forms or built), options)
    engine = create_engine_for(plan.database_url)
    try:
        ensure_schema(engine, [FormLayout.of(plan.schema(f)) for f in plan.form_ids])
    finally:
        engine.dispose()
    return plan


def sync_planned_form(plan: SyncPlan, form_id: str, progress: ProgressCallback | None = None) -> SyncSummary:
    """One form's sync with its own database engine, on the run's shared Central session (safe in a
    worker thread)."""
    engine = create_engine_for(plan.database_url)
    try:
        with central_session(plan.settings) as central:
            return FormSync(central, engine, plan.project_id, plan.schema(form_id), plan.options, progress).run()
    finally:
        engine.dispose()


def is_transient(error: BaseException) -> bool:
    """Worth retrying: no answer, 429, or a 5xx from Central."""
    return isinstance(error, CentralError) and (error.status is None or error.status == 429 or error.status >= 500)


@dataclass(frozen=True)
class SyncRequest:
    """What one sync run is asked to do: the parameters of the `sync-submissions` flow."""

    forms: tuple[str, ...] | None = None
    options: SyncOptions = SyncOptions()
    projects: tuple[str | None, ...] = (None,)
    """Project names or ids, each synced in turn; None is the configured project."""
    build_dir: Path = Path("build/forms")
    database: str | None = None
    central_config: Path | None = None
    reports_dir: Path | None = None
    """Where the validation Data Docs go; None writes none."""
    attachments_dir: Path | None = None
    """Where the loaded submissions' files go (`<form>/<instance>/`); None downloads none."""

    @classmethod
    def of(cls, forms: list[str] | None = None, full: bool = False, write_back: bool = False,
           project: str | None = None, build_dir: str | Path = "build/forms", database: str | None = None,
           central_config: str | Path | None = None, page_size: int = 1000,
           reports_dir: str | Path | None = "reports", projects: list[str] | None = None,
           attachments_dir: str | Path | None = None) -> SyncRequest:
        """From the flow's parameters (`flows/sync_submissions.py`), which `consult sync` shares."""
        return cls(tuple(forms) if forms else None, SyncOptions(full=full, write_back=write_back, page_size=page_size),
                   tuple(projects) if projects else (project,), Path(build_dir), database,
                   Path(central_config) if central_config else None,
                   Path(reports_dir) if reports_dir is not None else None,
                   Path(attachments_dir) if attachments_dir is not None else None)


FormOutcome = tuple[SyncPlan, str, "SyncSummary | BaseException"]


class SyncSteps(Protocol):
    """How a run's steps execute: Prefect tasks in the flow, plain calls in `LocalSteps`."""

    def plan(self, request: SyncRequest, project: str | None) -> SyncPlan: ...

    def sync_forms(self, plans: list[SyncPlan], progress: ProgressCallback | None) -> list[FormOutcome]: ...

    def attachments(self, forms: list[tuple[SyncPlan, str]], out: Path) -> None: ...

    def publish(self, summaries: list[SyncSummary]) -> None: ...

    def data_docs(self, reports_dir: Path) -> None: ...


@dataclass
class RunRecord:
    """The `sync_runs` row of the run in progress and what it has done so far."""

    run_id: int
    summaries: list[SyncSummary] = field(default_factory=list)
    entity_lists: list[dict] = field(default_factory=list)
    """Per entity list synced: its counts, and the submissions Central made no entity from."""

    def totals(self) -> dict[str, int]:
        keys = ("pulled", "new", "updated", "deleted", "purged", "valid", "quarantined", "written_back")
        return {key: sum(getattr(s, key) for s in self.summaries) for key in keys}

    def summary(self) -> dict:
        return {**self.totals(), "forms": [s.as_row() for s in self.summaries], "entity_lists": self.entity_lists}


@contextmanager
def recorded_run(database: str | None) -> Iterator[RunRecord]:
    """A `sync_runs` row per run: `running`, committed before any work (a run that died stays so), then
    `succeeded` or `failed` with the counts so far and the error. Recording never hides the run's own error."""
    engine = create_engine_for(database_url(database))
    try:
        ensure_schema(engine, [])
        with engine.begin() as conn:
            record = RunRecord(record_run_start(conn))
        try:
            yield record
        except BaseException as exc:
            _finish(engine, record, FAILED, str(exc) or exc.__class__.__name__)
            raise
        _finish(engine, record, SUCCEEDED, None)
    finally:
        engine.dispose()


def _finish(engine: Engine, record: RunRecord, status: str, error: str | None) -> None:
    try:
        with engine.begin() as conn:
            record_run_finish(conn, record.run_id, status, record.summary(), error=error)
    except SQLAlchemyError as exc:
        log.warning("could not record the end of sync run %s: %s", record.run_id, exc.__class__.__name__)


def run_sync(request: SyncRequest, steps: SyncSteps, progress: ProgressCallback | None = None) -> list[SyncSummary]:
    """One sync run, whoever executes its steps: recorded in `sync_runs`, one Central login per
    account, each project planned, its forms synced, the files of their loaded submissions downloaded
    (with `attachments_dir`; files already here cost no request), the project's entity lists synced
    (`warehouse.entities`: incremental, one request when nothing changed), the summary published, the Data Docs
    written when anything was validated. A form that failed fails the run once the others are done."""
    with shared_sessions(), recorded_run(request.database) as run:
        plans = [steps.plan(request, project) for project in dict.fromkeys(request.projects)]
        outcomes = steps.sync_forms(plans, progress)
        run.summaries = [o for _, _, o in outcomes if isinstance(o, SyncSummary)]
        failed = [(plan, form_id, o) for plan, form_id, o in outcomes if isinstance(o, BaseException)]
        if request.attachments_dir is not None:
            from consult.attachments import has_attachments

            steps.attachments([(plan, form_id) for plan, form_id, o in outcomes
                               if isinstance(o, SyncSummary) and has_attachments(plan.schema(form_id))],
                              request.attachments_dir)
        rows = run.summaries + [SyncSummary(plan.project_id, form_id, error=str(o) or o.__class__.__name__)
                                for plan, form_id, o in failed]
        run.entity_lists = [entity_list for plan in plans for entity_list in _entity_lists(plan)]
        steps.publish(rows)
        if request.reports_dir is not None and any(s.pages for s in run.summaries):
            steps.data_docs(request.reports_dir)
        if failed:
            raise failed[0][2]
    return run.summaries


def _entity_lists(plan: SyncPlan) -> list[dict]:
    """The project's entity lists into the warehouse (`consult.warehouse.entities`); each submission
    Central accepted but made no entity from is said, and kept in `entity_submissions`."""
    from consult.warehouse.entities import sync_project_entity_lists

    synced = sync_project_entity_lists(plan.settings, plan.project_id, plan.database_url,
                                       schemas=plan.built_schemas())
    for entity_list in synced:
        for error in entity_list.errors:
            log.warning("entity list %s: no entity from %s", entity_list.list_name, error)
    return [{"project_id": plan.project_id, "list": e.list_name, "pulled": e.pulled, "new": e.new,
             "updated": e.updated, "deleted": e.deleted, "restored": e.restored, "conflicts": e.conflicts,
             "entity_errors": len(e.errors), "versions": e.versions, "seconds": round(e.seconds, 3)} for e in synced]


@dataclass(frozen=True)
class LocalSteps:
    """The run's steps as plain calls in this process: no Prefect API, no Prefect import. The forms
    run in `workers` threads, as the flow's task runner runs them; the run's record is `sync_runs`."""

    workers: int = 1

    def plan(self, request: SyncRequest, project: str | None) -> SyncPlan:
        return plan_sync(request.build_dir, list(request.forms) if request.forms else None, project,
                         request.database, request.central_config, request.options)

    def sync_forms(self, plans: list[SyncPlan], progress: ProgressCallback | None) -> list[FormOutcome]:
        jobs = [(plan, form_id) for plan in plans for form_id in plan.form_ids]

        def one(job: tuple[SyncPlan, str]) -> FormOutcome:
            plan, form_id = job
            try:
                return plan, form_id, sync_planned_form(plan, form_id, progress)
            except Exception as exc:  # noqa: BLE001 - the run records it and raises it once the others end
                return plan, form_id, exc

        if self.workers <= 1 or len(jobs) <= 1:
            return [one(job) for job in jobs]
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sync-form") as pool:
            return list(pool.map(one, jobs))

    def attachments(self, forms: list[tuple[SyncPlan, str]], out: Path) -> None:
        from consult.attachments import planned_form_attachments

        for plan, form_id in forms:
            for missing in planned_form_attachments(plan, form_id, out).missing:
                log.warning("%s %s", form_id, missing)

    def publish(self, summaries: list[SyncSummary]) -> None:
        """Nothing to publish to without a Prefect API: the run's summary is in `sync_runs`."""

    def data_docs(self, reports_dir: Path) -> None:
        from consult.validate import write_data_docs

        write_data_docs(reports_dir)


def prefect_api_url() -> str | None:
    """The Prefect API this process would report to, read where Prefect reads it (the environment,
    `prefect.toml` or `[tool.prefect]` in pyproject.toml of the working folder, the active profile)
    without importing Prefect; None when Prefect would start a temporary server."""
    if url := os.environ.get("PREFECT_API_URL"):
        return url
    for name, keys in (("prefect.toml", ("api", "url")), ("pyproject.toml", ("tool", "prefect", "api", "url"))):
        try:
            value: object = tomllib.loads(Path(name).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value:
            return str(value)
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    url = (profiles.get("profiles", {}).get(active) or {}).get("PREFECT_API_URL")
    return str(url) if url else None


def start_sync(progress: ProgressCallback | None = None, **parameters: object) -> list[SyncSummary]:
    """A sync run as `consult sync` starts it, with the `sync-submissions` flow's parameters: a run of the
    flow on the configured Prefect API (run history, retries, artifacts); without one, the same run in
    this process (`LocalSteps`, forms in 4 threads) rather than on a temporary Prefect server, which
    costs 10 s or more where a sync with nothing new takes half a second."""
    if prefect_api_url() is None:
        return run_sync(SyncRequest.of(**parameters), LocalSteps(workers=4), progress)  # type: ignore[arg-type]
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.sync_submissions import sync_submissions

    return sync_submissions(**parameters, progress=progress)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """`python -m consult.sync`: the same sync run without Prefect around it, for cron jobs and the
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
    parser.add_argument("--reports", type=Path, help="write the validation Data Docs there (default: none)")
    args = parser.parse_args(argv)
    options = SyncOptions(full=args.full, write_back=args.write_back, page_size=args.page_size)
    request = SyncRequest(tuple(args.forms) if args.forms else None, options, (args.project,), args.build_dir,
                          args.db, reports_dir=args.reports)
    try:
        for summary in run_sync(request, LocalSteps()):
            print(json.dumps(summary.as_row(), ensure_ascii=False))
    except (CentralConfigError, CentralError, ValueError, OSError, SQLAlchemyError) as exc:
        print(f"sync failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
