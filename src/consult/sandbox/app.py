"""The Starlette application: routes, app-user key URLs, conditional GETs and errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import problems, worker
from .odata import CentralProblem
from .purge import purge_submissions
from .responses import problem_response
from .routes import datasets, exports, forms, history, odata_feed, openrosa, projects, sessions, submissions
from .state import Sandbox

KEY_PREFIX = "/v1/key/"
DROPPED_ON_304 = (b"content-type", b"content-length", b"transfer-encoding", b"content-disposition")


class AppUserKeyMiddleware:
    """Turn `/v1/key/<token>/rest` into `/v1/rest`, remembering the token for auth.

    Central accepts an app user's token as a path prefix on any route; Collect is
    configured with `<server>/v1/key/<token>/projects/<id>` as its server URL.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(KEY_PREFIX):
            token, _, rest = scope["path"][len(KEY_PREFIX) :].partition("/")
            scope = dict(scope)
            scope["sandbox.key"] = token
            scope["path"] = "/v1/" + rest
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


class NotModifiedMiddleware:
    """Answer 304 with an empty body when `If-None-Match` equals the response's ETag."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        values = [value for name, value in scope["headers"] if name == b"if-none-match"]
        wanted = {part.strip() for value in values for part in value.split(b",")}
        if not wanted:
            await self.app(scope, receive, send)
            return
        suppressed = False

        async def send_or_304(message: Message) -> None:
            nonlocal suppressed
            if message["type"] == "http.response.start" and message["status"] == 200:
                etag = next((v for k, v in message["headers"] if k.lower() == b"etag"), None)
                if etag is not None and etag in wanted:
                    suppressed = True
                    headers = [
                        (k, v)
                        for k, v in message["headers"]
                        if k.lower() not in DROPPED_ON_304
                    ]
                    await send({"type": "http.response.start", "status": 304, "headers": headers})
                    await send({"type": "http.response.body", "body": b""})
                    return
            if suppressed:
                return
            await send(message)

        await self.app(scope, receive, send_or_304)


async def on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CentralProblem)
    return problem_response(exc, request.method)


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods are Central's plain 404.1."""
    return problem_response(problems.not_found(), request.method)


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def exhaust_worker(request: Request) -> Response:
    """Run the worker's pending jobs now (sandbox only, like `/sandbox/health`)."""
    box: Sandbox = request.app.state.sandbox
    return JSONResponse({"processed": worker.run_pending(box.store)})


async def _worker_loop(box: Sandbox, interval: float) -> None:
    """Run the worker every `interval` seconds, in the event loop like every request (one
    connection), a batch at a time with requests served in between."""
    while True:
        await asyncio.sleep(interval)
        try:
            while worker.run_pending(box.store, worker.BATCH) == worker.BATCH:
                await asyncio.sleep(0)
        except Exception:
            logging.getLogger(__name__).exception("sandbox worker failed; it will retry")


def create_app(box: Sandbox, worker_interval: float = worker.DEFAULT_INTERVAL) -> ASGIApp:
    """The sandbox's ASGI application serving `box`; its worker runs every `worker_interval`
    seconds, or only on `POST /sandbox/worker/exhaust` when that is 0."""
    table: list[BaseRoute] = [
        Route("/sandbox/health", health, methods=["GET"]),
        Route("/sandbox/worker/exhaust", exhaust_worker, methods=["POST"]),
        Route("/sandbox/purge", purge_submissions, methods=["POST"]),
    ]
    for module in (sessions, projects, openrosa, odata_feed, datasets, exports, forms, submissions, history):
        table.extend(module.routes)
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        loop = asyncio.create_task(_worker_loop(box, worker_interval)) if worker_interval > 0 else None
        yield
        if loop is not None:
            loop.cancel()
            with suppress(asyncio.CancelledError):
                await loop
        box.store.close()  # checkpoints the WAL into the database file

    app = Starlette(
        routes=table,
        exception_handlers={CentralProblem: on_problem, HTTPException: on_http_error},
        lifespan=lifespan,
    )
    app.state.sandbox = box
    return AppUserKeyMiddleware(NotModifiedMiddleware(app))
