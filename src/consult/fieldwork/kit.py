"""What every interview shares: the enumerator's phone, the day and place, the form's choice lists.

An interview opens with what ODK Collect fills by itself (start, end, today, device,
username, instanceID) and the `interview` group every form has (consultation date, mode,
location); `FormKit` then draws the form's own answers from its choice lists.
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import TypeVar

from consult.forms.schema import Choice, FormSchema

from .interview import INSTANCE_ID, Draft

T = TypeVar("T")

VIET_NAM = timezone(timedelta(hours=7))
OTHER = "other"
PROVINCE_LIST = "provinces.csv"
TEAM = ("isg.hoa", "isg.tuan", "isg.lan", "ceci.minh", "ceci.thao")
"""Usernames of the ISG Office and CECI staff who carried out the consultations."""
PLACES: dict[str, tuple[float, float, float]] = {
    "ha_noi": (21.0285, 105.8542, 12.0), "thai_nguyen": (21.5942, 105.8482, 34.0),
    "thanh_hoa": (19.8067, 105.7852, 9.0), "tra_vinh": (9.9347, 106.3453, 3.0),
    "soc_trang": (9.6037, 105.9800, 2.0), "an_giang": (10.3864, 105.4352, 4.0),
}
"""Where the provincial offices (and, for Hà Nội, ministries and donors) sit: lat, lon, altitude."""

FIRST_TOPIC = "cprgs_ard"
TOPICS = {"results_based_planning": 30, "pro_poor_budgeting": 18, "grassroots_democracy": 8,
          "market_access": 12, "rural_credit": 10, "extension": 10, "irrigation_water": 9, "forestry": 6,
          "disaster_mitigation": 6, "other": 2}
"""Dialogue topics after the CPRGS, by how often the ISG Office heard them asked for."""
TOPICS_OTHER = ["Bình đẳng giới trong phát triển nông thôn", "Phát triển kinh tế hợp tác",
                "Chuyển dịch cơ cấu cây trồng, vật nuôi", "Nuôi trồng thuỷ sản bền vững",
                "Hỗ trợ đồng bào dân tộc thiểu số vùng sâu, vùng xa", "Giám sát và đánh giá chương trình 135"]


@dataclass(frozen=True)
class Enumerator:
    username: str
    deviceid: str


def odk_datetime(moment: datetime) -> str:
    """`2004-06-15T08:00:00.000+07:00`, as Collect writes start and end."""
    return moment.isoformat(timespec="milliseconds")


def new_instance_id(rng: random.Random) -> str:
    """`uuid:` and a version-4 UUID, as Collect names a submission, but drawn from the seeded RNG."""
    return f"uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def working_day(rng: random.Random, first: date, last: date) -> date:
    """A weekday between `first` and `last`: officials were met in office hours."""
    while True:
        day = first + timedelta(days=rng.randint(0, (last - first).days))
        if day.weekday() < 5:
            return day


def ordered(names: Sequence[str], order: Sequence[str]) -> str:
    """A select_multiple answer: space-separated, in the choice list's order as Collect writes it."""
    chosen = set(names)
    return " ".join(n for n in order if n in chosen)


class FormKit:
    """One form's schema and seeded RNG, with the helpers every answer generator uses."""

    def __init__(self, schema: FormSchema, seed: int):
        self.schema = schema
        self.rng = random.Random(f"{seed}:{schema.form_id}")
        alphabet = string.ascii_letters + string.digits
        self.team = [Enumerator(name, "collect:" + "".join(self.rng.choices(alphabet, k=16)))
                     for name in TEAM]
        self._names = {name: choices.names() for name, choices in schema.choice_lists.items()}

    def pick(self, weights: Mapping[T, float]) -> T:
        return self.rng.choices(list(weights), list(weights.values()))[0]

    def several(self, weights: Mapping[str, float], counts: Mapping[int, float],
                first: str | None = None, first_share: float = 0.0) -> list[str]:
        """Distinct choices drawn by weight (`first` put in with `first_share`), how many by `counts`."""
        wanted = self.pick(counts)
        chosen = [first] if first and self.rng.random() < first_share else []
        pool = {n: w for n, w in weights.items() if n not in chosen}
        while len(chosen) < wanted and pool:
            name = self.pick(pool)
            chosen.append(name)
            del pool[name]
        return chosen

    def multi(self, list_name: str, names: Sequence[str]) -> str:
        return ordered(names, self._names[list_name])

    def select_multiple(self, answers: dict[str, str], field: str, list_name: str, names: Sequence[str],
                        texts: Sequence[str], specify: str) -> None:
        """Set a select_multiple; with 'other' among `names`, the 'specify' question gets one of `texts`."""
        answers[field] = self.multi(list_name, names)
        if OTHER in names:
            answers[specify] = self.rng.choice(texts)

    def priority_topics(self, answers: dict[str, str], weights: Mapping[str, float] | None = None,
                        cprgs_share: float = 0.85) -> None:
        """At most three dialogue topics; supporting the CPRGS in ARD, the network's first topic, leads."""
        names = self.several(weights or TOPICS, {1: 25, 2: 45, 3: 30}, FIRST_TOPIC, cprgs_share)
        self.select_multiple(answers, "priority_topics", "topic", names, TOPICS_OTHER, "topics_other")

    def provinces(self, **properties: str) -> list[Choice]:
        """Provinces of the form's CSV whose columns have the given values (`pilot="1"`)."""
        return [c for c in self.schema.choice_lists[PROVINCE_LIST].choices
                if all(c.properties.get(k) == v for k, v in properties.items())]

    def instance_id(self) -> str:
        return new_instance_id(self.rng)

    def open(self, day: date, mode: str, place: str | None, enumerator: Enumerator | None = None,
             location_share: float = 0.5, earliest: int = 8) -> Draft:
        """A draft with the phone's metadata and the interview group filled for a visit on `day`."""
        rng = self.rng
        who = enumerator or rng.choice(self.team)
        start = datetime.combine(day, time(rng.randint(earliest, 16), rng.randrange(0, 60, 5)), VIET_NAM)
        start += timedelta(seconds=rng.randint(0, 59))
        end = start + timedelta(minutes=rng.randint(25, 110), seconds=rng.randint(0, 59))
        answers = {
            "start_time": odk_datetime(start), "end_time": odk_datetime(end), "today": day.isoformat(),
            "deviceid": who.deviceid, "username": who.username, "consultation_date": day.isoformat(),
            "interview_mode": mode, INSTANCE_ID: self.instance_id(),
        }
        if place in PLACES and rng.random() < location_share:
            lat, lon, alt = PLACES[place]
            lat, lon = lat + rng.uniform(-0.02, 0.02), lon + rng.uniform(-0.02, 0.02)
            alt, accuracy = alt + rng.uniform(-3, 3), rng.uniform(3, 25)
            answers["location"] = f"{lat:.6f} {lon:.6f} {alt:.1f} {accuracy:.1f}"
        sent = end + timedelta(hours=rng.uniform(0.2, 60))
        return Draft(self.schema.form_id, answers, sent)

    def other_specified(self, answers: dict[str, str], field: str, value: str, texts: Sequence[str],
                        specify: str | None = None) -> None:
        """Set a select_one; when it is 'other', the 'specify' question gets one of `texts`."""
        answers[field] = value
        if value == OTHER:
            answers[specify or f"{field}_other"] = self.rng.choice(texts)

    def maybe(self, answers: dict[str, str], field: str, share: float, texts: Sequence[str]) -> None:
        """An optional text question, answered in `share` of the interviews."""
        if self.rng.random() < share:
            answers[field] = self.rng.choice(texts)
