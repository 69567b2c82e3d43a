"""Where the ODK Central server is and who we are on it.

Read from pyodk's TOML config file (`[central] base_url, username, password,
default_project_id`), then from `CONSULT_CENTRAL_*` environment variables, which win.
The password is a SecretStr: it never shows in a repr, a log line or an exception.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, SecretStr

DEFAULT_PROJECT = "ISG Consultations"
ENV_PREFIX = "CONSULT_CENTRAL_"


class CentralConfigError(ValueError):
    """The configuration is incomplete or unreadable; the message says which setting."""


class CentralSettings(BaseModel):
    url: str
    username: str
    password: SecretStr
    project: str = DEFAULT_PROJECT
    """A project name (created if missing) or a numeric project id."""
    ca_bundle: Path | None = None
    verify_tls: bool = True
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 0.5
    """Seconds before the first retry; doubles each time (urllib3's backoff_factor)."""

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/").removesuffix("/v1")

    @classmethod
    def load(cls, config_file: Path | None = None, environ: dict[str, str] | None = None) -> CentralSettings:
        """pyodk's TOML file (explicit path, PYODK_CONFIG_FILE, or ~/.pyodk_config.toml), then the environment."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        path = config_file or (Path(environ["PYODK_CONFIG_FILE"]) if environ.get("PYODK_CONFIG_FILE") else None)
        if path is None and (Path.home() / ".pyodk_config.toml").is_file():
            path = Path.home() / ".pyodk_config.toml"
        if path is not None:
            try:
                central = tomllib.loads(path.read_text(encoding="utf-8")).get("central", {})
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise CentralConfigError(f"cannot read the Central config file {path}: {exc}") from None
            values.update({"url": central.get("base_url"), "username": central.get("username"),
                           "password": central.get("password")})
            if central.get("default_project_id") is not None:
                values["project"] = str(central["default_project_id"])
        for key, field in (("URL", "url"), ("USER", "username"), ("PASSWORD", "password"),
                           ("PROJECT", "project"), ("CA_BUNDLE", "ca_bundle")):
            if environ.get(ENV_PREFIX + key):
                values[field] = environ[ENV_PREFIX + key]
        if environ.get(ENV_PREFIX + "INSECURE", "").lower() in ("1", "true", "yes"):
            values["verify_tls"] = False
        missing = [name for name in ("url", "username", "password") if not values.get(name)]
        if missing:
            names = ", ".join(ENV_PREFIX + {"url": "URL", "username": "USER", "password": "PASSWORD"}[m]
                              for m in missing)
            raise CentralConfigError(f"ODK Central is not configured: set {names} or give a pyodk config file")
        url = str(values["url"])
        if not url.startswith(("http://", "https://")):
            raise CentralConfigError(f"the ODK Central URL {url!r} has no scheme: write it in full, "
                                     f"e.g. https://{url.split('://')[-1]}")
        return cls.model_validate({k: v for k, v in values.items() if v is not None})
