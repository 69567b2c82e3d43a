"""Prefect tasks and flow: the loaded submissions' files, from Central to `attachments/<form>/<instance>/`.

`form_attachments` runs after a form's sync with the same SyncPlan (the sync flow's opt-out is
`--no-attachments`); the `download-attachments` flow runs it alone for every built form that has
a file question. A file missing on Central is a warning in the log and a row of the artifact,
never a failed run. The logic is in `consult.attachments`.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from consult.attachments import AttachmentSummary, has_attachments, planned_form_attachments
from consult.sync import SyncOptions, SyncPlan, is_transient, plan_sync

CENTRAL_API = "central-api"
"""The tag (and Prefect concurrency limit) of every task that talks to Central, as in sync_submissions."""


def _network_failure(task, task_run, state) -> bool:
    return is_transient(state.result(raise_on_failure=False))


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[5, 30, 120], retry_condition_fn=_network_failure,
      task_run_name="attachments {form_id} (project {sync_plan.project_id})", tags=[CENTRAL_API])
def form_attachments(sync_plan: SyncPlan, form_id: str, out_dir: str = "attachments") -> AttachmentSummary:
    summary = planned_form_attachments(sync_plan, form_id, Path(out_dir))
    logger = get_run_logger()
    for missing in summary.missing:
        logger.warning("%s %s", form_id, missing)
    return summary


@task(cache_policy=NO_CACHE)
def publish_attachments(summaries: list[AttachmentSummary]) -> None:
    create_table_artifact(key="attachments",
                          description="Files downloaded, already here, and missing on Central",
                          table=[{"form": s.form_id, "submissions": s.submissions, "downloaded": s.downloaded,
                                  "unchanged": s.unchanged, "missing on Central": len(s.missing),
                                  "bytes": s.bytes} for s in summaries])


@flow(name="download-attachments", log_prints=True)
def download_attachments(forms: list[str] | None = None, project: str | None = None,
                         build_dir: str = "build/forms", database: str | None = None,
                         central_config: str | None = None,
                         out_dir: str = "attachments") -> list[AttachmentSummary]:
    """Every built form with a file question (or `forms`); credentials from the environment or the pyodk
    config, as for the sync."""
    config = Path(central_config) if central_config else None
    plan = plan_sync(Path(build_dir), forms, project, database, config, SyncOptions())
    futures = [form_attachments.submit(plan, form_id, out_dir) for form_id in plan.form_ids
               if has_attachments(plan.schema(form_id))]
    summaries = [future.result() for future in futures]
    publish_attachments(summaries)
    return summaries
