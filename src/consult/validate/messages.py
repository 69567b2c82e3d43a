"""Every sentence validation writes, in Vietnamese and English, in one place for review.

Messages name questions by their labels in the form, so a supervisor reading the review
comment in Central recognises the question on the phone. Rules that come from a
constraint use the form's own constraint message instead (see `suite.py`).
"""

from __future__ import annotations

from consult.forms.schema import DataType, FormSchema, Labels

from .report import Bilingual

SHOWN_VALUE_CHARS = 80


def label(labels: Labels, lang: str, fallback: str) -> str:
    return labels.get(lang) or labels.get("en") or labels.get("vi") or fallback


def question(schema: FormSchema, name: str) -> Bilingual:
    """The label of a field or repeat, quoted, in both languages."""
    repeat = next((r for r in schema.repeats if r.name == name), None)
    labels = repeat.labels if repeat else schema.field(name).labels
    return Bilingual(f"“{label(labels, 'vi', name)}”", f"“{label(labels, 'en', name)}”")


def choice(schema: FormSchema, field: str, name: str) -> Bilingual:
    choices = schema.choices_for(field)
    vi = choices.label(name, "vi") if choices else None
    en = choices.label(name, "en") if choices else None
    return Bilingual(f"“{vi or en or name}”", f"“{en or vi or name}”")


def _shown(value: str | None) -> str:
    text = value or ""
    return text if len(text) <= SHOWN_VALUE_CHARS else text[:SHOWN_VALUE_CHARS] + "…"


def required(q: Bilingual) -> Bilingual:
    return Bilingual(f"Chưa trả lời câu hỏi bắt buộc {q.vi}.",
                     f"The required question {q.en} is not answered.")


def constraint_broken(q: Bilingual) -> Bilingual:
    """For a constraint the form gives no message for (lint asks for one, so rarely used)."""
    return Bilingual(f"Câu trả lời cho {q.vi} không thỏa điều kiện của biểu mẫu.",
                     f"The answer to {q.en} does not meet the form's condition.")


def not_a_choice(q: Bilingual) -> Bilingual:
    return Bilingual(f"Câu trả lời cho {q.vi} không có trong danh sách lựa chọn của biểu mẫu.",
                     f"The answer to {q.en} is not one of the form's choices.")


def not_a_token(q: Bilingual) -> Bilingual:
    return Bilingual(f"Một lựa chọn ở câu {q.vi} không có trong danh sách lựa chọn của biểu mẫu.",
                     f"An option chosen for {q.en} is not one of the form's choices.")


def outside_period(q: Bilingual, start: str) -> Bilingual:
    return Bilingual(f"{q.vi} phải nằm trong thời kỳ tham vấn: từ {start} đến ngày kiểm tra.",
                     f"{q.en} must fall within the consultation period: from {start} to the day of the "
                     "check.")


def required_here(q: Bilingual) -> Bilingual:
    return Bilingual(f"Câu hỏi {q.vi} là bắt buộc với các câu trả lời đã chọn nhưng chưa được trả lời.",
                     f"{q.en} is required given the answers chosen, but is not answered.")


def other_unspecified(chosen: Bilingual, q: Bilingual) -> Bilingual:
    return Bilingual(f"Đã chọn “Khác” ở câu {chosen.vi} nhưng chưa ghi rõ ở {q.vi}.",
                     f"“Other” is chosen for {chosen.en} but {q.en} is empty.")


def outside_filter(q: Bilingual, depends_on: Bilingual) -> Bilingual:
    return Bilingual(f"Câu trả lời cho {q.vi} không thuộc các lựa chọn dành cho câu trả lời ở "
                     f"{depends_on.vi}.",
                     f"The answer to {q.en} is not among the choices offered for the answer to "
                     f"{depends_on.en}.")


def no_members(repeat: Bilingual) -> Bilingual:
    return Bilingual(f"Chưa có {repeat.vi} nào: phải cử ít nhất một thành viên.",
                     f"No {repeat.en} entered: at least one member must be nominated.")


def lead_count(role: Bilingual, lead: Bilingual, count: int) -> Bilingual:
    return Bilingual(f"Phải có đúng một thành viên có {role.vi} là {lead.vi}; bài này có {count}.",
                     f"Exactly one member must have {role.en} {lead.en}; this submission has {count}.")


def budget_without_funding(budget: Bilingual, types: Bilingual, funding: Bilingual) -> Bilingual:
    return Bilingual(f"Có ghi {budget.vi} nhưng câu {types.vi} không chọn {funding.vi}.",
                     f"{budget.en} is filled although {funding.en} is not chosen in {types.en}.")


def funding_without_budget(budget: Bilingual, types: Bilingual, funding: Bilingual) -> Bilingual:
    return Bilingual(f"Đã chọn {funding.vi} ở câu {types.vi} nhưng chưa ghi {budget.vi}.",
                     f"{funding.en} is chosen in {types.en} but {budget.en} is empty.")


def duplicate(parts: list[Bilingual], earlier: str) -> Bilingual:
    vi = ", ".join(p.vi for p in parts)
    en = ", ".join(p.en for p in parts)
    return Bilingual(f"Trùng cuộc tham vấn: bài {earlier} đã có cùng {vi}.",
                     f"Duplicate interview: submission {earlier} already has the same {en}.")


_TYPE_NAMES = {
    DataType.INTEGER: Bilingual("số nguyên", "whole number"),
    DataType.DECIMAL: Bilingual("số", "number"),
    DataType.DATE: Bilingual("ngày", "date"),
    DataType.DATETIME: Bilingual("ngày giờ", "date and time"),
    DataType.GEOPOINT: Bilingual("toạ độ", "location"),
    DataType.STRING: Bilingual("văn bản", "text"),
    DataType.SELECT_ONE: Bilingual("văn bản", "text"),
    DataType.SELECT_MULTIPLE: Bilingual("văn bản", "text"),
}


def wrong_type(q: Bilingual, data_type: DataType | None, value: str | None) -> Bilingual:
    kind = _TYPE_NAMES.get(data_type, Bilingual("giá trị hợp lệ", "valid value")) if data_type else None
    if kind is None:  # a repeat whose entries are not a list
        return Bilingual(f"Dữ liệu của {q.vi} bị hỏng: “{_shown(value)}”.",
                         f"The entries of {q.en} are malformed: “{_shown(value)}”.")
    return Bilingual(f"{q.vi}: giá trị “{_shown(value)}” không phải là {kind.vi}.",
                     f"{q.en}: the value “{_shown(value)}” is not a {kind.en}.")
