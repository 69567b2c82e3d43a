"""What rules say about a form's fields, without pandas: safe to import from the warehouse."""

from __future__ import annotations

from collections.abc import Iterable

from consult.forms.schema import FormSchema

FORM_TABLE = ""
"""Key of the form's own table in its layout (one row per submission)."""


def require_fields(schema: FormSchema, rule: str, fields: Iterable[str]) -> None:
    """A rule naming a field the form lacks is an error, never a silent skip."""
    names = {f.name for f in schema.fields} | {f.key for f in schema.fields} | {r.name for r in schema.repeats}
    if missing := sorted(set(fields) - names):
        raise ValueError(f"{schema.form_id}: rule {rule} reads {missing}, which the form lacks")
