"""Secrets: the admin password, the session token and app-user keys never reach a log line,
an exception, a report or the database; TLS is verified unless explicitly, noisily, turned off."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from pydantic import SecretStr

from consult.central import CentralError, CentralSession, CentralSettings
from consult.central.pull import _served_at
from consult.sync import Pulled

from ..conftest import REPO
from ..fieldwork_central import Field
from .proxy import Fault, FaultProxy


def _secrets(field: Field) -> list[str]:
    with CentralSession(field.settings) as central:
        users = central.json("GET", f"projects/{field.project_id}/app-users")
        central.json("GET", "users/current")
        bearer = central.http.headers.get("Authorization", "") or ""
        token = getattr(getattr(central.http, "auth", None), "_token", None) or ""
    secrets = [field.server.admin_password] + [u["token"] for u in users if u.get("token")]
    secrets += [s for s in (bearer.removeprefix("Bearer ").strip(), str(token)) if len(s) > 8]
    assert len(secrets) >= 2, "the app users' keys must be in the scan"
    return secrets


def _cli(field: Field, env_url: str, db: Path, *forms: str) -> subprocess.CompletedProcess:
    env = field.env(f"sqlite:///{db}") | {"CONSULT_CENTRAL_URL": env_url}
    args = [a for f in forms for a in ("--form", f)]
    return subprocess.run([sys.executable, "-m", "consult.sync", "--build-dir", str(field.built.out_dir), *args],
                          env=env, cwd=REPO, capture_output=True, timeout=120)


def test_a_cli_sync_leaves_no_secret_in_its_output_or_the_database(field: Field, tmp_path: Path,
                                                                   hardening_tally) -> None:
    secrets = _secrets(field)
    db = tmp_path / "reporting.db"
    run = _cli(field, field.server.url, db, "workshop_evaluation")
    assert run.returncode == 0, run.stderr.decode()
    places = {"stdout": run.stdout, "stderr": run.stderr, "database": db.read_bytes()}
    places |= {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    leaks = [(where, s[:4]) for where, blob in places.items() for s in secrets if s.encode() in blob]
    hardening_tally("secrets: CLI sync output + DB + artifacts", cases=len(places) * len(secrets), leaked=len(leaks))
    assert not leaks


@pytest.fixture(scope="module")
def failing_run(field: Field, tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess:
    """`python -m consult.sync` while Central answers 503 to every OData page."""
    with FaultProxy(field.server.url) as proxy:
        proxy.set(Fault("status", status=503, times=None))
        return _cli(field, proxy.url, tmp_path_factory.mktemp("failing") / "reporting.db", "workshop_evaluation")


def test_a_failing_cli_sync_says_why_without_a_secret(field: Field, failing_run, hardening_tally) -> None:
    secrets = _secrets(field)
    run = failing_run
    out = run.stdout + run.stderr
    leaks = [s[:4] for s in secrets if s.encode() in out]
    hardening_tally("secrets: CLI sync failing on 503", cases=len(secrets), leaked=len(leaks))
    assert run.returncode != 0 and not leaks
    assert b"503" in run.stderr


def test_a_failing_cli_sync_prints_one_clear_line_not_a_traceback(failing_run) -> None:
    run = failing_run
    assert run.returncode == 1
    assert b"Traceback" not in run.stderr


def test_a_wrong_password_fails_with_a_message_that_does_not_repeat_it(field: Field, hardening_tally) -> None:
    wrong = "Wr0ng-Pa55word-§-distinctive"
    settings = field.settings.model_copy(update={"password": SecretStr(wrong), "retries": 0})
    with CentralSession(settings) as central, pytest.raises(CentralError) as caught:
        central.json("GET", "projects")
    leaked = int(wrong in str(caught.value) or wrong in repr(caught.value) or wrong in repr(settings)
                 or wrong in repr(central))
    hardening_tally("secrets: login failure message", leaked=leaked)
    assert not leaked


def test_tls_is_verified_by_default_a_ca_bundle_is_used_and_turning_it_off_warns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # the machine's bundle: tests/central/test_environment.py
        monkeypatch.delenv(variable, raising=False)
    base = {"url": "https://central.example.org", "username": "a@example.org", "password": "x-secret-x"}
    settings = CentralSettings(**base)
    assert settings.verify_tls is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with CentralSession(settings) as central:
            assert central.http.verify is True
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    with CentralSession(CentralSettings(**base, ca_bundle=bundle)) as central:
        assert central.http.verify == str(bundle)
    loaded = CentralSettings.load(environ={"CONSULT_CENTRAL_URL": base["url"], "CONSULT_CENTRAL_USER": "a@b.c",
                                           "CONSULT_CENTRAL_PASSWORD": "p", "CONSULT_CENTRAL_CA_BUNDLE": str(bundle)})
    assert loaded.ca_bundle == bundle and loaded.verify_tls
    insecure = CentralSettings.load(environ={"CONSULT_CENTRAL_URL": base["url"], "CONSULT_CENTRAL_USER": "a@b.c",
                                             "CONSULT_CENTRAL_PASSWORD": "p", "CONSULT_CENTRAL_INSECURE": "1"})
    assert insecure.verify_tls is False
    with pytest.warns(UserWarning, match="TLS certificate verification is OFF"):
        with CentralSession(insecure) as central:
            assert central.http.verify is False
    assert "x-secret-x" not in repr(settings) and "x-secret-x" not in str(settings.model_dump())


def test_a_date_header_without_a_zone_does_not_crash_the_watermark() -> None:
    from datetime import UTC, datetime

    served = _served_at("Sat, 28 Nov 2026 20:47:34 -0000")
    pulled = Pulled(latest=datetime(2026, 11, 28, 20, 47, 29, tzinfo=UTC), served_at=served)
    assert pulled.watermark == datetime(2026, 11, 28, 20, 47, 29, tzinfo=UTC)
