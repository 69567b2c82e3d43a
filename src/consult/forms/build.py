"""`consult forms build`: every XLSForm in forms/ checked, then written as XForm + FormSchema.

The build folder is what deploys: `<form_id>.xml`, `<form_id>.schema.json` and every media
file the XForms refer to, so a deploy never reads the XLSForms again.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from consult.forms.lint import (
    XLSFORM_SUFFIXES,
    FormIssue,
    FormReport,
    Profile,
    check_form,
    external_itemsets,
)
from consult.forms.entity_lists import DeclaredLists
from consult.forms.media import EXTERNAL_ITEMSETS
from consult.forms.profiles import FormProfiles
from consult.forms.schema import FormSchema
from consult.forms.xlsform import load_converters


@dataclass(frozen=True)
class FormSources:
    """Where the XLSForms, their media and `consult.toml` live."""

    forms_dir: Path

    @property
    def media_dir(self) -> Path:
        return self.forms_dir / "media"

    def xlsforms(self) -> list[Path]:
        """Every form pyxform reads: `.xlsx`, `.xlsm`, `.xls`, Markdown and CSV forms (not the
        media folder's CSVs, which sit one level down)."""
        if not self.forms_dir.is_dir():
            return []
        return sorted(p for p in self.forms_dir.iterdir()
                      if p.is_file() and p.suffix.lower() in XLSFORM_SUFFIXES and not p.name.startswith(("~$", ".")))

    def profiles(self) -> FormProfiles:
        return FormProfiles.read(self.forms_dir)


def previous_builds(out_dir: Path) -> dict[str, FormSchema]:
    """The last built schema of each XLSForm (by file name), to keep versions moving forward."""
    built = {}
    for path in sorted(out_dir.glob("*.schema.json")):
        try:
            schema = FormSchema.read(path)
        except ValueError:
            continue
        built[schema.source] = schema
    return built


def check_forms(paths: list[Path], media_dir: Path, out_dir: Path | None = None,
                profile: Profile | str | None = None) -> list[FormReport]:
    """Lint the forms, each under `profile` if given, else the one consult.toml (next to
    media_dir) gives it. ODK Validate runs Java per form, so forms are checked side by side.
    Raises FormsConfigError for a consult.toml that cannot be used."""
    previous = previous_builds(out_dir) if out_dir else {}
    load_converters()
    profiles = FormProfiles.read(media_dir.parent)
    lists = DeclaredLists.read(media_dir.parent, paths)
    override = Profile(profile) if profile is not None else None
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda p: check_form(p, media_dir, previous.get(p.name), override, profiles, lists),
                             paths))


def write_build(report: FormReport, media_dir: Path, out_dir: Path,
                generated: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write the XForm, the FormSchema and every media file the form refers to: from media_dir,
    or from `generated` (file name → text) for files the form itself defines."""
    assert report.compiled is not None and report.ok
    out_dir.mkdir(parents=True, exist_ok=True)
    schema = report.compiled.schema
    xform_path = out_dir / f"{schema.form_id}.xml"
    schema_path = out_dir / f"{schema.form_id}.schema.json"
    xform_path.write_text(report.compiled.xform, encoding="utf-8")
    schema.write(schema_path)
    if schema.media:
        (out_dir / "media").mkdir(exist_ok=True)
        for name in schema.media:
            if (media_dir / name).is_file():
                shutil.copy2(media_dir / name, out_dir / "media" / name)
            elif generated and name in generated:
                (out_dir / "media" / name).write_text(generated[name], encoding="utf-8", newline="")
    return xform_path, schema_path


def build_forms(paths: list[Path], media_dir: Path, out_dir: Path,
                profile: Profile | str | None = None) -> list[FormReport]:
    """Check every form; write the ones that pass. A form with errors leaves its last build alone.

    `itemsets.csv` (select_one_external) comes from forms/media/ if there, else from the form's
    external_choices sheet; the build folder holds one, so two forms may not define different ones."""
    reports = check_forms(paths, media_dir, out_dir, profile)
    itemsets_of: tuple[str, str] | None = None
    for report in reports:
        if not report.ok:
            continue
        schema = report.compiled.schema
        generated = {}
        if EXTERNAL_ITEMSETS in schema.media and not (media_dir / EXTERNAL_ITEMSETS).is_file():
            generated[EXTERNAL_ITEMSETS] = external_itemsets(report.path) or ""
            if itemsets_of and itemsets_of[1] != generated[EXTERNAL_ITEMSETS]:
                report.issues.append(FormIssue(
                    str(report.path), f"its external_choices differ from those of {itemsets_of[0]}, and both "
                    f"would be {EXTERNAL_ITEMSETS} in {out_dir / 'media'}: build them into separate folders "
                    "(--out) or share one external_choices sheet", "external_choices"))
                continue
            itemsets_of = itemsets_of or (schema.form_id, generated[EXTERNAL_ITEMSETS])
        write_build(report, media_dir, out_dir, generated)
    return reports
