"""The entity lists a forms folder declares, so the lint knows a `<list>.csv` that Central serves.

A form that reads `focal_points.csv` needs no file in forms/media when `focal_points` is an
entity list: Central links the list to the form as that attachment when the draft is made. A
list is declared by the `entities` sheet of a form in the same folder (its properties are the
`save_to` of that form's questions) or by `[entity_lists.<list>]` in the folder's consult.toml
(properties unknown to the lint then).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ENTITY_CSV_COLUMNS = frozenset({"name", "label", "__version"})
"""Columns of the list CSV Central attaches to a form, besides the properties (contract 23-05)."""
CONFIG_FILE = "consult.toml"


@dataclass(frozen=True)
class DeclaredLists:
    """List name → the properties the folder's forms save into it (None: declared only in consult.toml)."""

    lists: dict[str, frozenset[str] | None] = field(default_factory=dict)

    def declares(self, filename: str) -> bool:
        return filename.lower().endswith(".csv") and filename[:-4] in self.lists

    def columns(self, filename: str) -> set[str] | None:
        """The columns of a declared list's CSV, or None when its properties are unknown."""
        properties = self.lists.get(filename[:-4]) if self.declares(filename) else None
        return None if properties is None else {*ENTITY_CSV_COLUMNS, *properties}

    @classmethod
    def read(cls, forms_dir: Path, also: Iterable[Path] = ()) -> DeclaredLists:
        """The lists declared by the XLSForms of `forms_dir`, those of `also` (forms checked from
        elsewhere) and `forms_dir`'s consult.toml."""
        from consult.forms.lint import XLSFORM_SUFFIXES, read_sheets

        here = [p for p in sorted(forms_dir.glob("*")) if p.is_file() and p.suffix.lower() in XLSFORM_SUFFIXES
                and not p.name.startswith(("~$", "."))]
        paths = list(dict.fromkeys([*here, *also]))
        lists: dict[str, frozenset[str] | None] = dict.fromkeys(_configured(forms_dir / CONFIG_FILE))
        for path in paths:
            try:
                sheets = read_sheets(path)
            except Exception:  # a form that cannot be read is reported by its own check
                continue
            entities = sheets.get("entities")
            if entities is None:
                continue
            saved = frozenset(cells["save_to"] for _, cells in (sheets["survey"].rows if "survey" in sheets else [])
                              if cells.get("save_to"))
            for _, cells in entities.rows:
                name = cells.get("list_name")
                if name:
                    lists[name] = (lists.get(name) or frozenset()) | saved
        return cls(lists)


def _configured(path: Path) -> list[str]:
    """`[entity_lists.<name>]` tables; a consult.toml that cannot be read declares none (its own
    reader reports it)."""
    if not path.is_file():
        return []
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8")).get("entity_lists", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return []
    return list(tables) if isinstance(tables, dict) else []
