"""Field teams: an ODK Central app user per team, its form assignments, and its ODK Collect QR code.

A team's QR code carries its app-user key: whoever scans it can submit as that team.
The PNGs and the printable sheet are therefore credentials, written readable by the
owner only, and their tokens never go to the console or a log.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tomllib
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, SecretStr
from pyodk._endpoints.form_assignments import FormAssignmentService
from pyodk._endpoints.project_app_users import ProjectAppUserService

from consult.central.session import CentralSession, call_pyodk

APP_USER_ROLE = "app-user"


class FieldTeam(BaseModel):
    name: str
    forms: list[str]
    icon: str = ""
    color: str = "#1F4E78"


def read_teams(path: Path) -> list[FieldTeam]:
    """`forms/teams.toml`: `[[teams]] name = "…", forms = ["…"]`."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [FieldTeam.model_validate(t) for t in data.get("teams", [])]


@dataclass(frozen=True)
class TeamAccess:
    team: FieldTeam
    app_user_id: int
    token: SecretStr = field(repr=False)
    created: bool
    assigned: tuple[str, ...]
    """Forms newly assigned in this run."""


def slug(text: str) -> str:
    """`Thái Nguyên` → `thai-nguyen`: file names that survive every file system."""
    folded = unicodedata.normalize("NFKD", text.replace("Đ", "D").replace("đ", "d"))
    ascii_only = "".join(c for c in folded if c.isascii() and (c.isalnum() or c in " -_"))
    return "-".join(ascii_only.lower().replace("_", " ").split()) or "team"


def app_user_role_id(central: CentralSession) -> int:
    """The role that lets an app user see and fill a form, looked up: ids differ between servers."""
    for role in central.json("GET", "roles"):
        if role.get("system") == APP_USER_ROLE:
            return int(role["id"])
    raise RuntimeError(f"{central.settings.base_url} has no role with system {APP_USER_ROLE!r}")


def ensure_teams(central: CentralSession, project_id: int, teams: list[FieldTeam]) -> list[TeamAccess]:
    """Create the missing app users and assignments; what already exists is left as it is."""
    users = ProjectAppUserService(session=central.http, default_project_id=project_id)
    existing = {u.displayName: u for u in call_pyodk(users.list) if u.token and u.deletedAt is None}
    role_id = app_user_role_id(central)
    assigned = {(a["actorId"], a["xmlFormId"]) for a in central.json(
        "GET", central.http.urlformat("projects/{pid}/assignments/forms/{role}", pid=project_id, role=APP_USER_ROLE))}
    access = []
    for team in teams:
        user = existing.get(team.name)
        created = user is None
        if created:
            user = call_pyodk(users.create, display_name=team.name)
        new = []
        for form_id in team.forms:
            if (user.id, form_id) not in assigned:
                assignments = FormAssignmentService(session=central.http, default_project_id=project_id,
                                                    default_form_id=form_id)
                call_pyodk(assignments.assign, role_id=role_id, user_id=user.id)
                new.append(form_id)
        access.append(TeamAccess(team, user.id, SecretStr(user.token), created, tuple(new)))
    return access


def project_name(central: CentralSession, project_id: int) -> str:
    """The project's name as Central shows it, for Collect's project list: the configuration may
    name the project by its id."""
    return str(central.json("GET", central.http.urlformat("projects/{pid}", pid=project_id))["name"])


def collect_settings(base_url: str, project_id: int, project_name: str, access: TeamAccess) -> dict:
    """ODK Collect's project settings, as its "Add project → scan QR code" expects them."""
    token = access.token.get_secret_value()
    return {
        "general": {
            "server_url": f"{base_url.rstrip('/')}/v1/key/{token}/projects/{project_id}",
            "form_update_mode": "match_exactly",
            "autosend": "wifi_and_cellular",
        },
        "admin": {},
        "project": {
            "name": f"{project_name} – {access.team.name}",
            "icon": access.team.icon or access.team.name[:1],
            "color": access.team.color,
        },
    }


def encode_settings(settings: dict) -> str:
    """Collect reads its QR payload as base64 of zlib-compressed JSON."""
    return base64.b64encode(zlib.compress(json.dumps(settings, ensure_ascii=False).encode("utf-8"))).decode("ascii")


def decode_settings(payload: str) -> dict:
    return json.loads(zlib.decompress(base64.b64decode(payload)).decode("utf-8"))


def _private_write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


@dataclass(frozen=True)
class QRSheet:
    pngs: list[Path]
    sheet: Path


def write_qr_codes(base_url: str, project_id: int, project_name: str, access: list[TeamAccess],
                   out_dir: Path) -> QRSheet:
    """A PNG per team and one printable HTML sheet for the field supervisor."""
    import segno

    out_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(out_dir, 0o700)
    pngs, cards = [], []
    for item in access:
        payload = encode_settings(collect_settings(base_url, project_id, project_name, item))
        buffer = io.BytesIO()
        segno.make(payload, error="l", micro=False).save(buffer, kind="png", scale=5, border=2)
        png = out_dir / f"{slug(item.team.name)}.png"
        _private_write(png, buffer.getvalue())
        pngs.append(png)
        data_uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        cards.append(
            f'<section class="card"><h2>{html.escape(item.team.name)}</h2>'
            f'<img src="{data_uri}" alt="QR">'
            f'<p>{html.escape(", ".join(item.team.forms))}</p></section>')
    page = f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>ODK Collect – {html.escape(project_name)}</title>
<style>
body {{ font-family: "Noto Sans", Arial, sans-serif; margin: 1.5cm; }}
.cards {{ display: grid; grid-template-columns: repeat(2, 1fr); gap: 1cm; }}
.card {{ border: 1px solid #999; padding: .5cm; break-inside: avoid; text-align: center; }}
.card img {{ width: 7cm; height: 7cm; image-rendering: pixelated; }}
.warning {{ color: #a00; }}
@media print {{ .warning {{ color: black; }} }}
</style></head><body>
<h1>ODK Collect – {html.escape(project_name)}</h1>
<p>Mở ODK Collect → Thêm dự án → Quét mã QR của đội mình. / Open ODK Collect → Add project → scan your team's QR code.</p>
<p class="warning">Mỗi mã QR là chìa khoá gửi dữ liệu của đội: không chia sẻ, huỷ bản in sau khi dùng. /
Each QR code is the team's key to submit data: do not share it; destroy the printout after use.</p>
<div class="cards">
{chr(10).join(cards)}
</div></body></html>
"""
    sheet = out_dir / "index.html"
    _private_write(sheet, page.encode("utf-8"))
    return QRSheet(pngs, sheet)
