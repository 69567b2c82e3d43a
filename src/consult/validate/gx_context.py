"""The process's one Great Expectations context, and validating rows of the reporting database with it.

GX is imported on first use (2–4 s), never at CLI start-up. The context is ephemeral:
nothing is written until `write_data_docs`. Each reporting database is one GX SQL data source
(SQLite or PostgreSQL, GX's own engine on the same URL) and each query over it one query asset,
so an expectation is one SQL query over the rows a sync pass loaded, whatever their number.
SQLite has no REGEXP of its own: the function is registered on every connection GX's engine
opens (Python's `re.search`, as GX's pandas engine matches; values that are not text are matched
as their text). Calls into GX hold a lock, since forms sync in threads and the context is shared
state. The latest result per suite is kept for the Data Docs of the sync.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import re
import threading
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.data_context import AbstractDataContext

LOCK = threading.RLock()
_batches: dict[tuple[str, str], BatchDefinition] = {}
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
    return ctx


@functools.lru_cache(maxsize=4096)
def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def _regexp(pattern: str | None, value: Any) -> int | None:
    if pattern is None or value is None:
        return None
    return int(_pattern(pattern).search(value if isinstance(value, str) else str(value)) is not None)


def _register_regexp(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.create_function("regexp", 2, _regexp, deterministic=True)


def _with_regexp(engine: Engine) -> None:
    """SQLite's `x REGEXP p` calls a function `regexp(p, x)` the connection must provide."""
    if engine.dialect.name != "sqlite" or event.contains(engine, "connect", _register_regexp):
        return
    event.listen(engine, "connect", _register_regexp)
    engine.dispose()  # connections opened before the listener lack the function


def _source_name(url: URL) -> str:
    return "db-" + hashlib.sha1(url.render_as_string(hide_password=False).encode()).hexdigest()[:16]


def _batch_definition(url: URL, name: str, query: str) -> BatchDefinition:
    """The batch of the rows `query` selects in the database at `url`, registered under `name`
    (one GX data source per database, one query asset per name)."""
    source_name = _source_name(url)
    if (source_name, name) not in _batches:
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError("the suites read the rows from the reporting database, and an in-memory SQLite "
                             "database is private to one connection: give a file (sqlite:///reporting.db)")
        sources = context().data_sources
        try:
            source = sources.get(source_name)
        except KeyError:
            address = url.render_as_string(hide_password=False)
            add = sources.add_sqlite if url.get_backend_name() == "sqlite" else sources.add_postgres
            try:
                source = add(source_name, connection_string=address, create_temp_table=False)
            except Exception as error:  # noqa: BLE001 -- GX's message may quote the connection string, password and all
                raise ExpectationError(f"Great Expectations could not open {url.render_as_string()}: "
                                       f"{_without(str(error), url)}") from None
        asset = next((a for a in source.assets if a.name == name), None) or source.add_query_asset(name, query)
        _batches[(source_name, name)] = asset.add_batch_definition_whole_table(f"{name}-rows")
    return _batches[(source_name, name)]


def _without(message: str, url: URL) -> str:
    return message.replace(url.password, "***") if url.password else message


def forget(url: URL) -> None:
    """Drop the data source of the database at `url` and close its connections: a process that
    syncs many databases (the test suite, a Prefect worker) keeps no engine open per database."""
    source_name = _source_name(url)
    with LOCK:
        if not any(key[0] == source_name for key in _batches):
            return
        for key in [k for k in _batches if k[0] == source_name]:
            del _batches[key]
        sources = context().data_sources
        engine = sources.get(source_name).get_execution_engine().engine
        sources.delete(source_name)
        engine.dispose()


def validate_query(suite: ExpectationSuite, url: URL, name: str, query: str, index_columns: list[str],
                   today: date) -> ExpectationSuiteValidationResult:
    """Validate the rows `query` selects with `suite`; failing rows come back keyed by `index_columns`.

    Two passes: the whole suite with BOOLEAN_ONLY, then COMPLETE for only the expectations
    that failed. Assembling unexpected lists and result objects is most of GX's time when
    nothing or almost nothing fails."""
    parameters = {"today": today}
    with LOCK:
        batch = _batch_definition(url, name, query).get_batch()
        _with_regexp(batch.data.execution_engine.engine)
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
