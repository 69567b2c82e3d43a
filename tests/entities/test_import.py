"""`consult entities import|list|export` against the sandbox over HTTP."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from consult.central import CentralSession, deploy_forms, resolve_project
from consult.central.deploy import BuiltForm
from consult.cli import app
from consult.entities import seed_uuid
from consult.sandbox import SandboxServer

from .conftest import PASSWORD

PROVINCES = ("thai_nguyen", "thanh_hoa", "tra_vinh", "soc_trang", "an_giang")


def contact_sheet(path: Path, rows: list[list[object]], header: tuple[str, ...] = (
        "label", "full_name", "province", "agency", "phone")) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(list(header))
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def twenty_focal_points() -> list[list[object]]:
    return [[f"Nguyễn Văn Đức {i} - {PROVINCES[i % 5]}", f"Nguyễn Văn Đức {i}", PROVINCES[i % 5],
             "Sở Nông nghiệp và PTNT", f"+84 90 000 {i:04d}"] for i in range(20)]


@pytest.fixture
def project(central: CentralSession, entity_forms: list[BuiltForm], server: SandboxServer) -> tuple[int, dict]:
    project_id = resolve_project(central, central.settings.project)
    deploy_forms(central, project_id, entity_forms, {})
    env = {**os.environ, "CONSULT_CENTRAL_URL": server.url, "CONSULT_CENTRAL_USER": server.admin_email,
           "CONSULT_CENTRAL_PASSWORD": PASSWORD, "CONSULT_CENTRAL_PROJECT": str(project_id)}
    return project_id, env


def consult(env: dict, *args: str) -> tuple[int, str, str]:
    result = CliRunner(env=env).invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_twenty_rows_are_imported_once_even_when_run_twice(project: tuple[int, dict], central: CentralSession,
                                                            tmp_path: Path) -> None:
    project_id, env = project
    sheet = contact_sheet(tmp_path / "contacts.xlsx", twenty_focal_points())
    code, out, err = consult(env, "entities", "import", str(sheet), "--list", "focal_points", "--key", "phone",
                             "--batch-size", "7")
    assert code == 0, err
    assert "20 rows, 20 created, 0 already there" in out
    code, out, _ = consult(env, "entities", "import", str(sheet), "--list", "focal_points", "--key", "phone")
    assert code == 0 and "20 rows, 0 created, 20 already there" in out
    entities = central.json("GET", f"projects/{project_id}/datasets/focal_points/entities")
    assert len(entities) == 20
    one = central.json("GET", f"projects/{project_id}/datasets/focal_points/entities/"
                              f"{seed_uuid(project_id, 'focal_points', 'phone', '+84 90 000 0003')}")
    assert one["currentVersion"]["data"] == {"full_name": "Nguyễn Văn Đức 3", "province": "soc_trang",
                                             "agency": "Sở Nông nghiệp và PTNT", "phone": "+84 90 000 0003"}


def test_every_bad_row_is_reported_and_nothing_is_created(project: tuple[int, dict], central: CentralSession,
                                                          tmp_path: Path) -> None:
    project_id, env = project
    rows = twenty_focal_points()[:4]
    rows[1][0] = None  # no label
    rows[2][4] = 84900000002  # a phone typed as a number: its + is gone
    rows[3][4] = rows[0][4]  # the same key twice
    sheet = contact_sheet(tmp_path / "bad.xlsx", rows)
    code, out, err = consult(env, "entities", "import", str(sheet), "--list", "focal_points", "--key", "phone")
    assert code == 1 and "creating" not in out
    assert err.splitlines() == [
        "bad.xlsx: 3 problem(s), nothing was created; fix these rows and run again:",
        "  row 3: the label is empty",
        ("  row 4: phone is a number cell in the spreadsheet (84900000002): format the column as Text so it is "
         "kept exactly as typed"),
        "  row 5: same phone as row 2 (+84 90 000 0000)"]
    assert central.json("GET", f"projects/{project_id}/datasets/focal_points/entities") == []
    unknown = contact_sheet(tmp_path / "unknown.xlsx", [["A - an_giang", "a@b.vn"]], ("label", "email"))
    code, _, err = consult(env, "entities", "import", str(unknown), "--list", "focal_points", "--key", "label")
    assert code == 1 and "row 1: column 'email' is not a property of focal_points (its properties: agency, " \
                         "full_name, phone, province)" in err
    code, _, err = consult(env, "entities", "import", str(unknown), "--list", "focal_points")
    assert (code, err.count("\n")) == (1, 1) and "--key" in err and "Traceback" not in err


def test_a_uuid_column_is_the_key_and_the_list_must_exist(project: tuple[int, dict], tmp_path: Path) -> None:
    _, env = project
    sheet = tmp_path / "with-uuid.csv"
    entity_id = "0b8b5f3e-8d5c-4f43-9a41-6f2d0f6b1c11"
    sheet.write_text(f"uuid,label,full_name\n{entity_id},Lý Thị Hằng - tra_vinh,Lý Thị Hằng\n",
                     encoding="utf-8-sig")
    code, out, err = consult(env, "entities", "import", str(sheet), "--list", "focal_points")
    assert code == 0 and "1 created" in out, err
    code, _, err = consult(env, "entities", "import", str(sheet), "--list", "focal_point")
    assert code == 1 and err.strip().startswith("no entity list 'focal_point' in project")


def test_list_fits_80_columns_and_export_keeps_text_as_text(project: tuple[int, dict], tmp_path: Path) -> None:
    _, env = project
    sheet = tmp_path / "c.csv"
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        rows = twenty_focal_points()[:3]
        rows[2][3] = '=HYPERLINK("http://x")'
        csv.writer(handle).writerows([["label", "full_name", "province", "agency", "phone"], *rows])
    code, _, err = consult(env, "entities", "import", str(sheet), "--list", "focal_points", "--key", "phone")
    assert code == 0, err
    code, out, _ = consult(env, "entities", "list", "--list", "focal_points")
    assert code == 0 and "focal_points: 3 entities" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "Nguyễn Văn Đức 0 - thai_nguyen" in out
    code, _, err = consult(env, "entities", "export", "--list", "focal_points", "--out", str(tmp_path / "fp.csv"))
    assert code == 0, err
    raw = (tmp_path / "fp.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    exported = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert [r["label"] for r in exported if r["agency"].startswith("'=")] == ["Nguyễn Văn Đức 2 - tra_vinh"]
    assert {r["__version"] for r in exported} == {"1"} and "'+84 90 000 0001" in {r["phone"] for r in exported}
    code, _, _ = consult(env, "entities", "export", "--list", "focal_points", "--out", str(tmp_path / "fp.xlsx"))
    sheet = load_workbook(tmp_path / "fp.xlsx").active
    header = [c.value for c in sheet[1]]
    formula = next(row for row in sheet.iter_rows(min_row=2) if str(row[header.index("agency")].value)[0] == "=")
    assert formula[header.index("agency")].data_type == "s" and formula[header.index("agency")].quotePrefix


def test_files_that_are_not_what_they_say_are_one_line(project: tuple[int, dict], tmp_path: Path) -> None:
    _, env = project
    latin = tmp_path / "contacts.csv"
    latin.write_bytes("label,full_name\nHoà - x,Hoà\n".encode("cp1258"))
    fake = tmp_path / "contacts.xlsx"
    fake.write_text("label,full_name\n", encoding="utf-8")
    for path, expected in ((latin, 'contacts.csv is not UTF-8 text: save it from Excel as "CSV UTF-8"'),
                           (fake, "contacts.xlsx is not an Excel workbook (.xlsx)")):
        code, _, err = consult(env, "entities", "import", str(path), "--list", "focal_points", "--key", "label")
        assert (code, err.count("\n")) == (1, 1) and err.startswith(expected), err
