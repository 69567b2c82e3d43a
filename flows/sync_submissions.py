"""Prefect flow: bring every new or changed consultation from ODK Central into the reporting DB.

Per project and form, concurrently: pull → validate → load (one task, retried on network errors);
the files of the loaded submissions (with `attachments_dir`); then a run summary as a Prefect table artifact and the validation's Data Docs in
`reports/validation/`. The run itself is `consult.sync.run_sync` (recorded in `sync_runs`, one
Central login per run); this module only says which of its steps are Prefect tasks. `consult
sync` runs the same steps as plain calls (`consult.sync.LocalSteps`) when no Prefect API is
configured, instead of starting a temporary Prefect server.

The per-form tasks carry the tag `central-api`: a Prefect tag concurrency limit on it
(`prefect concurrency-limit create central-api 4`) caps the calls Central sees from all runs on
all workers; two syncs of one form never overlap (a lock in the database, see
`consult.warehouse.locks`).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from consult.sync import (
    FormOutcome,
    LocalSteps,
    ProgressCallback,
    SyncPlan,
    SyncRequest,
    SyncSummary,
    is_transient,
    run_sync,
    sync_planned_form,
)
from consult.validate import write_data_docs
from flows.attachments import form_attachments, publish_attachments


def _network_failure(task, task_run, state) -> bool:
    return is_transient(state.result(raise_on_failure=False))


@task(cache_policy=NO_CACHE)
def plan(request: SyncRequest, project: str | None) -> SyncPlan:
    return LocalSteps().plan(request, project)


CENTRAL_API = "central-api"
"""The tag of every task that talks to Central: the name of the Prefect concurrency limit that protects it."""


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[5, 30, 120], retry_condition_fn=_network_failure,
      task_run_name="sync {form_id} (project {sync_plan.project_id})", tags=[CENTRAL_API])
def sync_form(sync_plan: SyncPlan, form_id: str, progress: ProgressCallback | None = None) -> SyncSummary:
    return sync_planned_form(sync_plan, form_id, progress)


@task(cache_policy=NO_CACHE)
def publish_summary(summaries: list[SyncSummary]) -> None:
    create_table_artifact(key="sync-summary", table=[s.as_row() for s in summaries],
                          description="Submissions pulled, loaded, quarantined and written back, per form")


@task(cache_policy=NO_CACHE)
def data_docs(reports_dir: str) -> str | None:
    written = write_data_docs(Path(reports_dir))
    return str(written) if written else None


class PrefectSteps:
    """The run's steps as Prefect tasks of the current flow run: run history, retries, artifacts."""

    def plan(self, request: SyncRequest, project: str | None) -> SyncPlan:
        return plan(request, project)

    def sync_forms(self, plans: list[SyncPlan], progress: ProgressCallback | None) -> list[FormOutcome]:
        futures = [(p, form_id, sync_form.submit(p, form_id, progress)) for p in plans for form_id in p.form_ids]
        return [(p, form_id, future.result(raise_on_failure=False)) for p, form_id, future in futures]

    def attachments(self, forms: list[tuple[SyncPlan, str]], out: Path) -> None:
        futures = [form_attachments.submit(p, form_id, str(out)) for p, form_id in forms]
        publish_attachments([future.result() for future in futures])

    def publish(self, summaries: list[SyncSummary]) -> None:
        publish_summary(summaries)

    def data_docs(self, reports_dir: Path) -> None:
        data_docs(str(reports_dir))


@flow(name="sync-submissions", log_prints=True)
def sync_submissions(forms: list[str] | None = None, full: bool = False, write_back: bool = False,
                     project: str | None = None, build_dir: str = "build/forms", database: str | None = None,
                     central_config: str | None = None, page_size: int = 1000, reports_dir: str = "reports",
                     progress: ProgressCallback | None = None,
                     projects: list[str] | None = None, attachments_dir: str | None = None) -> list[SyncSummary]:
    """`database` defaults to CONSULT_DATABASE_URL, then sqlite:///reporting.db; Central's
    credentials come from the environment or the pyodk config, never from parameters.

    `projects` (names or ids) syncs `forms` (default: every built form) of each of those
    projects in one run; without it, `project`, then the configured project. With `attachments_dir`,
    the files of the loaded submissions are downloaded there (`<form>/<instance>/`)."""
    request = SyncRequest.of(forms=forms, full=full, write_back=write_back, project=project, build_dir=build_dir,
                             database=database, central_config=central_config, page_size=page_size,
                             reports_dir=reports_dir, projects=projects, attachments_dir=attachments_dir)
    return run_sync(request, PrefectSteps(), progress)


if __name__ == "__main__":
    sync_submissions()
