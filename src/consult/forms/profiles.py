"""`forms/consult.toml`: which forms opt into which profile (see the file itself for its format).

A form is named by its form_id (settings sheet, else the file's stem, as pyxform decides) or
by its file name; a form named nowhere follows `default_profile` (`odk` unless set).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from consult.forms.lint import Profile

CONFIG_FILE = "consult.toml"


class FormsConfigError(ValueError):
    """consult.toml cannot be used as it is; the message names the file and what to change."""


@dataclass(frozen=True)
class FormProfiles:
    source: Path | None = None
    forms: dict[str, Profile] = field(default_factory=dict)
    """Profile by form_id or file name."""
    default: Profile = Profile.ODK

    @classmethod
    def read(cls, forms_dir: Path) -> FormProfiles:
        path = forms_dir / CONFIG_FILE
        if not path.is_file():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise FormsConfigError(f"{path}: not valid TOML: {exc}") from None
        choices = ", ".join(p.value for p in Profile)
        try:
            default = Profile(data.get("default_profile", Profile.ODK.value))
        except ValueError:
            raise FormsConfigError(f"{path}: default_profile {data['default_profile']!r} is not a profile "
                                   f"({choices})") from None
        profiles = data.get("profiles", {})
        if not isinstance(profiles, dict):
            raise FormsConfigError(f"{path}: 'profiles' must be a table, e.g. [profiles.isg]")
        forms: dict[str, Profile] = {}
        for name, table in profiles.items():
            if name not in {p.value for p in Profile}:
                raise FormsConfigError(f"{path}: [profiles.{name}] is not a profile ({choices})")
            listed = table.get("forms", []) if isinstance(table, dict) else None
            if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
                raise FormsConfigError(f"{path}: [profiles.{name}] forms must be a list of form ids or file names")
            for form in listed:
                if forms.get(form, Profile(name)) is not Profile(name):
                    raise FormsConfigError(f"{path}: {form!r} is listed under both [profiles.{forms[form]}] and "
                                           f"[profiles.{name}]; keep one")
                forms[form] = Profile(name)
        return cls(path, forms, default)

    def profile_of(self, path: Path, form_id: str) -> Profile:
        return self.forms.get(form_id) or self.forms.get(path.name) or self.default
