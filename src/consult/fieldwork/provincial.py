"""Provinces: the consultations of provincial agencies and the five pilot provinces' registrations.

The five pilot provinces (Thái Nguyên, Thanh Hoá, Trà Vinh, Sóc Trăng, An Giang) were visited
more often and answered more warmly than the others; each then registered its focal point by
an official decision naming 3–7 members, exactly one of them the lead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from consult.forms.schema import Choice

from . import people
from .interview import Draft
from .kit import OTHER, FormKit, working_day
from .photo import decision_photo

AGENCIES = {"dard": 25, "dpi": 20, "ppc": 12, "dof": 10, "dolisa": 8, "extension_centre": 7, "donre": 5,
            "dofi": 5, "other": 3}
MEMBER_AGENCIES = {"dard": 40, "dpi": 25, "ppc": 8, "dof": 8, "dolisa": 8, "extension_centre": 6, "donre": 2,
                   "dofi": 2, "other": 1}
AGENCIES_OTHER = ["Ban Dân tộc tỉnh", "Hội Nông dân tỉnh", "Hội Liên hiệp Phụ nữ tỉnh", "Cục Thống kê tỉnh",
                  "Chi cục Phát triển nông thôn", "Ngân hàng Chính sách Xã hội chi nhánh tỉnh",
                  "Liên minh Hợp tác xã tỉnh"]
POSITIONS = {
    "ppc": ["Phó Chủ tịch UBND tỉnh", "Chánh Văn phòng UBND tỉnh", "Phó Chánh Văn phòng UBND tỉnh",
            "Chuyên viên Văn phòng UBND tỉnh"],
    "dard": ["Giám đốc Sở", "Phó Giám đốc Sở", "Trưởng phòng Kế hoạch",
             "Phó trưởng phòng Kế hoạch – Tài chính", "Chuyên viên phòng Kế hoạch"],
    "dpi": ["Giám đốc Sở", "Phó Giám đốc Sở", "Trưởng phòng Tổng hợp", "Trưởng phòng Kinh tế Nông nghiệp",
            "Chuyên viên phòng Tổng hợp"],
    "dof": ["Phó Giám đốc Sở", "Trưởng phòng Ngân sách", "Chuyên viên phòng Tài chính Hành chính sự nghiệp"],
    "dolisa": ["Phó Giám đốc Sở", "Trưởng phòng Bảo trợ Xã hội", "Chuyên viên Văn phòng XĐGN"],
    "donre": ["Phó Giám đốc Sở", "Trưởng phòng Kế hoạch – Tài chính", "Chuyên viên"],
    "dofi": ["Phó Giám đốc Sở", "Trưởng phòng Kế hoạch", "Chuyên viên"],
    "extension_centre": ["Giám đốc Trung tâm", "Phó Giám đốc Trung tâm", "Cán bộ khuyến nông"],
    "other": ["Phó Trưởng ban", "Chuyên viên", "Cán bộ"],
}
ISP_DOMAINS = ["vnn.vn", "hn.vnn.vn", "yahoo.com"]
CONSTRAINTS = ["Thiếu cán bộ có kinh nghiệm lập kế hoạch dựa vào kết quả.",
               "Kinh phí đối ứng của tỉnh còn hạn chế.",
               "Cán bộ kiêm nhiệm nhiều việc, khó bố trí thời gian tham gia.",
               "Chưa có hướng dẫn cụ thể từ Bộ NN&PTNT về vai trò của đầu mối.",
               "Phối hợp giữa Sở NN&PTNT và Sở KH&ĐT còn chưa chặt chẽ.",
               "Số liệu nghèo đói cấp huyện, xã chưa đầy đủ, khó xây dựng chỉ số."]
REASONS_OTHER = ["Đang chờ ý kiến của Thường trực Tỉnh uỷ.", "Sở đang kiện toàn tổ chức bộ máy.",
                 "Tỉnh đã tham gia nhiều chương trình, sợ trùng lặp."]
ACTIVITIES_OTHER = ["Trao đổi cán bộ giữa các tỉnh", "Diễn đàn trao đổi qua thư điện tử",
                    "Tham dự họp nhóm ISG tại Hà Nội"]
SUPPORT_OTHER = ["Máy tính và kết nối Internet cho nhóm đầu mối", "Dịch tài liệu CPRGS sang tiếng Việt",
                 "Hỗ trợ tổ chức hội thảo cấp huyện"]
COMMENTS = ["Đề nghị Văn phòng ISG gửi tài liệu về CPRGS sớm hơn.",
            "Tỉnh mong muốn được tham dự hội thảo tập huấn sắp tới.",
            "Nên tổ chức họp nhóm đầu mối sáu tháng một lần.",
            "Đề nghị Bộ có văn bản chính thức gửi UBND tỉnh về hệ thống đầu mối.",
            "Cần gắn hoạt động của đầu mối với kế hoạch 5 năm 2006–2010."]
DECISION_NOTES = ["Đầu mối đặt tại Phòng Kế hoạch, Sở NN&PTNT.",
                  "Quyết định kèm theo danh sách thành viên và quy chế hoạt động.",
                  "Thành viên làm việc kiêm nhiệm, họp định kỳ hằng quý.",
                  "Bản chính quyết định đã gửi Văn phòng ISG qua đường bưu điện."]
DECISION_SIGNS = {"ppc": {"QĐ-UBND": 5, "QĐ-UB": 3, "QĐ-CT": 2}, "dard": {"QĐ-SNN": 6, "QĐ-NN": 4}}
"""Who issued a decision → the sign after its number, by how common it was in 2004."""
CONSULTED = (date(2003, 3, 3), date(2004, 11, 30))
"""The year of consultations, from the ISG Office's first provincial visits."""
REGISTRATIONS = (date(2004, 2, 2), date(2004, 7, 16))
"""When the pilot provinces' decisions were signed, before the August 2004 workshops."""
MPI_2215_ARRIVED = date(2004, 4, 20)
"""MPI's letter 2215 BKH/TH is dated 14/4/2004: nobody could have it a few days earlier."""


def is_pilot(province: Choice) -> bool:
    return province.properties.get("pilot") == "1"


def slug(province: Choice) -> str:
    return province.name.replace("_", "")


def official(kit: FormKit, province: Choice, agency: str, answers: dict[str, str], prefix: str = "",
             name_field: str = "respondent_name", gender_field: str = "gender") -> None:
    """A provincial official's name, position, gender, phone and e-mail (each optional one mostly given)."""
    rng = kit.rng
    person = people.vietnamese(rng, province.name, province.properties.get("region"))
    answers[name_field] = person.name
    if rng.random() < 0.85:
        answers[f"{prefix}position"] = rng.choice(POSITIONS.get(agency, POSITIONS[OTHER]))
    answers[gender_field] = person.gender
    if rng.random() < 0.8:
        answers[f"{prefix}phone"] = people.phone(rng, province.name)
    if rng.random() < 0.5:
        domain = rng.choice([f"{agency}.gov.vn" if agency in ("dard", "dpi") else f"{slug(province)}.gov.vn",
                             *ISP_DOMAINS])
        answers[f"{prefix}email"] = people.email(rng, person, domain)


def members(kit: FormKit, province: Choice, count: int) -> list[dict[str, str]]:
    """A focal-point team: `count` members, exactly one the lead (usually listed first)."""
    rng = kit.rng
    lead = 0 if rng.random() < 0.8 else rng.randrange(count)
    team = []
    for i in range(count):
        entry: dict[str, str] = {}
        agency = "dard" if i == lead and rng.random() < 0.6 else kit.pick(MEMBER_AGENCIES)
        kit.other_specified(entry, "member_agency", agency, AGENCIES_OTHER)
        official(kit, province, agency, entry, "member_", "member_name", "member_gender")
        entry["member_role"] = "lead" if i == lead else "member"
        team.append(entry)
    return team


@dataclass(frozen=True)
class Visit:
    """Who the ISG Office met where and when: the key no interview may repeat."""

    province: Choice
    agency: str
    day: date
    agency_other: str | None = None

    @property
    def key(self) -> tuple[str, str, date]:
        return self.province.name, self.agency_other or self.agency, self.day


def visits(kit: FormKit, count: int, pilot_share: float = 0.7) -> list[Visit]:
    """`count` interviews grouped in province visits of 1–4 agencies a day, never one agency twice a day."""
    rng = kit.rng
    pilots = kit.provinces(pilot="1")
    others = kit.provinces(pilot="0")
    capacity = len(pilots + others) * len(AGENCIES) * (CONSULTED[1] - CONSULTED[0]).days * 5 // 7
    if count > capacity // 2:
        raise ValueError(f"{count} province interviews would repeat agencies on a day; "
                         f"at most {capacity // 2}")
    seen: set[tuple[str, str, date]] = set()
    planned: list[Visit] = []
    while len(planned) < count:
        province = rng.choice(pilots if rng.random() < pilot_share else others)
        day = working_day(rng, *CONSULTED)
        for agency in kit.several(AGENCIES, {1: 2, 2: 3, 3: 3, 4: 2}):
            visit = Visit(province, agency, day, rng.choice(AGENCIES_OTHER) if agency == OTHER else None)
            if len(planned) < count and visit.key not in seen:
                seen.add(visit.key)
                planned.append(visit)
    return planned


def province_consultation(kit: FormKit, visit: Visit) -> Draft:
    rng, province = kit.rng, visit.province
    pilot = is_pilot(province)
    mode = kit.pick({"in_person": 75, "phone": 8, "written": 10, "workshop": 7})
    draft = kit.open(visit.day, mode, province.name)
    a = draft.answers
    a["province"] = province.name
    a["agency"] = visit.agency
    if visit.agency_other:
        a["agency_other"] = visit.agency_other
    official(kit, province, visit.agency, a)
    a["cprgs_awareness"] = kit.pick({"well": 55, "heard": 40, "not_aware": 5} if pilot
                                    else {"well": 20, "heard": 50, "not_aware": 30})
    if visit.day < MPI_2215_ARRIVED:
        a["mpi_2215_received"] = kit.pick({"no": 60, "dont_know": 40})
    else:
        a["mpi_2215_received"] = kit.pick({"yes": 90, "dont_know": 10} if visit.agency == "dpi"
                                          else {"yes": 55, "no": 20, "dont_know": 25})
    if a["mpi_2215_received"] == "yes":
        a["mpi_2215_used"] = kit.pick({"fully": 25, "partly": 50, "not_yet": 25})
    a["interest_level"] = kit.pick({"3": 10, "4": 40, "5": 50} if pilot
                                   else {"2": 15, "3": 40, "4": 35, "5": 10})
    a["willing_to_join"] = kit.pick({"yes": 90, "undecided": 10} if pilot
                                    else {"yes": 30, "no": 25, "undecided": 45})
    willing = a["willing_to_join"] == "yes"
    if willing:
        count = rng.randint(2, 5) if pilot else rng.randint(1, 3)
        a["member_count"] = str(count)
        draft.entries["members"] = members(kit, province, count)
    else:
        reasons = kit.several({"no_staff": 30, "no_budget": 35, "no_mandate": 30, "unclear_benefit": 15,
                               "other": 5}, {1: 55, 2: 45})
        kit.select_multiple(a, "reasons_not_joining", "reason", reasons, REASONS_OTHER, "reasons_other")
    kit.priority_topics(a)
    activities = kit.several({"dialogue_meetings": 30, "training_workshops": 35, "study_tours": 15,
                              "information_sharing": 20, "joint_research": 6, "field_visits": 10, "other": 2},
                             {1: 30, 2: 45, 3: 25})
    kit.select_multiple(a, "preferred_activities", "activity", activities, ACTIVITIES_OTHER,
                        "activities_other")
    if not willing:
        days, budget = rng.randint(0, 3) * 5, 0
    elif pilot:
        days, budget = rng.randint(4, 40) * 10, rng.randint(2, 60) * 5
    else:
        days, budget = rng.randint(0, 15) * 10, rng.randint(0, 16) * 5
    a["staff_days"] = str(days)
    a["budget_mvnd"] = f"{budget + (0.5 if rng.random() < 0.1 else 0):g}"
    kit.maybe(a, "constraints", 0.6, CONSTRAINTS)
    if rng.random() < 0.08:
        a["support_needed"] = "none"
    else:
        support = kit.several({"training": 40, "technical_assistance": 30, "funding": 35, "information": 20,
                               "coordination": 15, "other": 3}, {1: 30, 2: 45, 3: 25})
        kit.select_multiple(a, "support_needed", "support", support, SUPPORT_OTHER, "support_other")
    kit.maybe(a, "comments", 0.3, COMMENTS)
    return draft


def focal_point_registration(kit: FormKit, province: Choice) -> Draft:
    """A pilot province's registration: the appointing decision, its photo, and the team it names."""
    rng = kit.rng
    signed = working_day(rng, *REGISTRATIONS)
    day = min(working_day(rng, signed + timedelta(days=7), signed + timedelta(days=45)), date(2004, 8, 6))
    draft = kit.open(day, kit.pick({"in_person": 70, "written": 30}), province.name)
    a = draft.answers
    a["province"] = province.name
    issuer = kit.pick({"ppc": 80, "dard": 20})
    year = f"/{signed.year}" if rng.random() < 0.15 else ""
    a["decision_number"] = f"{rng.randint(120, 2400)}{year}/{kit.pick(DECISION_SIGNS[issuer])}"
    a["decision_date"] = signed.isoformat()
    a["issued_by"] = issuer
    if rng.random() < 0.8:
        taken = datetime.fromisoformat(a["end_time"]) - timedelta(seconds=rng.randint(60, 1200))
        photo = f"{int(taken.timestamp() * 1000)}.jpg"
        a["decision_photo"] = photo
        draft.attachments[photo] = decision_photo(rng)
    count = rng.randint(3, 7)
    a["member_count"] = str(count)
    draft.entries["members"] = members(kit, province, count)
    kit.maybe(a, "notes", 0.4, DECISION_NOTES)
    return draft
