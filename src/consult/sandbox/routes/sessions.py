"""`/v1/sessions` and `/v1/users/current`: logging in and out, and who am I."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import auth, directory, problems
from ..responses import json_response, success
from ..roles import ADMIN_VERBS
from ..state import is_extended, json_body, require_user, sandbox


async def create_session(request: Request) -> Response:
    body = await json_body(request)
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not email:
        raise problems.missing_parameter("email")
    if not isinstance(password, str) or not password:
        raise problems.missing_parameter("password")
    session = auth.log_in(sandbox(request).store, email, password)
    response = json_response(session, request.method)
    expires = "; ".join(["Path=/", "HttpOnly", "SameSite=Strict"])
    response.headers.append("Set-Cookie", f"session={session['token']}; {expires}")
    response.headers.append("Set-Cookie", f"__csrf={session['csrf']}; Path=/; SameSite=Strict")
    return response


async def delete_session(request: Request) -> Response:
    require_user(request)
    token = request.path_params["token"]
    if token == "current":
        token = auth.bearer_token(request.headers.get("authorization")) or ""
    if not auth.log_out(sandbox(request).store, token):
        raise problems.not_found()
    return success(request.method)


async def current_user(request: Request) -> Response:
    actor = require_user(request)
    user = directory.user_json(sandbox(request).store, actor.id)
    if is_extended(request):
        user = {"verbs": ADMIN_VERBS, "preferences": {"site": {}, "projects": {}}, **user}
    return json_response(user, request.method)


routes = [
    Route("/v1/sessions", create_session, methods=["POST"]),
    Route("/v1/sessions/{token}", delete_session, methods=["DELETE"]),
    Route("/v1/users/current", current_user, methods=["GET"]),
]
