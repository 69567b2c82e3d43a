"""The process's one Great Expectations context, and validating a table DataFrame with it.

GX is imported on first use (3–4 s), never at CLI start-up. The context is ephemeral:
nothing is written until `write_data_docs`. Calls into GX hold a lock, since Prefect may
run pages of several forms in threads and the context's data source is shared state.
The latest result per suite is kept for the Data Docs of the sync.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.data_context import AbstractDataContext

DATA_SOURCE = "consult"
LOCK = threading.RLock()
_batches: dict[str, BatchDefinition] = {}
_latest: dict[str, tuple[ExpectationSuite, ExpectationSuiteValidationResult]] = {}


class ExpectationError(RuntimeError):
    """An expectation raised instead of judging the data: a bug in the suite, never a data failure."""


@functools.cache
def context() -> AbstractDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # its INFO lines are about its temp dirs
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    ctx.data_sources.add_pandas(DATA_SOURCE)
    return ctx


def _batch_definition(table: str) -> BatchDefinition:
    if table not in _batches:
        source = context().data_sources.get(DATA_SOURCE)
        _batches[table] = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("page")
    return _batches[table]


def validate_frame(suite: ExpectationSuite, frame: pd.DataFrame, index_columns: list[str],
                   today: date) -> ExpectationSuiteValidationResult:
    """Validate one table's DataFrame; failing rows come back keyed by `index_columns`.

    Two passes: the whole suite with BOOLEAN_ONLY, then COMPLETE for only the expectations
    that failed. Assembling unexpected lists and result objects is a third of GX's time, and
    on most pages nothing or almost nothing fails."""
    parameters = {"today": today}
    with LOCK:
        batch = _batch_definition(suite.name).get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(suite, result_format={"result_format": "BOOLEAN_ONLY"},
                                expectation_parameters=parameters)
        failed = [e for e, outcome in zip(suite.expectations, result.results, strict=True) if not outcome.success]
        if failed:
            import great_expectations as gx

            detail = batch.validate(gx.ExpectationSuite(name=suite.name, expectations=[copy.copy(e) for e in failed]),
                                    result_format={"result_format": "COMPLETE",
                                                   "unexpected_index_column_names": index_columns,
                                                   "return_unexpected_index_query": False},
                                    expectation_parameters=parameters)
            detailed = iter(detail.results)
            result.results = [outcome if outcome.success else next(detailed) for outcome in result.results]
        _latest[suite.name] = (suite, result)
    for outcome in result.results:
        if message := _raised(outcome.exception_info or {}):
            config = outcome.expectation_config
            raise ExpectationError(f"{suite.name}: {config.type} {config.kwargs}: {message}")
    return result


def _raised(info: dict) -> str | None:
    """GX reports an exception either flat or per metric it was computing."""
    if "raised_exception" in info:
        return (info.get("exception_message") or "raised") if info["raised_exception"] else None
    return next((m for v in info.values() if isinstance(v, dict) and (m := _raised(v))), None)


def take_latest() -> dict[str, tuple[ExpectationSuite, ExpectationSuiteValidationResult]]:
    """The latest result per suite since the last call, and forget them."""
    with LOCK:
        latest = dict(_latest)
        _latest.clear()
    return latest
