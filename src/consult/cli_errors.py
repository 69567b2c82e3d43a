"""What the `consult` command says when the input or the world is wrong: one line, exit 1, no traceback.

Every command runs inside `reported()`: the exceptions that cross the package's boundaries
(Central, the reporting database, the file system, the configuration) become one line that says
what happened and what to do. Anything else is a bug and keeps its traceback; `--debug` keeps
every traceback and every log line.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
import typer

USAGE = 2
"""Exit code of a command line that cannot run as written (click's convention)."""


class UserMistake(Exception):
    """A mistake the user can fix; the message says which and how."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def _one_line(text: str) -> str:
    """A multi-line message (lint problems, a driver's detail) joined, so the mistake stays one line."""
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _central(exc: BaseException) -> str | None:
    from consult.central import CentralError

    if not isinstance(exc, CentralError):
        return None
    where = f"{exc.method} {exc.url}"
    if exc.status is None:
        return (f"cannot reach ODK Central ({where}: {exc.reason}): is the server up and "
                "CONSULT_CENTRAL_URL (or base_url in the pyodk config) right?")
    if exc.status == 401 and exc.url.rstrip("/").endswith("/v1/sessions"):
        return (f"ODK Central refused the login ({where}: HTTP 401: {exc.reason}): check CONSULT_CENTRAL_USER "
                "and CONSULT_CENTRAL_PASSWORD (or username and password in the pyodk config)")
    if exc.status == 401:
        return f"ODK Central no longer accepts this session ({where}: HTTP 401): it expired or was revoked; run again"
    if exc.status in (404, 405, 501) and exc.code is None:
        return (f"{where} answered HTTP {exc.status} without Central's error JSON: the server does not know this "
                "API call; is it ODK Central, of a version that has it (consult is checked against Central's "
                "backend of August 2026)?")
    if exc.status == 403:
        return (f"the Central user may not do this ({where}: HTTP 403: {exc.reason}): ask a Central administrator "
                "for a role on the project")
    return _one_line(str(exc))


def _database(exc: BaseException) -> str | None:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

    if isinstance(exc, NoSuchModuleError):
        return (f"unknown database in the URL ({_one_line(str(exc))}): use sqlite:///path.db or "
                "postgresql://user@host/database in --db or CONSULT_DATABASE_URL")
    if isinstance(exc, ArgumentError):
        return (f"not a database URL ({_one_line(str(exc))}): use sqlite:///path.db or "
                "postgresql://user@host/database in --db or CONSULT_DATABASE_URL")
    if isinstance(exc, OperationalError):
        reason = _one_line(str(exc.orig)) if exc.orig is not None else _one_line(str(exc))
        if "disk is full" in reason.lower() or "no space left" in reason.lower():
            return f"the reporting database cannot grow ({reason}): free some disk space and run again"
        if "disk i/o error" in reason.lower():
            return (f"the reporting database could not be written ({reason}): check that its disk is not full "
                    "and may be written to, then run again")
        return f"cannot use the reporting database ({reason}): check --db or CONSULT_DATABASE_URL and the server"
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        return f"the reporting database failed: {_one_line(str(orig or exc))}"
    return None


def _missing_driver(exc: BaseException) -> str | None:
    """A database driver that is not installed: SQLAlchemy imports it when the engine is made."""
    if not isinstance(exc, ModuleNotFoundError):
        return None
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    if not any("sqlalchemy" in f and "dialects" in f for f in frames):
        return None
    return (f"the database driver {exc.name!r} is not installed: install it (pip install {exc.name}) or use "
            "sqlite:/// or postgresql:// (psycopg 3, installed with consult)")


_ERRNO_HINTS = {
    errno.ENOENT: "check the path (is this the project's folder?)",
    errno.EACCES: "choose a place you may write to, or fix its permissions",
    errno.EPERM: "choose a place you may write to, or fix its permissions",
    errno.EROFS: "that file system is read-only: choose another place",
    errno.ENOSPC: "the disk is full: free some space and run again",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}


def _os(exc: BaseException) -> str | None:
    if not isinstance(exc, OSError) or type(exc).__module__.startswith(("requests", "urllib3")):
        return None
    what = exc.strerror or _one_line(str(exc)) or type(exc).__name__
    where = f": {exc.filename}" if exc.filename else ""
    hint = _ERRNO_HINTS.get(exc.errno or 0)
    return f"{what}{where}" + (f": {hint}" if hint else "")


def _central_answer_shape(exc: BaseException) -> str | None:
    """A server that answers JSON, but not in the shape Central's API documents (another program on
    that URL, a Central far older or newer): the code reading the answer fails on a missing key or a
    wrong type. Named by where it failed: the deepest frame of consult or pyodk is a Central client."""
    if not isinstance(exc, (KeyError, TypeError, IndexError, AttributeError)):
        return None
    deepest, tb = None, exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename.replace("\\", "/")
        if "/consult/" in filename or "/pyodk/" in filename:
            deepest = (filename, tb.tb_lineno)
        tb = tb.tb_next
    if deepest is None or not ("/consult/central/" in deepest[0] or "/pyodk/" in deepest[0]):
        return None
    where = deepest[0][deepest[0].rfind("/consult/" if "/consult/" in deepest[0] else "/pyodk/") + 1:]
    return (f"the server's answer is not in the shape ODK Central's API has ({type(exc).__name__}: "
            f"{_one_line(str(exc))}, reading it in {where} line {deepest[1]}): check that CONSULT_CENTRAL_URL "
            "is an ODK Central server of a version consult knows (Central's backend of August 2026); "
            "--debug shows the whole traceback")


def _prefect(exc: BaseException) -> str | None:
    """Prefect's client says only this (a RuntimeError) when PREFECT_API_URL names a server that is down."""
    prefix = "Failed to reach API at "
    if isinstance(exc, RuntimeError) and str(exc).startswith(prefix):
        return (f"cannot reach the Prefect API at {str(exc).removeprefix(prefix).strip()}: start the Prefect "
                "server, or unset PREFECT_API_URL to run the flow in this process")
    return None


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The line to print and the exit code for a mistake, or None for a bug (which keeps its traceback)."""
    from consult.central import CentralConfigError, DeployError
    from consult.findings.pdf import PdfUnavailable

    if isinstance(exc, UserMistake):
        return _one_line(str(exc)), exc.exit_code
    if isinstance(exc, (CentralConfigError, DeployError, PdfUnavailable)):
        return _one_line(str(exc)), 1
    for translate in (_central, _database, _missing_driver, _os, _prefect, _central_answer_shape):
        message = translate(exc)
        if message:
            return message, 1
    if isinstance(exc, ValueError) and str(exc):
        return _one_line(str(exc)), 1
    return None


class _ReportedByTheCommand(logging.Filter):
    """Drops the log records of a failure the command itself reports in one line: Prefect's
    "Encountered exception" / "Finished in state Failed" records with their tracebacks. A retry
    still shows, without its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        if "Retry" in record.getMessage():
            record.exc_info, record.exc_text = None, None
            return True
        return False


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_QUIET = {
    "prefect.flow_runs": _ReportedByTheCommand(),
    "prefect.task_runs": _ReportedByTheCommand(),
    # GX sets this module's logger to INFO itself and says "Created temporary directory" on every run.
    "great_expectations.data_context.types.base": _BelowWarning(),
}


@contextmanager
def quiet_logs() -> Iterator[None]:
    """While a command runs at the default level, the console shows its own output, warnings, and nothing else.

    Logger filters (not handler filters) because Prefect replaces the handlers when it is imported;
    pyodk logs every error it then raises, with a traceback, and we raise it again as a CentralError.
    Everything is put back afterwards, for a caller that runs commands in its own process (tests)."""
    loggers = [(logging.getLogger(name), quiet) for name, quiet in _QUIET.items()]
    for logger, quiet in loggers:
        logger.addFilter(quiet)
    pyodk = logging.getLogger("pyodk")
    level = pyodk.level
    pyodk.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        pyodk.setLevel(level)
        for logger, quiet in loggers:
            logger.removeFilter(quiet)


@contextmanager
def reported(debug: bool) -> Iterator[None]:
    """Run a command; a mistake ends it with one line on stderr and its exit code."""
    try:
        with nullcontext() if debug else quiet_logs():
            yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except Exception as exc:
        explained = None if debug else explain(exc)
        if explained is None:
            raise
        message, code = explained
        typer.secho(message, fg="red", err=True)
        raise typer.Exit(code) from None
