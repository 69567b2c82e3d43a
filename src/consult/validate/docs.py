"""GX Data Docs of the latest sync, as static HTML for analysts (`reports/validation/index.html`).

Call `write_data_docs` once per sync, after the last page: it renders, for each table
validated since the previous call, the result of its latest page (plus each suite's
expectations), from results already computed, so it adds no validation work and nothing
to the per-page path. The folder is replaced each time, so it shows one sync.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import gx_context

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext

SITE = "consult_validation"
SHOWN_ROWS = 20
"""Failing rows kept per expectation in the docs; the failures table holds them all."""


def write_data_docs(reports_dir: Path) -> Path | None:
    """Write `reports_dir/validation/`; returns its index.html, or None when nothing was validated."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    latest = gx_context.take_latest()
    if not latest:
        return None
    site_dir = reports_dir.resolve() / "validation"
    shutil.rmtree(site_dir, ignore_errors=True)
    run = RunIdentifier(run_name="sync", run_time=datetime.now(UTC))
    with gx_context.LOCK:
        ctx = gx_context.context()
        _point_site_at(ctx, site_dir)
        store = ctx.validation_results_store
        for key in store.list_keys():
            store.remove_key(key)
        for name, (suite, result) in latest.items():
            ctx.suites.add_or_update(suite)
            key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name), run, batch_identifier=name)
            store.set(key, _trimmed(result))
        ctx.build_data_docs(site_names=[SITE])
    return site_dir / "index.html"


def _point_site_at(ctx: AbstractDataContext, site_dir: Path) -> None:
    config = {"class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
              "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)}}
    if SITE in (ctx.get_config().data_docs_sites or {}):
        ctx.update_data_docs_site(SITE, config)
    else:
        ctx.add_data_docs_site(SITE, config)


def _trimmed(result: ExpectationSuiteValidationResult) -> ExpectationSuiteValidationResult:
    """Shorten failing-row lists to render quickly (a bad page can fail every row); the results
    are ours alone once taken from `gx_context`, so they are cut in place."""
    for outcome in result.results:
        for key in ("unexpected_list", "unexpected_index_list"):
            if isinstance(outcome.result.get(key), list):
                outcome.result[key] = outcome.result[key][:SHOWN_ROWS]
    return result
