"""A fresh project on a sandbox, seen by its administrator: the HTTP calls the sandbox's own tests make."""

from __future__ import annotations

from typing import Any

import requests

from consult.sandbox import SandboxServer

from .recorded import form_xml

XML = {"Content-Type": "application/xml"}


class AdminProject:
    def __init__(self, server: SandboxServer, name: str, password: str):
        self.server = server
        login = {"email": server.admin_email, "password": password}
        token = requests.post(f"{server.url}/v1/sessions", json=login, timeout=30).json()["token"]
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.id = self.call("POST", "/v1/projects", json={"name": name}).json()["id"]

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> requests.Response:
        response = self.http.request(method, self.server.url + path, timeout=30, **kw)
        assert response.status_code == expect, response.text
        return response

    def form(self, form_id: str) -> str:
        return f"/v1/projects/{self.id}/forms/{form_id}"

    def publish(self, form_id: str, *submissions: str) -> None:
        """Publish a recorded form, then send these submission XMLs to it."""
        self.call("POST", f"/v1/projects/{self.id}/forms?publish=true", data=form_xml(form_id).encode(), headers=XML)
        for xml in submissions:
            self.call("POST", f"{self.form(form_id)}/submissions", data=xml.encode(), headers=XML)
