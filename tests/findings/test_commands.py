"""`consult report` and the compile-findings flow, as an analyst runs them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consult.cli import app

from consult.forms import FormSchema

from ..conftest import BuiltForms
from .conftest import write_schemas


def test_consult_report_writes_the_files_and_prints_their_paths(reporting_db: str, isg_build_dir: Path,
                                                                tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--db", reporting_db, "--build-dir", str(isg_build_dir),
                                      "--lang", "en", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("findings-en.html", "findings-en.xlsx", "findings-en.md"):
        assert (tmp_path / name).is_file() and str((tmp_path / name).resolve()) in result.output


def test_consult_report_names_the_form_it_cannot_summarise(mixed_db: str,
                                                           mixed_schemas: dict[str, FormSchema],
                                                           tmp_path: Path) -> None:
    """A synced form with no FormSchema in the build directory is named; the rest is still written."""
    build_dir = write_schemas(mixed_schemas, tmp_path / "build")
    out = tmp_path / "reports"
    result = CliRunner().invoke(app, ["report", "--db", mixed_db, "--build-dir", str(build_dir),
                                      "--lang", "en", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Not summarised: unbuilt_form: no FormSchema" in result.output
    html = (out / "findings-en.html").read_text(encoding="utf-8")
    assert 'id="coverage_by_group"' in html and 'id="form-training_feedback"' in html
    assert 'id="form-khao_sat_ho"' in html and "unbuilt_form" in html


@pytest.mark.parametrize("arguments, code, said", [
    (["--db", "sqlite:///{tmp}/none.db"], 1, "run `consult sync` first"),
    (["--lang", "fr"], 2, "--lang must be vi or en"),
])
def test_consult_report_refuses_what_it_cannot_report(built_forms: BuiltForms, tmp_path: Path,
                                                      arguments: list[str], code: int, said: str) -> None:
    options = ["--build-dir", str(built_forms.out_dir), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, ["report", *options, *(a.format(tmp=tmp_path) for a in arguments)])
    assert result.exit_code == code and said in result.output
    assert not (tmp_path / "none.db").exists(), "a mistyped path must not leave an empty database behind"




def _markdown_artifact(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async def read() -> list:
        async with get_client() as client:
            wanted = ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
            return await client.read_artifacts(artifact_filter=wanted, sort=ArtifactSort.CREATED_DESC, limit=1)

    (artifact, *_) = asyncio.run(read())
    assert artifact.type == "markdown"
    return str(artifact.data)


def test_flow_writes_the_report_and_publishes_the_summary(prefect_api: None, reporting_db: str,
                                                          isg_build_dir: Path, tmp_path: Path) -> None:
    from flows.compile_findings import compile_findings

    paths = compile_findings(database=reporting_db, build_dir=str(isg_build_dir), lang="vi",
                             reports_dir=str(tmp_path))
    assert set(paths) == {"html", "workbook", "markdown"} and all(Path(p).is_file() for p in paths.values())
    summary = _markdown_artifact("consultation-findings-vi")
    assert summary.startswith(Path(paths["markdown"]).read_text(encoding="utf-8"))
    assert "Sóc Trăng" in summary and str(Path(paths["html"]).resolve()) in summary
