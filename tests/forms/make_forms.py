"""Writes the collection of small XLSForms in tests/forms/, their media and the files uploads answer with.

Each form exercises one XLSForm question type, type alias, naming trap or structure, the way
an analyst copying a form from another organisation would meet it: single-language labels,
no ISG house rules. The generated files are the fixtures and are committed; run this again
after changing a form here (`python tests/forms/make_forms.py`, then `--check` runs pyxform
with ODK Validate on every form).

Forms are spelled as rows of dicts so each one reads like its survey sheet.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import struct
import sys
import wave
import zipfile
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent
MEDIA = HERE / "media"
ANSWERS = HERE / "answers"
VERSION = "2026120401"
STAMP = "2026-12-04T00:00:00Z"
EN = "English (en)"
VI = "Tiếng Việt (vi)"
FR = "Français (fr)"

Row = dict[str, str]


@dataclass(frozen=True)
class Form:
    """One XLSForm of the collection: what it tests, its sheets and the media it needs."""

    form_id: str
    purpose: str
    survey: list[Row]
    choices: list[Row] = field(default_factory=list)
    settings: Row = field(default_factory=dict)
    ext: str = "xlsx"
    media: tuple[str, ...] = ()
    only_sheet: str | None = None
    """Write the survey alone, on a sheet of this name, with no settings (pyxform takes the file name)."""

    @property
    def file_name(self) -> str:
        return f"{self.form_id}.{self.ext}"


def q(type_: str, name: str, label: str | None = None, **columns: str) -> Row:
    """A survey row; keyword columns with `__` stand for `::` (`label__en` → `label::en`)."""
    row = {"type": type_, "name": name}
    if label is not None:
        row["label"] = label
    row |= {k.replace("__", "::"): v for k, v in columns.items()}
    return row


def end(type_: str) -> Row:
    return {"type": type_}


def choices(list_name: str, *pairs: tuple[str, str], **extra: list[str]) -> list[Row]:
    """Choice rows of one list; `extra` gives a column per keyword, one value per choice."""
    rows = []
    for i, (name, label) in enumerate(pairs):
        row = {"list_name": list_name, "name": name, "label": label}
        row |= {column: values[i] for column, values in extra.items()}
        rows.append(row)
    return rows


YES_NO = choices("yn", ("yes", "Có"), ("no", "Không"))
COLOURS = choices("colour", ("red", "Đỏ"), ("green", "Xanh lá"), ("blue", "Xanh dương"))
CROPS = choices("crop", ("rice", "Lúa"), ("maize", "Ngô"), ("cassava", "Sắn"), ("coffee", "Cà phê"))
REGIONS = choices("region", ("north", "Miền Bắc"), ("central", "Miền Trung"), ("south", "Miền Nam"))
PROVINCES = choices("province", ("thai_nguyen", "Thái Nguyên"), ("thanh_hoa", "Thanh Hoá"),
                    ("tra_vinh", "Trà Vinh"), ("soc_trang", "Sóc Trăng"), ("an_giang", "An Giang"),
                    region=["north", "central", "south", "south", "south"])
NAME = q("text", "respondent", "Họ và tên người trả lời")


def single(form_id: str, purpose: str, *rows: Row, choice_rows: list[Row] | None = None, **kw) -> Form:
    """A form whose survey is a respondent name plus `rows`."""
    return Form(form_id, purpose, [NAME, *rows], choice_rows or [], **kw)


FORMS: list[Form] = [
    # --- question types and aliases -----------------------------------------------------------
    single("type_integer", "integer with a range constraint",
           q("integer", "households", "Số hộ", constraint=". >= 1 and . <= 500",
             constraint_message="Từ 1 đến 500"),
           q("integer", "year_joined", "Năm tham gia", constraint=". >= 2003 and . <= 2006")),
    single("type_int_alias", "the `int` alias must be an integer column, not text",
           q("int", "staff_days", "Số ngày công", constraint=". > 0"),
           q("int", "delegates", "Số đại biểu")),
    single("type_decimal", "decimal, negative allowed",
           q("decimal", "budget_musd", "Ngân sách (triệu USD)", constraint=". >= 0.5"),
           q("decimal", "change_pct", "Thay đổi (%)", constraint=". > -100 and . < 100")),
    single("type_range", "range with start/end/step parameters",
           q("range", "interest", "Mức quan tâm (1-5)", parameters="start=1 end=5 step=1"),
           q("range", "share", "Tỷ lệ", parameters="start=0 end=100 step=10")),
    single("type_text", "text, multiline appearance, Vietnamese answers",
           q("text", "comment", "Ý kiến"),
           q("text", "address", "Địa chỉ", appearance="multiline")),
    single("type_select_one", "select_one from the choices sheet",
           q("select_one colour", "colour", "Màu ưa thích"),
           q("select_one yn", "agree", "Đồng ý?"),
           choice_rows=COLOURS + YES_NO),
    single("type_select_multiple", "select_multiple: a choice table per question",
           q("select_multiple crop", "crops", "Cây trồng chính"),
           choice_rows=CROPS),
    single("type_select_one_from_file", "select_one_from_file and select_multiple_from_file over a CSV",
           q("select_one_from_file items.csv", "item", "Mặt hàng"),
           q("select_multiple_from_file items.csv", "items_sold", "Mặt hàng đã bán"),
           media=("items.csv",)),
    single("type_or_other", "or_other adds a choice `other` and a `<name>_other` text",
           q("select_one crop or_other", "main_crop", "Cây trồng chính"),
           q("select_multiple crop or_other", "other_crops", "Cây trồng khác"),
           choice_rows=CROPS),
    single("type_rank", "rank: a space-separated ordered list",
           q("rank colour", "colour_rank", "Xếp hạng màu"),
           choice_rows=COLOURS),
    single("type_note", "a note stores nothing; the question after it does",
           q("note", "intro", "Cảm ơn anh/chị đã tham gia 🙏"),
           q("text", "after_note", "Câu hỏi sau ghi chú")),
    single("type_geopoint", "geopoint: four numbers",
           q("geopoint", "location", "Vị trí")),
    single("type_gps", "the `gps` alias of geopoint",
           q("gps", "office_gps", "Vị trí văn phòng")),
    single("type_geotrace", "geotrace: Central serves GeoJSON; stored as WKT",
           q("geotrace", "road", "Tuyến đường")),
    single("type_geoshape", "geoshape: a closed ring",
           q("geoshape", "plot", "Thửa ruộng")),
    single("type_date", "date", q("date", "visit_date", "Ngày thăm", constraint=". <= today()")),
    single("type_time", "time keeps the phone's offset", q("time", "start_time", "Giờ bắt đầu")),
    single("type_datetime", "dateTime as xlsform.org spells it", q("dateTime", "met_at", "Thời điểm gặp")),
    single("type_datetime_alias", "the lower-case `datetime` alias",
           q("datetime", "left_at", "Thời điểm rời")),
    single("type_image", "image: the file name, the file as attachment", q("image", "photo", "Ảnh")),
    single("type_audio", "audio", q("audio", "voice", "Ghi âm")),
    single("type_background_audio", "background-audio records the interview; Collect attaches it",
           q("background-audio", "recording"), q("text", "topic", "Chủ đề")),
    single("type_video", "video", q("video", "clip", "Video")),
    single("type_file", "file: any document", q("file", "document", "Tài liệu")),
    single("type_barcode", "barcode: a string", q("barcode", "code", "Mã vạch")),
    single("type_calculate", "calculate: Central serves a string whatever it computes",
           q("integer", "members", "Số thành viên", constraint=". >= 1 and . <= 50"),
           q("calculate", "double_members", calculation="${members} * 2"),
           q("calculate", "greeting", calculation="concat('Xin chào ', ${respondent})")),
    single("type_hidden", "hidden: a value with no control",
           q("hidden", "batch", default="đợt-1"), q("integer", "count", "Số lượng")),
    single("type_acknowledge", "acknowledge: OK when ticked",
           q("acknowledge", "consent", "Tôi đồng ý tham gia"), q("text", "why", "Lý do")),
    Form("type_metadata", "start/end/today/deviceid/username/phonenumber/audit",
         [q("start", "start"), q("end", "end"), q("today", "today"), q("deviceid", "deviceid"),
          q("username", "username"), q("phonenumber", "phonenumber"), q("audit", "audit"), NAME]),
    # --- naming traps -------------------------------------------------------------------------
    single("name_hyphen", "hyphens: Central's OData turns them into `_`",
           q("text", "q-hyphen", "Câu có gạch nối"), q("integer", "n-count", "Số lượng"),
           q("begin_group", "g-1", "Nhóm"), q("text", "x-y", "Trong nhóm"), end("end_group")),
    single("name_dot", "dots in names",
           q("text", "q.dot", "Câu có dấu chấm"), q("decimal", "v.1", "Giá trị")),
    single("name_duplicate_in_groups", "the same names in two groups",
           q("begin_group", "g1", "Nhóm 1"), q("text", "dup", "Trùng 1"), q("integer", "n", "Số 1"),
           end("end_group"),
           q("begin_group", "g2", "Nhóm 2"), q("text", "dup", "Trùng 2"), q("integer", "n", "Số 2"),
           end("end_group")),
    single("name_case_clash", "`Name` and `name`: distinct in XML and OData, one column in SQLite",
           q("text", "Name", "Tên (hoa)"), q("text", "name", "Tên (thường)"),
           q("integer", "AGE", "Tuổi (hoa)"), q("integer", "age", "Tuổi (thường)")),
    single("name_select_repeat_clash", "a select_multiple and a repeat with one name",
           q("select_multiple crop", "crops", "Cây trồng"),
           q("begin_group", "farm", "Trang trại"),
           q("begin_repeat", "crops", "Từng cây trồng"), q("text", "crop_name", "Tên cây"), end("end_repeat"),
           end("end_group"),
           choice_rows=CROPS),
    single("name_reserved_words", "SQL reserved words as names",
           q("text", "select", "Chọn"), q("integer", "order", "Thứ tự"),
           q("text", "group", "Nhóm"), q("date", "from", "Từ ngày"),
           q("select_one yn", "table", "Bảng"), q("decimal", "where", "Ở đâu"),
           choice_rows=YES_NO),
    single("name_vietnamese", "Vietnamese names: `tên` → t_n, `đường` → __ng in OData",
           q("text", "tên", "Tên"), q("text", "đường", "Đường"),
           q("begin_group", "nhóm", "Nhóm"), q("integer", "tuổi", "Tuổi"), end("end_group"),
           q("begin_repeat", "hộ-gia.đình", "Hộ gia đình"), q("text", "tên-hộ", "Tên chủ hộ"),
           end("end_repeat")),
    single("name_odata_meet", "different XML names that meet in one OData name",
           q("text", "a-b", "A gạch B"), q("text", "a.b", "A chấm B"), q("text", "a_b", "A gạch dưới B"),
           q("integer", "tên", "Tên (số)"), q("integer", "tèn", "Tèn (số)")),
    single("name_underscore", "names starting with `_`, equal to key columns of the reporting database",
           q("text", "_under", "Gạch dưới"), q("integer", "_position", "Vị trí"),
           q("begin_repeat", "visit", "Chuyến thăm"), q("integer", "_position", "Thứ tự trong chuyến"),
           q("text", "_row_id", "Mã dòng"), end("end_repeat")),
    single("name_long", "a name longer than PostgreSQL's 63-character identifiers",
           q("text", "the_name_of_the_provincial_agency_that_answered_this_consultation_x", "Cơ quan"),
           q("begin_repeat", "members_nominated_by_the_provincial_people_committee_for_dialogue",
             "Thành viên"),
           q("text", "member_full_name_as_written_on_the_appointment_decision_of_province", "Tên"),
           end("end_repeat")),
    single("label_vietnamese_emoji", "Vietnamese and emoji in labels, hints and choice labels",
           q("select_one mood", "mood", "Hôm nay anh/chị thấy thế nào? 😀🌾", hint="Chọn một 👇"),
           q("text", "wish", "Mong muốn 🇻🇳 của anh/chị"),
           choice_rows=choices("mood", ("happy", "Vui 😊"), ("ok", "Bình thường 😐"), ("sad", "Buồn 😢"))),
    # --- structures ---------------------------------------------------------------------------
    single("nested_repeats", "a repeat in a repeat",
           q("begin_repeat", "household", "Hộ"), q("text", "head", "Chủ hộ"),
           q("begin_repeat", "member", "Thành viên"), q("text", "member_name", "Tên"),
           q("integer", "member_age", "Tuổi", constraint=". >= 0 and . < 120"), end("end_repeat"),
           end("end_repeat")),
    single("repeat_in_group_in_repeat", "Submissions.household.hh_group.asset",
           q("begin_repeat", "household", "Hộ"), q("text", "head", "Chủ hộ"),
           q("begin_group", "hh_group", "Tài sản"),
           q("begin_repeat", "asset", "Tài sản"), q("text", "asset_name", "Tên tài sản"),
           q("decimal", "asset_value", "Giá trị"), end("end_repeat"),
           end("end_group"), end("end_repeat")),
    single("loop", "begin loop over a list: one group per choice",
           q("begin loop over room", "rooms", "Phòng"), q("integer", "windows", "Số cửa sổ"),
           end("end loop"),
           choice_rows=choices("room", ("bedroom", "Phòng ngủ"), ("kitchen", "Bếp"))),
    single("field_list", "a group shown on one screen",
           q("begin_group", "page", "Một trang", appearance="field-list"),
           q("text", "agency", "Cơ quan"), q("integer", "staff", "Số cán bộ"),
           q("select_one yn", "trained", "Đã tập huấn?"), end("end_group"),
           choice_rows=YES_NO),
    single("choice_filter_csv", "a cascade: region from the choices sheet, place from a CSV",
           q("select_one region", "region", "Vùng"),
           q("select_one_from_file places.csv", "place", "Tỉnh", choice_filter="region=${region}"),
           choice_rows=REGIONS, media=("places.csv",)),
    single("choice_filter_sheet", "a cascade within the choices sheet",
           q("select_one region", "region", "Vùng"),
           q("select_one province", "province", "Tỉnh", choice_filter="region=${region}"),
           choice_rows=REGIONS + PROVINCES),
    Form("label_media", "image::, big-image:: and audio:: label media, an image on a choice",
         [q("note", "banner", "Biểu trưng", **{"media::image": "logo.png",
                                               "media::big-image": "photo_big.jpg",
                                               "media::audio": "prompt.wav"}),
          q("select_one colour", "colour", "Màu", **{"media::image": "logo.png"}), NAME],
         [r | ({"media::image": "photo_big.jpg"} if r["name"] == "red" else {}) for r in COLOURS],
         media=("logo.png", "photo_big.jpg", "prompt.wav")),
    single("pull_data", "pulldata() from a CSV no question lists choices from (xlsform.org's pull_data)",
           q("select_one province", "province", "Tỉnh"),
           q("calculate", "province_code", calculation="pulldata('codes', 'code', 'name', ${province})"),
           q("text", "remark", "Ghi chú"),
           choice_rows=PROVINCES, media=("codes.csv",)),
    Form("single_language", "labels, hints and messages with no ::language",
         [q("text", "agency", "Agency", hint="Full name", required="yes"),
          q("integer", "staff", "Staff", constraint=". >= 0", constraint_message="Must not be negative"),
          q("select_one yn", "willing", "Willing?")],
         choices("yn", ("yes", "Yes"), ("no", "No"))),
    Form("several_languages", "three languages, Vietnamese first",
         [q("text", "agency", None, **{f"label::{VI}": "Cơ quan", f"label::{EN}": "Agency",
                                       f"label::{FR}": "Organisme"}),
          q("select_one yn", "willing", None, **{f"label::{VI}": "Sẵn sàng?", f"label::{EN}": "Willing?",
                                                 f"label::{FR}": "Disposé ?"}),
          q("integer", "staff", None, constraint=". >= 0",
            **{f"label::{VI}": "Số cán bộ", f"label::{EN}": "Staff", f"label::{FR}": "Personnel",
               f"constraint_message::{VI}": "Không âm", f"constraint_message::{EN}": "Not negative",
               f"constraint_message::{FR}": "Pas négatif"})],
         [{"list_name": "yn", "name": "yes", f"label::{VI}": "Có", f"label::{EN}": "Yes",
           f"label::{FR}": "Oui"},
          {"list_name": "yn", "name": "no", f"label::{VI}": "Không", f"label::{EN}": "No",
           f"label::{FR}": "Non"}],
         settings={"default_language": VI}),
    Form("begin_repeat_spaces", "`begin repeat` / `begin group` written with spaces",
         [NAME, q("begin group", "info", "Thông tin"), q("text", "agency", "Cơ quan"), end("end group"),
          q("begin repeat", "member", "Thành viên"), q("text", "member_name", "Tên"), end("end repeat")]),
    Form("begin_repeat_underscore", "`begin_repeat` / `begin_group` written with an underscore",
         [NAME, q("begin_group", "info", "Thông tin"), q("text", "agency", "Cơ quan"), end("end_group"),
          q("begin_repeat", "member", "Thành viên"), q("text", "member_name", "Tên"), end("end_repeat")]),
    single("repeat_count", "a repeat whose count a question sets",
           q("integer", "n_members", "Số thành viên", constraint=". >= 1 and . <= 3"),
           q("begin_repeat", "member", "Thành viên", repeat_count="${n_members}"),
           q("text", "member_name", "Tên"), end("end_repeat")),
    single("relevance", "questions and a repeat asked only when relevant",
           q("select_one yn", "has_members", "Có thành viên?"),
           q("text", "why_not", "Vì sao không?", relevant="${has_members} = 'no'"),
           q("begin_repeat", "member", "Thành viên", relevant="${has_members} = 'yes'"),
           q("text", "member_name", "Tên"), end("end_repeat"),
           choice_rows=YES_NO),
    single("repeat_of_types", "every storable type inside a repeat",
           q("begin_repeat", "visit", "Chuyến thăm"),
           q("date", "visit_date", "Ngày"), q("integer", "people", "Số người"),
           q("decimal", "cost", "Chi phí"),
           q("geopoint", "where", "Vị trí"), q("select_multiple crop", "crops_seen", "Cây trồng"),
           q("time", "arrived", "Giờ đến"), end("end_repeat"),
           choice_rows=CROPS),
    single("select_numeric_choices", "choice names that look like numbers stay text",
           q("select_one score", "score", "Điểm"), q("select_multiple score", "scores", "Các điểm"),
           choice_rows=choices("score", ("1", "Một"), ("2", "Hai"), ("10", "Mười"), ("01", "Không một"))),
    single("allow_choice_duplicates", "`allow_choice_duplicates: yes` in settings",
           q("select_one dup", "pick", "Chọn"),
           choice_rows=choices("dup", ("a", "A một"), ("a", "A hai"), ("b", "B")),
           settings={"allow_choice_duplicates": "yes"}),
    single("instance_name", "meta/instanceName from a calculation",
           q("text", "agency", "Cơ quan"),
           settings={"instance_name": "concat(${agency}, ' - ', ${respondent})"}),
    single("choices_from_xml", "select_one_from_file over an XML file, its label read back with instance()",
           q("select_one_from_file regions.xml", "region", "Vùng"),
           q("calculate", "region_label",
             calculation="instance('regions')/root/item[name=${region}]/label"),
           media=("regions.xml",)),
    single("choices_from_geojson", "select_one_from_file over a GeoJSON file of places",
           q("select_one_from_file offices.geojson", "office", "Văn phòng"),
           media=("offices.geojson",)),
    single("csv_external", "csv-external: a CSV no question lists choices from, read with instance()",
           q("csv-external", "codes"),
           q("select_one province", "province", "Tỉnh"),
           q("calculate", "province_code",
             calculation="instance('codes')/root/item[name=${province}]/code"),
           choice_rows=PROVINCES, media=("codes.csv",)),
    Form("markdown_format", "pyxform's Markdown form",
         [NAME, q("integer", "households", "Số hộ"), q("select_one yn", "agree", "Đồng ý?")],
         YES_NO, ext="md"),
    Form("one_sheet_not_survey", "one sheet named Sheet1, no settings: pyxform reads it as the survey",
         [NAME, q("integer", "households", "Số hộ"), q("date", "visit_date", "Ngày thăm")],
         only_sheet="Sheet1"),
    Form("xls_format", "an Excel 97-2003 .xls workbook",
         [NAME, q("integer", "households", "Số hộ"), q("select_one yn", "agree", "Đồng ý?"),
          q("begin_repeat", "member", "Thành viên"), q("text", "member_name", "Tên"), end("end_repeat")],
         YES_NO, ext="xls"),
]


# --- media -------------------------------------------------------------------------------------

ITEMS_CSV = [["name", "label"], ["rice_seed", "Giống lúa"], ["fertiliser", "Phân bón"],
             ["tractor", "Máy cày"]]
PLACES_CSV = [["name", "label", "region", "code"],
              ["thai_nguyen", "Thái Nguyên", "north", "19"], ["thanh_hoa", "Thanh Hoá", "central", "38"],
              ["tra_vinh", "Trà Vinh", "south", "84"], ["soc_trang", "Sóc Trăng", "south", "94"],
              ["an_giang", "An Giang", "south", "89"]]


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def _image(size: tuple[int, int], colour: tuple[int, int, int], fmt: str) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).rectangle((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4),
                                    fill=(255, 205, 0))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def _wav() -> bytes:
    """A tenth of a second of silence: a real WAV an audio question can upload."""
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\x00\x00" * 800)
    return out.getvalue()


def _mp4() -> bytes:
    """An ISO base media file with only its `ftyp` box: the pipeline stores video, never plays it."""
    brands = b"isom" + struct.pack(">I", 512) + b"isomiso2mp41"
    return struct.pack(">I", 8 + len(brands)) + b"ftyp" + brands


REGIONS_XML = "<root>{}</root>\n".format(
    "".join(f"<item><name>{r['name']}</name><label>{r['label']}</label></item>" for r in REGIONS))
OFFICES_GEOJSON = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
     "properties": {"id": name, "title": title}}
    for name, title, lon, lat in (("dard_thai_nguyen", "Sở NN&PTNT Thái Nguyên", 105.84, 21.59),
                                  ("dard_soc_trang", "Sở NN&PTNT Sóc Trăng", 105.97, 9.6))]}

MEDIA_FILES = {
    "items.csv": lambda: _csv(ITEMS_CSV),
    "places.csv": lambda: _csv(PLACES_CSV),
    "codes.csv": lambda: _csv([[row[0], row[3]] for row in PLACES_CSV]),
    "logo.png": lambda: _image((48, 48), (218, 37, 29), "PNG"),
    "photo_big.jpg": lambda: _image((96, 64), (0, 102, 51), "JPEG"),
    "prompt.wav": lambda: _wav(),
    "regions.xml": lambda: REGIONS_XML.encode(),
    "offices.geojson": lambda: json.dumps(OFFICES_GEOJSON, ensure_ascii=False, indent=1).encode(),
}
ANSWER_FILES = {
    "photo.jpg": lambda: _image((64, 48), (30, 90, 160), "JPEG"),
    "voice.wav": _wav,
    "clip.mp4": _mp4,
    "notes.txt": lambda: "Biên bản họp tỉnh Sóc Trăng, 10/8/2004.\n".encode(),
    "background.wav": _wav,
    "audit.csv": lambda: _csv([["event", "node", "start", "end"], ["form start", "", "1091430000000", ""],
                               ["question", "/data/respondent", "1091430001000", "1091430009000"],
                               ["form exit", "", "1091430010000", ""]]),
}


# --- writing ------------------------------------------------------------------------------------


def _columns(rows: Iterable[Row], first: tuple[str, ...]) -> list[str]:
    seen = list(first)
    for row in rows:
        seen += [k for k in row if k not in seen]
    return [c for c in seen if any(c in r for r in rows)]


def sheets_of(form: Form) -> dict[str, list[list[str]]]:
    if form.only_sheet:
        columns = _columns(form.survey, ("type", "name", "label"))
        return {form.only_sheet: [columns, *([row.get(c, "") for c in columns] for row in form.survey)]}
    settings = {"form_title": form.purpose[:1].upper() + form.purpose[1:], "form_id": form.form_id,
                "version": VERSION} | form.settings
    sheets = {"survey": form.survey, "choices": form.choices, "settings": [settings]}
    out = {}
    for title, rows in sheets.items():
        if not rows:
            continue
        first = ("type", "name", "label") if title == "survey" else ("list_name", "name", "label")
        columns = _columns(rows, first)
        out[title] = [columns, *([row.get(c, "") for c in columns] for row in rows)]
    return out


def write_xlsx(path: Path, sheets: dict[str, list[list[str]]]) -> None:
    """The workbook with fixed zip and document timestamps: regenerating an unchanged form changes no byte."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    saved = io.BytesIO()
    book.save(saved)
    out = io.BytesIO()
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*", rb"\g<1>" + STAMP.encode(), data)
            target.writestr(zipfile.ZipInfo(item.filename, date_time=(2026, 12, 4, 0, 0, 0)), data,
                            compress_type=zipfile.ZIP_DEFLATED)
    path.write_bytes(out.getvalue())


def write_xls(path: Path, sheets: dict[str, list[list[str]]]) -> None:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    for title, rows in sheets.items():
        sheet = book.add_sheet(title)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                sheet.write(r, c, value)
    book.save(str(path))


def write_markdown(path: Path, sheets: dict[str, list[list[str]]]) -> None:
    """pyxform's Markdown form: a `| sheet |` line, then each row with an empty first cell."""
    lines = []
    for title, rows in sheets.items():
        lines.append(f"| {title} |")
        lines += ["| | " + " | ".join(row) + " |" for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


WRITERS = {"xlsx": write_xlsx, "xls": write_xls, "md": write_markdown}


def write_all(out_dir: Path = HERE) -> list[Path]:
    """Every form, media file and answer file; returns the form paths."""
    (out_dir / "media").mkdir(exist_ok=True)
    (out_dir / "answers").mkdir(exist_ok=True)
    for name, make in MEDIA_FILES.items():
        (out_dir / "media" / name).write_bytes(make())
    for name, make in ANSWER_FILES.items():
        (out_dir / "answers" / name).write_bytes(make())
    paths = []
    for form in FORMS:
        path = out_dir / form.file_name
        WRITERS[form.ext](path, sheets_of(form))
        paths.append(path)
    return paths


def validate(path: Path) -> str | None:
    """pyxform with ODK Validate: None when the form passes, else the message."""
    from pyxform.errors import PyXFormError
    from pyxform.validators.odk_validate import ODKValidateError
    from pyxform.xls2xform import convert

    try:
        convert(xlsform=path, validate=True, pretty_print=False)
    except (PyXFormError, ODKValidateError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="run pyxform + ODK Validate on every form")
    args = parser.parse_args(argv)
    ids = [f.form_id for f in FORMS]
    duplicated = {i for i in ids if ids.count(i) > 1}
    if duplicated:
        print(f"form ids used twice: {sorted(duplicated)}", file=sys.stderr)
        return 1
    paths = write_all()
    print(f"wrote {len(paths)} forms, {len(MEDIA_FILES)} media files, {len(ANSWER_FILES)} answer files")
    if not args.check:
        return 0
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(validate, paths))
    failed = [(p.name, r) for p, r in zip(paths, results, strict=True) if r]
    for name, message in failed:
        print(f"FAIL {name}: {message}", file=sys.stderr)
    print(f"{len(paths) - len(failed)}/{len(paths)} pass pyxform + ODK Validate")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
