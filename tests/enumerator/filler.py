"""A generic enumerator: answers every relevant question of any XForm with a valid value for its type.

The five ISG forms have hand-written interviews (test_forms.py); a form of the collection in
tests/forms/ has none, so `fill_any` walks what ODK's engine shows, round after round: answer
every relevant, writable question not yet answered, add repeat instances up to `instances`,
and when the engine reports a constraint violation try the next candidate value for that
question. Relevance, choice filters and repeats that appear after an answer are picked up in
the next round, so the steps always replay in the order an enumerator would take them.

Values are distinct per question (a counter in texts and numbers) so a value landing in the
wrong column is caught, and texts carry Vietnamese diacritics.
"""

from __future__ import annotations

import io
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import EnumeratorEngine, FillResult, Step, add_repeat, answer

ANSWERS = Path(__file__).resolve().parents[1] / "forms" / "answers"
"""Files that upload questions answer with (written by tests/forms/make_forms.py)."""
XF = "{http://www.w3.org/2002/xforms}"
ODK = "{http://www.opendatakit.org/xforms}"
JR = "{http://openrosa.org/javarosa}"
DEVICE = {"deviceid": "collect:Xq3bT7uYkP2mN8aZ", "username": "Trần Văn Đức", "phonenumber": "+84912345678"}
"""What a phone's Collect would fill for the `property` preloads."""
TEXT = "Nguyễn Thị Hoà, đường Lê Lợi, Sóc Trăng"
UPLOADS = {"image": "photo.jpg", "audio": "voice.wav", "video": "clip.mp4"}
UPLOAD_OTHER = "notes.txt"
AUDIT = "audit.csv"
BACKGROUND_AUDIO = "background.wav"
ANSWERABLE = {"input", "select", "rank", "range", "trigger", "upload"}
NUMBER = re.compile(r"(?<![\w.$])-?\d+(?:\.\d+)?(?![\w.])")


class FillError(RuntimeError):
    """The filler found no value the engine accepts, or the interview never settled."""


@dataclass(frozen=True)
class Control:
    """What the XForm says about one question beyond what the engine reports."""

    constraint: str | None = None
    range: tuple[float, float, float] | None = None
    mediatype: str | None = None
    options: tuple[str, ...] = ()
    """A rank's choices: the harness reports options for selects only."""
    device_property: str | None = None
    """`deviceid`, `username`, `phonenumber`: what Collect fills from the phone and its settings."""


def _rank_options(root: ET.Element, rank: ET.Element) -> tuple[str, ...]:
    inline = tuple(v.text or "" for v in rank.iter(f"{XF}value") if v.text is not None)
    itemset = rank.find(f"{XF}itemset")
    if itemset is None:
        return inline
    match = re.match(r"instance\('([^']+)'\)/root/item", itemset.get("nodeset", ""))
    value = itemset.find(f"{XF}value")
    if not match or value is None:
        raise FillError(f"rank {rank.get('ref')}: cannot read choices from itemset "
                        f"{itemset.get('nodeset')!r}")
    instance = next(i for i in root.iter(f"{XF}instance") if i.get("id") == match.group(1))
    return tuple(item.findtext(f"{XF}{value.get('ref')}") or "" for item in instance.iter(f"{XF}item"))


def controls_of(xform: str | os.PathLike[str]) -> dict[str, Control]:
    """Constraints from the binds, range parameters and upload media types, by nodeset."""
    root = ET.parse(xform).getroot()
    binds = list(root.iter(f"{XF}bind"))
    constraints = {b.get("nodeset"): b.get("constraint") for b in binds if b.get("constraint")}
    ranges = {r.get("ref"): (float(r.get("start", 0)), float(r.get("end", 10)), float(r.get("step", 1)))
              for r in root.iter(f"{XF}range")}
    uploads = {u.get("ref"): u.get("mediatype") for u in root.iter(f"{XF}upload")}
    ranks = {r.get("ref"): _rank_options(root, r) for r in root.iter(f"{ODK}rank")}
    properties = {b.get("nodeset"): b.get(f"{JR}preloadParams") for b in binds
                  if b.get(f"{JR}preload") == "property"}
    return {ref: Control(constraints.get(ref), ranges.get(ref), uploads.get(ref), ranks.get(ref, ()),
                         properties.get(ref))
            for ref in {*constraints, *ranges, *uploads, *ranks, *properties}}


def _numbers(constraint: str | None) -> list[float]:
    return [float(n) for n in NUMBER.findall(constraint or "")]


def _number(value: float, integer: bool) -> str:
    return str(int(value)) if integer else f"{value:g}"


def candidates(node: dict[str, Any], control: Control, k: int, answers_dir: Path) -> list[Any]:
    """Values to try for one question, best first; `k` makes them differ between questions."""
    kind, value_type = node["type"], node.get("value_type")
    if kind == "select":
        options = node["options"]
        return [options[:2]] if node["select_type"] == "select" else options[:3]
    if kind == "rank":
        return [list(reversed(control.options))]
    if kind == "trigger":
        return [True]
    if kind == "upload":
        family = (control.mediatype or "").split("/")[0]
        return [str(answers_dir / UPLOADS.get(family, UPLOAD_OTHER))]
    if kind == "range" and control.range:
        start, end, step = control.range
        return [_number(v, step.is_integer()) for v in (start + step, start, end) if start <= v <= end]
    if value_type in ("int", "decimal"):
        integer = value_type == "int"
        delta = 1 if integer else 0.5
        derived = [v for n in _numbers(control.constraint) for v in (n + delta, n, n - delta)]
        plain = [7 + k, 1, 0] if integer else [2.5 + k, 1.25, 0.0]
        return [_number(v, integer) for v in [*derived, *plain]]
    if value_type == "date":
        return [f"2004-08-{10 + k % 18:02d}", "2003-06-01"]
    if value_type == "time":
        return [f"{8 + k % 10:02d}:30:00.000+07:00"]
    if value_type == "dateTime":
        return [f"2004-08-{10 + k % 18:02d}T14:30:00.000+07:00"]
    if value_type == "geopoint":
        return [f"21.{k:02d} 105.8 10 5"]
    if value_type == "geotrace":
        return [f"21.0 105.8 0 0;21.01 105.81 12.5 3;21.02 105.8{k} 20 4"]
    if value_type == "geoshape":
        return [f"21.0 105.8 0 0;21.01 105.81 0 0;21.02 105.8{k} 0 0;21.0 105.8 0 0"]
    if value_type == "barcode":
        return [f"89350495000{k:02d}"]
    return [f"{TEXT} #{k}", f"x{k}"]


@dataclass
class _Question:
    ref: str
    values: list[Any]
    tried: int = 0

    @property
    def value(self) -> Any:
        return self.values[self.tried]


@dataclass(frozen=True)
class Filled:
    """One complete interview: the submission as a phone would send it, and what was answered."""

    xml: str
    attachments: dict[str, bytes]
    answers: dict[str, Any]
    """The value given to each answered question, by engine ref."""
    result: FillResult = field(repr=False)


def fill_any(engine: EnumeratorEngine, xform: str | os.PathLike[str],
             media_dir: str | os.PathLike[str] | None = None, *, instances: int = 2,
             answers_dir: Path = ANSWERS, max_rounds: int = 25) -> Filled:
    """Fill `xform` completely; raise FillError when the engine still refuses the payload."""
    controls = controls_of(xform)
    questions: dict[str, _Question] = {}
    steps: dict[tuple[str, str], Step] = {}
    for _ in range(max_rounds):
        result = engine.fill(xform, list(steps.values()), media_dir=media_dir)
        changed = False
        for node in result.nodes:
            ref, kind = node["ref"], node["type"]
            if not node["relevant"]:
                continue
            if kind == "repeat-range:uncontrolled" and node["count"] < instances \
                    and ("add", ref) not in steps:
                steps["add", ref] = add_repeat(ref, instances - node["count"])
                changed = True
                continue
            if kind not in ANSWERABLE or node["readonly"]:
                continue
            question = questions.get(ref)
            if question is None:
                if kind == "select" and not node["options"]:
                    continue  # its choice filter waits for an earlier answer
                control = controls.get(node["nodeset"], Control())
                values = candidates(node, control, len(questions), answers_dir)
                question = questions[ref] = _Question(ref, values)
                steps["answer", ref] = answer(ref, question.value)
                changed = True
            elif (node["violation"] or {}).get("condition") == "constraint":
                if question.tried + 1 >= len(question.values):
                    raise FillError(f"{xform}: no candidate satisfies {ref} ({node['violation']}); "
                                    f"tried {question.values}")
                question.tried += 1
                steps["answer", ref] = answer(ref, question.value)
                changed = True
        if not changed:
            break
    else:
        raise FillError(f"{xform}: the interview did not settle in {max_rounds} rounds")
    if not result.payload_ok or result.payload_xml is None:
        raise FillError(f"{xform}: the engine would not submit: {result.violations}")
    uploaded = {Path(v).name: Path(v) for q in questions.values() if isinstance(v := q.value, str)
                and os.path.isabs(v) and Path(v).parent == answers_dir}
    missing = [n for n in result.payload["attachments"] if n not in uploaded]
    if missing:
        raise FillError(f"{xform}: the payload names attachments the filler did not upload: {missing}")
    xml, recorded = with_device_values(result, controls, answers_dir)
    names = [*result.payload["attachments"], *recorded]
    return Filled(xml=xml, attachments={name: (uploaded.get(name) or answers_dir / name).read_bytes()
                                        for name in names},
                  answers={q.ref: q.value for q in questions.values()}, result=result)


def with_device_values(result: FillResult, controls: dict[str, Control],
                       answers_dir: Path) -> tuple[str, list[str]]:
    """The payload with what Collect fills by itself and the engine cannot: the audit log (`meta/audit`
    → audit.csv), background audio, and the device id, user name and phone number. Returns the XML
    and the files it now names."""
    xml = result.payload_xml
    assert xml is not None
    empty = [n for n in result.nodes if n["type"] == "model-value" and n["relevant"] and not n["value"]]
    files = {n["ref"]: AUDIT if n["ref"].endswith("/meta/audit") else BACKGROUND_AUDIO
             for n in empty if n.get("value_type") == "binary"}
    properties = {n["ref"]: controls.get(n["nodeset"], Control()).device_property for n in empty}
    values = {ref: DEVICE[p] for ref, p in properties.items() if p in DEVICE}
    if not files and not values:
        return xml, []
    for prefix, uri in (ns for _, ns in ET.iterparse(io.StringIO(xml), events=("start-ns",))):
        ET.register_namespace(prefix, uri)
    root = ET.fromstring(xml)
    for ref, value in (files | values).items():
        element = root.find(ref.split("/", 2)[2])
        if element is None:
            raise FillError(f"{ref} is filled by the device but not in the payload")
        element.text = value
    return ET.tostring(root, encoding="unicode"), sorted(set(files.values()))
