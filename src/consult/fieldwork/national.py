"""Hà Nội: the line ministries' departments and the donors, international organisations and projects.

MARD's departments were met most, then MPI (whose letter 2215 guides provincial planning)
and MOF; donors answered by type, and only those offering funding named a budget.
Respondents of international agencies are often their countries' nationals and answer in
English; national staff answer in Vietnamese.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from . import people
from .interview import Draft
from .kit import OTHER, FormKit, working_day

CAPITAL = "ha_noi"
CONSULTED = (date(2003, 4, 1), date(2004, 10, 29))

MINISTRIES = {"mard": 40, "mpi": 18, "mof": 10, "molisa": 8, "cema": 6, "monre": 5, "mofi": 5, "mot": 3,
              "other": 5}
DEPARTMENTS = {
    "mard": ["Vụ Kế hoạch", "Vụ Hợp tác Quốc tế", "Vụ Chính sách Nông nghiệp và PTNT",
             "Cục Hợp tác xã và PTNT", "Trung tâm Khuyến nông Quốc gia", "Cục Lâm nghiệp", "Cục Thuỷ lợi",
             "Vụ Tài chính", "Trung tâm Tin học và Thống kê"],
    "mpi": ["Vụ Kinh tế Nông nghiệp", "Vụ Tổng hợp Kinh tế Quốc dân", "Vụ Kinh tế Đối ngoại",
            "Vụ Kinh tế Địa phương và Lãnh thổ"],
    "mof": ["Vụ Ngân sách Nhà nước", "Vụ Tài chính Đối ngoại", "Vụ Đầu tư"],
    "molisa": ["Văn phòng Chương trình Mục tiêu Quốc gia XĐGN", "Vụ Bảo trợ Xã hội"],
    "cema": ["Vụ Chính sách Dân tộc", "Vụ Kế hoạch – Tài chính"],
    "monre": ["Vụ Kế hoạch", "Vụ Đất đai"],
    "mofi": ["Vụ Kế hoạch – Tài chính", "Trung tâm Khuyến ngư Quốc gia"],
    "mot": ["Vụ Kế hoạch – Đầu tư"],
}
OTHER_MINISTRIES = {"Văn phòng Chính phủ": ["Vụ Nông nghiệp"],
                    "Tổng cục Thống kê": ["Vụ Thống kê Nông, Lâm nghiệp và Thuỷ sản"],
                    "Ngân hàng Chính sách Xã hội": ["Ban Kế hoạch – Nguồn vốn"],
                    "Bộ Thương mại": ["Vụ Chính sách Thương mại Miền núi"]}
MINISTRY_DOMAINS = {"mard": "mard.gov.vn", "mpi": "mpi.gov.vn", "mof": "mof.gov.vn",
                    "molisa": "molisa.gov.vn", "cema": "cema.gov.vn", "monre": "monre.gov.vn",
                    "mofi": "fistenet.gov.vn", "mot": "mt.gov.vn"}
MINISTRY_POSITIONS = ["Vụ trưởng", "Phó Vụ trưởng", "Phó Cục trưởng", "Trưởng phòng", "Chuyên viên chính",
                      "Chuyên viên"]
ROLES = {"mard": {"policy_guidance": 30, "planning_guidance": 30, "monitoring": 20, "capacity_building": 15,
                  "information_sharing": 20},
         "mpi": {"planning_guidance": 40, "budget_allocation": 25, "monitoring": 15,
                 "information_sharing": 10},
         "mof": {"budget_allocation": 45, "monitoring": 15, "information_sharing": 10}}
OTHER_ROLES = {"policy_guidance": 15, "planning_guidance": 10, "monitoring": 15, "capacity_building": 15,
               "information_sharing": 30}
NOT_SUPPORTING = ["Chưa có chỉ đạo của lãnh đạo Bộ.", "Vụ đang thiếu cán bộ, khó cử người tham gia.",
                  "Chức năng của đơn vị không liên quan trực tiếp đến nông nghiệp, nông thôn."]
FEEDBACK_EXAMPLES = ["Ý kiến của các tỉnh được tổng hợp khi xây dựng kế hoạch 2005 của Bộ.",
                     "Phản hồi của các Sở về chương trình 135 được đưa vào báo cáo giám sát.",
                     "Kiến nghị của tỉnh về vốn đối ứng được trình lãnh đạo Bộ xem xét.",
                     "Báo cáo của các tỉnh được dùng để sửa hướng dẫn lập kế hoạch."]
CONTRIBUTIONS_OTHER = ["Cử chuyên gia tham gia đoàn công tác xuống tỉnh", "Cung cấp tài liệu hướng dẫn"]

ORG_TYPES = {"bilateral": 35, "multilateral": 25, "ingo": 20, "project": 12, "research": 8}


@dataclass(frozen=True)
class Donor:
    nationality: str
    domain: str


DONORS = {
    "world_bank": Donor("american", "worldbank.org"), "adb": Donor("filipino", "adb.org"),
    "undp": Donor("british", "undp.org"), "fao": Donor("italian", "fao.org"),
    "ifad": Donor("italian", "ifad.org"), "ec": Donor("french", "cec.eu.int"),
    "danida": Donor("danish", "um.dk"), "sida": Donor("swedish", "sida.se"),
    "cida": Donor("canadian", "acdi-cida.gc.ca"), "jica": Donor("japanese", "jica.go.jp"),
    "ausaid": Donor("australian", "ausaid.gov.au"), "dfid": Donor("british", "dfid.gov.uk"),
    "gtz": Donor("german", "gtz.de"), "netherlands": Donor("dutch", "minbuza.nl"),
    "sdc": Donor("swiss", "sdc.net"), "nzaid": Donor("new_zealander", "mfat.govt.nz"),
    "ceci": Donor("canadian", "ceci.ca"), "helvetas": Donor("swiss", "helvetas.org"),
    "snv": Donor("dutch", "snvworld.org"), "oxfam": Donor("british", "oxfam.org.uk"),
    "care": Donor("australian", "care.org.au"), "actionaid": Donor("british", "actionaid.org"),
    "fssp": Donor("danish", "fssp.org.vn"), "ndm": Donor("dutch", "ndm.org.vn"),
    "ifpri": Donor("american", "cgiar.org"), "icraf": Donor("indian", "cgiar.org"),
}
ORGANISATIONS_OTHER = {
    "bilateral": ["USAID", "Phần Lan (Bộ Ngoại giao Phần Lan)", "Bỉ (BTC)", "Luxembourg (Lux-Development)"],
    "multilateral": ["UNICEF", "WFP", "ILO"],
    "ingo": ["World Vision", "Plan International", "Save the Children UK", "VECO Việt Nam"],
    "project": ["Ban Quản lý các dự án Nông nghiệp (CPO)", "Văn phòng dự án tại tỉnh"],
    "research": ["CIAT", "IRRI", "ACIAR"],
}
PROJECTS = {"fssp": "Chương trình Hỗ trợ Ngành Lâm nghiệp và Đối tác (FSSP)",
            "ndm": "Đối tác Giảm nhẹ Thiên tai (NDM-Partnership)"}
PROVINCIAL_PROJECTS = {"Dự án Phát triển nông thôn tổng hợp Trà Vinh": "tra_vinh",
                       "Dự án Hỗ trợ giảm nghèo An Giang": "an_giang",
                       "Dự án Khuyến nông cộng đồng Thái Nguyên": "thai_nguyen",
                       "Dự án Quản lý tài nguyên ven biển Sóc Trăng": "soc_trang",
                       "Dự án Phát triển lâm nghiệp Thanh Hoá": "thanh_hoa"}
"""Foreign-funded projects working in one province, by the province they work in."""
PORTFOLIO_MUSD = {"multilateral": (50, 900), "bilateral": (5, 150), "ingo": (0.5, 12), "project": (2, 40),
                  "research": (0.2, 6)}
BUDGET_KUSD = {"multilateral": (200, 3000), "bilateral": (50, 1500), "ingo": (10, 200), "project": (20, 300),
               "research": (10, 100)}
INTERNATIONAL_POSITIONS = ["Country Director", "Rural Development Adviser", "Senior Agricultural Economist",
                           "First Secretary (Development)", "Programme Manager", "Team Leader"]
NATIONAL_POSITIONS = ["Cán bộ chương trình", "Programme Officer", "Điều phối viên dự án",
                      "Chuyên gia tư vấn trong nước"]
SUPPORT_OTHER = ["Seconding a volunteer adviser to a provincial DPI", "Hỗ trợ tình nguyện viên cho Sở KH&ĐT"]
DONOR_COMMENTS = {"en": ["We would welcome a joint provincial workshop on results-based planning.",
                         "Our provincial projects could host dialogue meetings of the focal points.",
                         "Funding depends on approval of our 2005 country plan.",
                         "Please share the ISG work plan 2004–2006 with our Hanoi office."],
                  "vi": ["Tổ chức sẵn sàng chia sẻ kinh nghiệm lập kế hoạch có sự tham gia.",
                         "Đề nghị Văn phòng ISG thông báo lịch họp đầu mối trước một tháng."]}


def _organisations(kit: FormKit) -> dict[str, list[str]]:
    """The organisation list by type, as the form's choice filter offers it."""
    by_type: dict[str, list[str]] = {}
    for choice in kit.schema.choice_lists["organisation"].choices:
        if choice.name != OTHER:
            by_type.setdefault(choice.properties.get("org_type", ""), []).append(choice.name)
    return by_type


def ministry_consultations(kit: FormKit, count: int) -> list[Draft]:
    rng = kit.rng
    seen: set[tuple[str, str, date]] = set()
    drafts: list[Draft] = []
    while len(drafts) < count:
        ministry = kit.pick(MINISTRIES)
        other = rng.choice(list(OTHER_MINISTRIES)) if ministry == OTHER else None
        department = rng.choice(OTHER_MINISTRIES[other] if other else DEPARTMENTS[ministry])
        day = working_day(rng, *CONSULTED)
        if (key := (other or ministry, department, day)) not in seen:
            seen.add(key)
            drafts.append(ministry_consultation(kit, ministry, other, department, day))
    return drafts


def ministry_consultation(kit: FormKit, ministry: str, other: str | None, department: str,
                          day: date) -> Draft:
    rng = kit.rng
    draft = kit.open(day, kit.pick({"in_person": 80, "phone": 5, "written": 15}), CAPITAL)
    a = draft.answers
    a["ministry"] = ministry
    if other:
        a["ministry_other"] = other
    a["department"] = department
    person = people.vietnamese(rng, CAPITAL, "red_river_delta")
    a["respondent_name"], a["gender"] = person.name, person.gender
    if rng.random() < 0.9:
        a["position"] = rng.choice(MINISTRY_POSITIONS)
    if rng.random() < 0.7:
        a["phone"] = people.phone(rng, CAPITAL, mobile_share=0.4)
    if rng.random() < 0.6:
        a["email"] = people.email(rng, person, MINISTRY_DOMAINS.get(ministry, "yahoo.com"))
    if rng.random() < 0.05:
        a["coordination_roles"] = "none"
    else:
        roles = kit.several(ROLES.get(ministry, OTHER_ROLES), {1: 35, 2: 45, 3: 20})
        a["coordination_roles"] = kit.multi("coordination_role", roles)
    a["interest_level"] = kit.pick({"4": 45, "5": 45, "3": 10} if ministry == "mard"
                                   else {"2": 10, "3": 35, "4": 40, "5": 15})
    a["willing_to_support"] = kit.pick({"yes": 90, "undecided": 10} if ministry == "mard"
                                       else {"yes": 65, "undecided": 25, "no": 10})
    if a["willing_to_support"] != "yes":
        a["reasons_not_supporting"] = rng.choice(NOT_SUPPORTING)
    a["provincial_feedback_use"] = kit.pick({"regularly": 30, "sometimes": 50, "never": 20})
    if a["provincial_feedback_use"] != "never":
        kit.maybe(a, "feedback_example", 0.7, FEEDBACK_EXAMPLES)
    kit.priority_topics(a, cprgs_share=0.8)
    contributions = kit.several({"staff_time": 30, "expertise": 35, "policy_access": 20, "data": 20,
                                 "venue": 10, "funding": 4, "other": 3}, {1: 35, 2: 45, 3: 20})
    kit.select_multiple(a, "contributions", "contribution", contributions, CONTRIBUTIONS_OTHER,
                        "contributions_other")
    return draft


def donor_consultations(kit: FormKit, count: int) -> list[Draft]:
    rng = kit.rng
    organisations = _organisations(kit)
    seen: set[tuple[str, date]] = set()
    drafts: list[Draft] = []
    while len(drafts) < count:
        org_type = kit.pick({t: w for t, w in ORG_TYPES.items() if t in organisations})
        organisation = OTHER if rng.random() < 0.08 else rng.choice(organisations[org_type])
        other = rng.choice(ORGANISATIONS_OTHER[org_type]) if organisation == OTHER else None
        day = working_day(rng, *CONSULTED)
        if (key := (other or organisation, day)) not in seen:
            seen.add(key)
            drafts.append(donor_consultation(kit, org_type, organisation, other, day))
    return drafts


def donor_consultation(kit: FormKit, org_type: str, organisation: str, other: str | None, day: date) -> Draft:
    rng = kit.rng
    draft = kit.open(day, kit.pick({"in_person": 60, "written": 20, "phone": 10, "workshop": 10}), CAPITAL)
    a = draft.answers
    a["org_type"], a["organisation"] = org_type, organisation
    if other:
        a["organisation_other"] = other
    donor = DONORS.get(organisation, Donor("british", "yahoo.com"))
    international = org_type != "project" and rng.random() < 0.55
    person = people.foreign(rng, donor.nationality) if international else people.vietnamese(rng, CAPITAL)
    a["respondent_name"], a["gender"] = person.name, person.gender
    a["position"] = rng.choice(INTERNATIONAL_POSITIONS if international else NATIONAL_POSITIONS)
    if rng.random() < 0.6:
        number = people.phone(rng, CAPITAL, mobile_share=0.3)
        a["phone"] = "+84" + number[1:] if international and rng.random() < 0.5 else number
    if rng.random() < 0.8:
        a["email"] = people.email(rng, person, donor.domain)
    provinces = [p.name for p in kit.provinces()]
    pilots = [p.name for p in kit.provinces(pilot="1")]
    if org_type == "project":
        project = PROJECTS.get(organisation) or rng.choice(list(PROVINCIAL_PROJECTS))
        a["project_name"] = project
        national = project not in PROVINCIAL_PROJECTS
        active = rng.sample(provinces, 6) if national else [PROVINCIAL_PROJECTS[project]]
    else:
        active = rng.sample(pilots, rng.randint(0, 2)) + rng.sample(provinces, rng.randint(1, 6))
    a["active_provinces"] = kit.multi("provinces.csv", active)
    low, high = PORTFOLIO_MUSD[org_type]
    a["ard_portfolio_musd"] = f"{rng.uniform(low, high):.1f}"
    a["cprgs_alignment"] = kit.pick({"fully": 35, "largely": 45, "partly": 15, "dont_know": 5}
                                    if org_type == "multilateral"
                                    else {"fully": 15, "largely": 40, "partly": 30, "not_aligned": 5,
                                          "dont_know": 10})
    a["interest_level"] = kit.pick({"3": 25, "4": 45, "5": 30})
    funders = org_type in ("bilateral", "multilateral")
    if rng.random() < 0.05:
        a["support_types"] = "none"
    else:
        support = kit.several({"funding": 45 if funders else 15, "technical_assistance": 35, "training": 25,
                               "study_tours": 10, "research": 25 if org_type == "research" else 5,
                               "coordination": 15, "other": 3}, {1: 30, 2: 45, 3: 25})
        kit.select_multiple(a, "support_types", "support_type", support, SUPPORT_OTHER, "support_other")
        if "funding" in support:
            low, high = BUDGET_KUSD[org_type]
            a["indicative_budget_kusd"] = str(round(rng.uniform(low, high) / 5) * 5)
    kit.priority_topics(a, cprgs_share=0.75)
    kit.maybe(a, "comments", 0.4, DONOR_COMMENTS["en" if international else "vi"])
    return draft
