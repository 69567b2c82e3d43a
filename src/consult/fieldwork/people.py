"""The people the ISG Office met in 2003–2004: names, phones, e-mails and positions.

Vietnamese names follow the country's family-name frequencies, shifted by region (Huỳnh and
Võ in the south, Hoàng and Vũ in the north) and with Khmer names in the Mekong provinces of
Trà Vinh, Sóc Trăng and An Giang; donors' staff are nationals of their agency's country or
Vietnamese programme officers. Phones are 2004's: mobiles (090, 091, 098) or office lines
with the province's area code.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

FAMILY_NAMES: dict[str, float] = {
    "Nguyễn": 38, "Trần": 11, "Lê": 9.5, "Phạm": 7, "Hoàng": 3, "Huỳnh": 2, "Phan": 4.5, "Vũ": 2.5, "Võ": 2,
    "Đặng": 2.1, "Bùi": 2, "Đỗ": 1.4, "Hồ": 1.3, "Ngô": 1.3, "Dương": 1, "Lý": 0.5, "Trương": 1, "Đinh": 0.8,
    "Lâm": 0.5, "Đào": 0.5, "Mai": 0.4,
}
SOUTHERN = {"Huỳnh": 3.0, "Võ": 2.5, "Hoàng": 0.3, "Vũ": 0.3, "Lâm": 2.0}
NORTHERN = {"Huỳnh": 0.2, "Võ": 0.4, "Hoàng": 1.5, "Vũ": 1.6}
MIDDLE_NAMES = {
    "male": ["Văn", "Văn", "Văn", "Hữu", "Minh", "Đức", "Quốc", "Công", "Xuân", "Thanh", "Ngọc", "Đình"],
    "female": ["Thị", "Thị", "Thị", "Thị Thu", "Thị Thanh", "Thị Hồng", "Thu", "Ngọc", "Kim", "Minh"],
}
GIVEN_NAMES = {
    "male": ["Hùng", "Dũng", "Tuấn", "Minh", "Thành", "Hải", "Sơn", "Quang", "Cường", "Bình", "Phúc", "Long",
             "Trung", "Đức", "Hoà", "Khánh", "Việt", "Thắng", "Lợi", "Tâm", "Nam", "Toàn", "Hiếu", "Nghĩa"],
    "female": ["Hoa", "Lan", "Hương", "Mai", "Thảo", "Hằng", "Ngọc", "Phương", "Hạnh", "Nga", "Thuỷ", "Yến",
               "Linh", "Trang", "Loan", "Hà", "Hiền", "Dung", "Nhung", "Vân", "Huệ", "Oanh"],
}
KHMER_FAMILY_NAMES = ["Thạch", "Thạch", "Sơn", "Kim", "Danh", "Lâm", "Trà", "Chau"]
KHMER_GIVEN_NAMES = {"male": ["Sa Ra", "Sóc Khên", "Sô Phan", "Chanh Đa", "Thi Ra", "Sa Vân", "Rươl", "Mol"],
                     "female": ["Sa Rinh", "Sà Phol", "Pho Ny", "Sa Mây", "Kim Hoa", "Sô Kha", "Ny"]}
KHMER_SHARE = {"tra_vinh": 0.15, "soc_trang": 0.15, "an_giang": 0.04}
"""Share of Khmer officials among the people met in a province."""
SOUTHERN_REGIONS = {"mekong_delta", "south_east", "central_highlands", "south_central_coast"}

AREA_CODES = {"ha_noi": ("04", 7), "thai_nguyen": ("0280", 6), "thanh_hoa": ("037", 6),
              "tra_vinh": ("074", 6), "soc_trang": ("079", 6), "an_giang": ("076", 6),
              "ho_chi_minh": ("08", 7)}
"""Province → (2004 area code, digits of a local number)."""
MOBILE_PREFIXES = ["090", "0913", "0912", "0918", "098", "0903", "0983"]

FOREIGN_NAMES: dict[str, dict[str, list[str]]] = {
    "danish": {"male": ["Jens Kristensen", "Lars Mikkelsen"],
               "female": ["Mette Sørensen", "Hanne Jørgensen"]},
    "swedish": {"male": ["Erik Johansson"], "female": ["Anna Lindqvist", "Karin Bergström"]},
    "canadian": {"male": ["Marc Tremblay", "Stephen Campbell"],
                 "female": ["Julie Gagnon", "Nathalie Bélanger"]},
    "japanese": {"male": ["Kenji Tanaka", "Hiroshi Yamamoto"], "female": ["Yuko Sato"]},
    "australian": {"male": ["Andrew McKenzie"], "female": ["Fiona Walsh", "Rebecca Hughes"]},
    "british": {"male": ["David Cooper"], "female": ["Sarah Mitchell", "Helen Fraser"]},
    "german": {"male": ["Martin Schmidt", "Jürgen Hoffmann"], "female": ["Katrin Weber"]},
    "dutch": {"male": ["Pieter Bakker", "Jan de Vries"], "female": ["Ellen van Dijk"]},
    "swiss": {"male": ["Beat Müller", "Urs Baumann"], "female": ["Regula Keller"]},
    "new_zealander": {"male": ["Hamish Clarke"], "female": ["Anna Reid"]},
    "french": {"male": ["Pierre Lefèvre", "Olivier Dubois"], "female": ["Sophie Martin"]},
    "american": {"male": ["Michael Johnson", "Steven Miller"], "female": ["Rachel Brown"]},
    "filipino": {"male": ["Jose Reyes"], "female": ["Maria Santos"]},
    "indian": {"male": ["Rajesh Kumar"], "female": ["Priya Sharma"]},
    "italian": {"male": ["Marco Rossi"], "female": ["Giulia Bianchi"]},
}
"""Nationality → gender → names of donors' international staff."""
_FOLDED = str.maketrans({"Đ": "D", "đ": "d", "Ø": "O", "ø": "o"})


@dataclass(frozen=True)
class Person:
    name: str
    gender: str
    """`female` or `male`, the forms' gender choices."""


def vietnamese(rng: random.Random, province: str | None = None, region: str | None = None,
               gender: str | None = None) -> Person:
    """A Vietnamese official: Kinh, or Khmer in the Mekong provinces where Khmer officials work."""
    gender = gender or rng.choice(("female", "male"))
    if province and rng.random() < KHMER_SHARE.get(province, 0.0):
        middle = "Thị " if gender == "female" and rng.random() < 0.6 else ""
        given = rng.choice(KHMER_GIVEN_NAMES[gender])
        return Person(f"{rng.choice(KHMER_FAMILY_NAMES)} {middle}{given}", gender)
    weights = FAMILY_NAMES
    if region:
        shift = SOUTHERN if region in SOUTHERN_REGIONS else NORTHERN
        weights = {name: w * shift.get(name, 1.0) for name, w in FAMILY_NAMES.items()}
    family = rng.choices(list(weights), list(weights.values()))[0]
    name = f"{family} {rng.choice(MIDDLE_NAMES[gender])} {rng.choice(GIVEN_NAMES[gender])}"
    return Person(name, gender)


def foreign(rng: random.Random, nationality: str) -> Person:
    """A donor's international staff member of the agency's country."""
    gender = rng.choice(("female", "male"))
    return Person(rng.choice(FOREIGN_NAMES[nationality][gender]), gender)


def ascii_fold(text: str) -> str:
    """`Nguyễn Thị Hoà` → `Nguyen Thi Hoa`: what goes into an e-mail address."""
    decomposed = unicodedata.normalize("NFD", text.translate(_FOLDED))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def email(rng: random.Random, person: Person, domain: str) -> str:
    """The address styles of the time: `huongntt@…` for Vietnamese staff, `first.last@…` otherwise."""
    parts = ascii_fold(person.name).lower().replace("-", " ").split()
    if domain.endswith(".vn") or rng.random() < 0.3:
        local = parts[-1] + "".join(p[0] for p in parts[:-1])
    else:
        local = f"{parts[0]}.{parts[-1]}"
    return f"{local}@{domain}"


def phone(rng: random.Random, province: str | None = None, mobile_share: float = 0.6) -> str:
    """A mobile number, or an office line with the province's area code where it is known."""
    if province in AREA_CODES and rng.random() > mobile_share:
        code, digits = AREA_CODES[province]
        return code + str(rng.randint(8 * 10 ** (digits - 1), 10 ** digits - 1))
    prefix = rng.choice(MOBILE_PREFIXES)
    return prefix + "".join(str(rng.randint(0, 9)) for _ in range(10 - len(prefix)))
