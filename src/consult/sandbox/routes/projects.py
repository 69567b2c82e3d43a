"""Projects, roles, app users and form assignments."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import catalog, directory, problems
from ..responses import json_response, success
from ..roles import ADMIN_VERBS, FORM_VIEWER_ROLE_ID, ROLES, role_id
from ..state import int_param, is_extended, json_body, require_user, sandbox


async def list_projects(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    rows = store.all("SELECT * FROM projects WHERE deleted_at IS NULL ORDER BY name, id")
    verbs = sorted(ADMIN_VERBS)
    body = []
    for row in rows:
        item = directory.project_json(row)
        if is_extended(request):
            item.update(directory.project_counts(store, row["id"]))
        body.append({**item, "verbs": verbs})
    return json_response(body, request.method)


async def create_project(request: Request) -> Response:
    require_user(request)
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise problems.missing_parameter("name")
    description = body.get("description") if isinstance(body.get("description"), str) else None
    row = directory.create_project(sandbox(request).store, name, description)
    return json_response(directory.project_created_json(row), request.method)


async def get_project(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    project_id = int_param(request, "project_id")
    body = directory.project_json(directory.get_project(store, project_id))
    if is_extended(request):
        body = {"verbs": ADMIN_VERBS, **body, **directory.project_counts(store, project_id)}
    return json_response(body, request.method)


async def delete_project(request: Request) -> Response:
    require_user(request)
    directory.delete_project(sandbox(request).store, int_param(request, "project_id"))
    return success(request.method)


async def list_roles(request: Request) -> Response:
    require_user(request)
    return json_response(ROLES, request.method)


async def create_app_user(request: Request) -> Response:
    actor = require_user(request)
    body = await json_body(request)
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise problems.missing_parameter("displayName")
    created = directory.create_app_user(
        sandbox(request).store, int_param(request, "project_id"), name, actor.id
    )
    return json_response(created, request.method)


async def list_app_users(request: Request) -> Response:
    require_user(request)
    users = directory.list_app_users(
        sandbox(request).store, int_param(request, "project_id"), is_extended(request)
    )
    return json_response(users, request.method)


async def create_form_assignment(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    form = catalog.get_form(store, int_param(request, "project_id"), request.path_params["xml_form_id"])
    role, actor_id = role_id(request.path_params["role_id"]), int_param(request, "actor_id")
    if role is None or directory.get_actor(store, actor_id) is None:
        raise problems.not_found()
    with store.transaction():
        store.execute(
            "INSERT OR IGNORE INTO assignments (actor_id, role_id, form_id) VALUES (?, ?, ?)",
            actor_id,
            role,
            form["id"],
        )
    return success(request.method)


async def delete_form_assignment(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    form = catalog.get_form(store, int_param(request, "project_id"), request.path_params["xml_form_id"])
    role = role_id(request.path_params["role_id"])
    if role is None:
        raise problems.not_found()
    with store.transaction():
        removed = store.execute(
            "DELETE FROM assignments WHERE actor_id = ? AND role_id = ? AND form_id = ?",
            int_param(request, "actor_id"),
            role,
            form["id"],
        )
    if not removed:
        raise problems.not_found()
    return success(request.method)


async def list_form_assignments(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    form = catalog.get_form(store, int_param(request, "project_id"), request.path_params["xml_form_id"])
    rows = store.all(
        "SELECT actor_id, role_id FROM assignments WHERE form_id = ? ORDER BY actor_id, role_id", form["id"]
    )
    # Central's internal public-access actor views every form; we show it as actor 0.
    body = [{"actorId": 0, "roleId": FORM_VIEWER_ROLE_ID}]
    body += [{"actorId": r["actor_id"], "roleId": r["role_id"]} for r in rows]
    return json_response(body, request.method)


async def list_project_form_assignments(request: Request) -> Response:
    require_user(request)
    store = sandbox(request).store
    project_id = int_param(request, "project_id")
    directory.get_project(store, project_id)
    role = request.path_params["role"]
    role_ids = [r["id"] for r in ROLES if r["system"] == role or str(r["id"]) == role]
    if not role_ids:
        raise problems.not_found()
    rows = store.all(
        "SELECT a.actor_id, a.role_id, f.xml_form_id FROM assignments a "
        "JOIN forms f ON f.id = a.form_id WHERE f.project_id = ? AND a.role_id = ? "
        "AND f.deleted_at IS NULL ORDER BY a.actor_id, f.xml_form_id",
        project_id,
        role_ids[0],
    )
    body = [{"actorId": r["actor_id"], "roleId": r["role_id"], "xmlFormId": r["xml_form_id"]} for r in rows]
    return json_response(body, request.method)


_FORM = "/v1/projects/{project_id}/forms/{xml_form_id}"
routes = [
    Route("/v1/projects", list_projects, methods=["GET"]),
    Route("/v1/projects", create_project, methods=["POST"]),
    Route("/v1/projects/{project_id}", get_project, methods=["GET"]),
    Route("/v1/projects/{project_id}", delete_project, methods=["DELETE"]),
    Route("/v1/roles", list_roles, methods=["GET"]),
    Route("/v1/projects/{project_id}/app-users", list_app_users, methods=["GET"]),
    Route("/v1/projects/{project_id}/app-users", create_app_user, methods=["POST"]),
    Route(
        "/v1/projects/{project_id}/assignments/forms/{role}", list_project_form_assignments, methods=["GET"]
    ),
    Route(f"{_FORM}/assignments", list_form_assignments, methods=["GET"]),
    Route(f"{_FORM}/assignments/{{role_id}}/{{actor_id}}", create_form_assignment, methods=["POST"]),
    Route(f"{_FORM}/assignments/{{role_id}}/{{actor_id}}", delete_form_assignment, methods=["DELETE"]),
]
