"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consult.forms import FormSchema, FormSources, build_forms

from .enumerator.engine import HERE as ENGINE_DIR
from .enumerator.engine import EnumeratorEngine

REPO = Path(__file__).resolve().parents[1]
FORMS = FormSources(REPO / "forms")
FORM_IDS = ("province_consultation", "ministry_consultation", "donor_consultation",
            "focal_point_registration", "workshop_evaluation")


class BuiltForms:
    """The five forms built once per test session: XForms, FormSchemas and media."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.media_dir = out_dir / "media"

    def xform(self, form_id: str) -> Path:
        return self.out_dir / f"{form_id}.xml"

    def schema(self, form_id: str) -> FormSchema:
        return FormSchema.read(self.out_dir / f"{form_id}.schema.json")


@pytest.fixture(scope="session")
def built_forms(tmp_path_factory: pytest.TempPathFactory) -> BuiltForms:
    out_dir = tmp_path_factory.mktemp("build") / "forms"
    reports = build_forms(FORMS.xlsforms(), FORMS.media_dir, out_dir)
    problems = [str(i) for r in reports for i in r.issues if not r.ok]
    assert all(r.ok for r in reports), problems
    return BuiltForms(out_dir)


@pytest.fixture(scope="session")
def enumerator() -> Iterator[EnumeratorEngine]:
    """ODK's XForms engine in one Node process for the session: starting it costs ~1 s, an interview ~0.1 s."""
    if not (ENGINE_DIR / "node_modules" / "@getodk" / "xforms-engine").is_dir():
        pytest.fail("tests/enumerator/node_modules is missing: run `npm ci --prefix tests/enumerator`")
    with EnumeratorEngine() as engine:
        yield engine
