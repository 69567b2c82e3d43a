"""The two 2004 training workshops "Lập kế hoạch theo CPRGS và cách tiếp cận dựa vào kết quả".

Sóc Trăng (10–11/8/2004) had 29 delegates from An Giang, Sóc Trăng and Trà Vinh; Thanh Hoá
(24–25/8/2004) 19 from Thái Nguyên and Thanh Hoá. Each delegate filled an evaluation at the
close, entered by the ISG staff running the workshop; the host province sent the most.
Knowledge rises after the workshop for nearly everyone, and most will apply it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from consult.forms.schema import Choice

from . import people
from .interview import Draft
from .kit import FormKit
from .provincial import AGENCIES_OTHER


@dataclass(frozen=True)
class Workshop:
    name: str
    """The `workshop` choice, also the province CSV's `workshop` column."""
    host: str
    opens: date
    closes: date
    delegates: int
    enumerator: str


WORKSHOPS = (Workshop("soc_trang_2004", "soc_trang", date(2004, 8, 10), date(2004, 8, 11), 29, "ceci.thao"),
             Workshop("thanh_hoa_2004", "thanh_hoa", date(2004, 8, 24), date(2004, 8, 25), 19, "isg.hoa"))
AGENCIES = {"dard": 30, "dpi": 25, "ppc": 8, "dof": 8, "dolisa": 8, "extension_centre": 8, "donre": 4,
            "dofi": 4, "other": 5}
BEFORE = {"1": 20, "2": 45, "3": 30, "4": 5}
RESULTS_BEFORE = {"1": 35, "2": 45, "3": 18, "4": 2}
GAIN = {0: 10, 1: 50, 2: 35, 3: 5}
USEFUL = {"session_cprgs": {"3": 15, "4": 45, "5": 40}, "session_mpi_2215": {"3": 20, "4": 45, "5": 35},
          "session_results": {"3": 15, "4": 40, "5": 45},
          "session_indicators": {"2": 5, "3": 30, "4": 45, "5": 20},
          "session_group_work": {"3": 10, "4": 35, "5": 55}}
"""How useful delegates found each of the five sessions (1–5): group work and results most."""
PLANNED_ACTIONS = ["Áp dụng khung kết quả vào kế hoạch 2005 của Sở.",
                   "Phổ biến công văn 2215 BKH/TH cho các phòng chuyên môn.",
                   "Xây dựng bộ chỉ số giám sát giảm nghèo cấp huyện.",
                   "Tổ chức tập huấn lại cho cán bộ kế hoạch các huyện.",
                   "Lồng ghép mục tiêu XĐGN vào kế hoạch ngành nông nghiệp 2006–2010."]
BARRIERS = ["Chưa có chỉ đạo của lãnh đạo Sở.", "Thiếu số liệu để xây dựng chỉ số.",
            "Công việc chuyên môn không liên quan trực tiếp đến lập kế hoạch."]
SUGGESTIONS = ["Cần thêm thời gian thực hành nhóm.", "Tài liệu nên gửi trước hội thảo.",
               "Nên tổ chức tập huấn cho cán bộ cấp huyện.", "Mời đại diện Bộ KH&ĐT trình bày nhiều hơn.",
               "Cần có ví dụ cụ thể về chỉ số kết quả trong nông nghiệp."]


def delegations(workshop: Workshop, provinces: list[Choice]) -> list[Choice]:
    """One province per delegate: an equal share each, the host taking what does not divide."""
    share, extra = divmod(workshop.delegates, len(provinces))
    return [p for p in provinces for _ in range(share + (extra if p.name == workshop.host else 0))]


def workshop_evaluations(kit: FormKit) -> list[Draft]:
    drafts = []
    for workshop in WORKSHOPS:
        provinces = kit.provinces(workshop=workshop.name)
        delegates = delegations(workshop, provinces)
        kit.rng.shuffle(delegates)
        drafts += [workshop_evaluation(kit, workshop, province) for province in delegates]
    return drafts


def _after(kit: FormKit, before: str) -> str:
    """Knowledge after the workshop: up for nearly everyone, one step down for a rare delegate."""
    level = int(before) + (-1 if kit.rng.random() < 0.03 else kit.pick(GAIN))
    return str(min(5, max(1, level)))


def workshop_evaluation(kit: FormKit, workshop: Workshop, province: Choice) -> Draft:
    rng = kit.rng
    day = kit.pick({workshop.closes: 85, workshop.opens: 10, workshop.closes + timedelta(days=1): 5})
    enumerator = next(e for e in kit.team if e.username == workshop.enumerator)
    draft = kit.open(day, "workshop", workshop.host, enumerator, location_share=0.4, earliest=14)
    a = draft.answers
    a["workshop"], a["province"] = workshop.name, province.name
    kit.other_specified(a, "agency", kit.pick(AGENCIES), AGENCIES_OTHER)
    person = people.vietnamese(rng, province.name, province.properties.get("region"))
    if rng.random() < 0.6:
        a["delegate_name"] = person.name
    if rng.random() < 0.85:
        a["gender"] = person.gender
    a["cprgs_before"] = kit.pick(BEFORE)
    a["cprgs_after"] = _after(kit, a["cprgs_before"])
    a["results_before"] = kit.pick(RESULTS_BEFORE)
    a["results_after"] = _after(kit, a["results_before"])
    for session, weights in USEFUL.items():
        a[session] = kit.pick(weights)
    a["will_apply"] = kit.pick({"yes": 90, "no": 10})
    if a["will_apply"] == "yes":
        a["planned_actions"] = rng.choice(PLANNED_ACTIONS)
    else:
        kit.maybe(a, "barriers", 0.7, BARRIERS)
    kit.maybe(a, "suggestions", 0.5, SUGGESTIONS)
    return draft
