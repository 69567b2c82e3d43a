"""XForms and submissions as ODK Central reads them, and the OData rows it derives from them.

Central never builds a DOM: it runs `htmlparser2` in XML mode (lenient: unclosed tags are
closed at the end of the input, a stray close tag is ignored, an incomplete trailing tag is
dropped) and walks the events (`lib/util/xml.js`, `lib/data/schema.js`, `lib/data/odata.js`).
That leniency is observable: a submission cut off mid-tag is accepted with the lost values
null (17-06/17-08), an XForm without `</h:body></h:html>` is published (17-03), and a
mismatched tag hides `<model>` so the upload fails with the misleading 400.2 "Required
parameter formId missing." (05-07). To give the same answers this module tokenizes XML the
same lenient way, but hardened:

* every document first goes through `defusedxml` with DTDs forbidden, so an XXE or
  entity-expansion payload is rejected before anything else looks at it;
* the tokenizer itself refuses `<!DOCTYPE`/`<!ENTITY` declarations (also in documents that
  are not well-formed, which `defusedxml` cannot finish) and only decodes the five
  predefined XML entities and numeric character references, like `htmlparser2`.

Whether the document was well-formed is kept (`well_formed`) so a stricter caller can refuse
what Central would accept.

The OData rows follow `lib/data/odata.js#submissionToOData` key for key: the form's fields in
form order (groups as nested objects, missing values null), then `__id`, `__system`, and a
`<repeat>@odata.navigationLink` for each repeat the XML actually contains; repeat rows get a
positional sha1 `__id` (`Submissions#<instanceId>%%<repeat>#<index>...`) and the parent's key.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import quote

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from consult.sandbox.odata import CentralProblem, ODataError, js_number, to_json

__all__ = [
    "MediaDeclaration", "ODataEntities", "ParsedSubmission", "SubmissionError", "XFormDefinition",
    "XFormError", "XFormField", "XmlElement", "apply_select", "apply_wkt", "expand_entities",
    "fields_json", "join_row_json", "metadata_edmx", "odata_entities", "parse_submission",
    "sanitize_odata_identifier", "service_document", "split_row_json", "system_metadata",
]


# ---------------------------------------------------------------------------------------------
# Errors


class XFormError(CentralProblem):
    """A form definition Central would refuse (400.2 formId missing, 409.3 duplicate field, ...)."""


class SubmissionError(CentralProblem):
    """A submission Central would refuse; `message` is fit for an OpenRosa error response."""


class _ForbiddenMarkup(Exception):
    """A DTD, entity declaration or external reference: never processed."""


# ---------------------------------------------------------------------------------------------
# The lenient, hardened XML tokenizer


@dataclass(eq=False)
class XmlElement:
    """An element as `htmlparser2` reports it: the tag name as written (`orx:meta`), its
    attributes, and its content in document order, text as decoded chunks (an entity is
    its own chunk, as in htmlparser2's event stream)."""

    name: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[XmlElement | str] = field(default_factory=list)

    @property
    def local(self) -> str:
        """The name without its namespace prefix (`orx:meta` → `meta`)."""
        return self.name.rsplit(":", 1)[-1] if ":" in self.name else self.name

    def elements(self) -> Iterator[XmlElement]:
        return (c for c in self.children if isinstance(c, XmlElement))

    def attr(self, local_name: str) -> str | None:
        """First attribute whose un-prefixed name matches (Central's `_findAttr`)."""
        for key, value in self.attrs.items():
            if _strip_ns(key) == local_name:
                return value
        return None

    def child(self, local_name: str) -> XmlElement | None:
        return next((e for e in self.elements() if e.local == local_name), None)

    def iter(self) -> Iterator[XmlElement]:
        """This element and all descendants, in document order."""
        yield self
        for e in self.elements():
            yield from e.iter()


_NS_IN_PATH = re.compile(r"(^|/)[^:/]+:([^/]+)")


def _strip_ns(path: str) -> str:
    """Central's `stripNamespacesFromPath`: `/orx:meta/orx:instanceID` → `/meta/instanceID`."""
    return _NS_IN_PATH.sub(r"\1\2", path)


_ENTITY = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _entity(ref: str) -> str:
    if ref in _NAMED:
        return _NAMED[ref]
    code = int(ref[2:], 16) if ref[1] in "xX" else int(ref[1:])  # noqa: FURB166
    if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return "\ufffd"
    return chr(code)


def _text_chunks(text: str) -> list[str]:
    """Decoded text split where htmlparser2 emits separate text events (around entities)."""
    chunks: list[str] = []
    pos = 0
    for m in _ENTITY.finditer(text):
        if m.start() > pos:
            chunks.append(text[pos:m.start()])
        chunks.append(_entity(m.group(1)))
        pos = m.end()
    if pos < len(text):
        chunks.append(text[pos:])
    return chunks


def _decode(text: str) -> str:
    return _ENTITY.sub(lambda m: _entity(m.group(1)), text)


_FORBIDDEN_DECL = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
_XML_WS = " \n\t\f\r"  # htmlparser2's whitespace (not Python's Unicode-wide \\s)
_END_TAG = re.compile(r"</([^ \n\t\f\r/>]*)[^>]*>")
_TAG_NAME = re.compile(r"[^ \n\t\f\r/>]+")
_ATTR_NAME = re.compile(r"[^ \n\t\f\r=/>]+")
_UNQUOTED = re.compile(r"[^ \n\t\f\r>]*")
_SPACE = re.compile(r"[ \n\t\f\r]*")


def _tokenize(src: str) -> list[XmlElement]:
    """Top-level elements of `src`, built with htmlparser2's xmlMode rules (see module doc)."""
    roots: list[XmlElement] = []
    stack: list[XmlElement] = []
    n = len(src)
    i = 0

    def add_text(text: str) -> None:
        if stack and text:
            stack[-1].children.extend(_text_chunks(text))

    while i < n:
        lt = src.find("<", i)
        if lt < 0:
            add_text(src[i:])
            break
        if lt > i:
            add_text(src[i:lt])
        i = lt
        if src.startswith("<!--", i):
            end = src.find("-->", i + 4)
            i = n if end < 0 else end + 3
        elif src.startswith("<![CDATA[", i):
            end = src.find("]]>", i + 9)
            content = src[i + 9:] if end < 0 else src[i + 9:end]
            if stack and content:
                stack[-1].children.append(content)
            i = n if end < 0 else end + 3
        elif src.startswith("<!", i):
            if _FORBIDDEN_DECL.match(src, i):
                raise _ForbiddenMarkup("DOCTYPE/ENTITY declarations are not allowed")
            end = src.find(">", i)
            i = n if end < 0 else end + 1
        elif src.startswith("<?", i):
            end = src.find(">", i)
            i = n if end < 0 else end + 1
        elif src.startswith("</", i):
            m = _END_TAG.match(src, i)
            if m is None:  # incomplete close tag at the end: dropped
                break
            name = m.group(1)
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth].name == name:
                    del stack[depth:]
                    break
            i = m.end()
        elif i + 1 < n and src[i + 1] not in _XML_WS + "/>":
            m = _TAG_NAME.match(src, i + 1)
            assert m is not None
            element = XmlElement(m.group(0))
            j = m.end()
            closed = self_closing = False
            while j < n:
                c = src[j]
                if c in _XML_WS:
                    j += 1
                elif c == ">":
                    closed, j = True, j + 1
                    break
                elif c == "/":
                    if src.startswith("/>", j):
                        closed = self_closing = True
                        j += 2
                        break
                    j += 1
                elif (nm := _ATTR_NAME.match(src, j)) is None:
                    j += 1  # a stray `=`
                else:
                    name, value = nm.group(0), ""
                    j = nm.end()
                    k = _SPACE.match(src, j).end()  # type: ignore[union-attr]
                    if k < n and src[k] == "=":
                        k = _SPACE.match(src, k + 1).end()  # type: ignore[union-attr]
                        if k < n and src[k] in "\"'":
                            close_quote = src.find(src[k], k + 1)
                            if close_quote < 0:  # unterminated value: the tag never ends
                                j = n
                                break
                            value, j = src[k + 1:close_quote], close_quote + 1
                        else:
                            vm = _UNQUOTED.match(src, k)
                            assert vm is not None
                            value, j = vm.group(0), vm.end()
                    element.attrs.setdefault(name, _decode(value))
            if not closed:  # incomplete start tag at the end: dropped, as htmlparser2 does
                break
            (stack[-1].children if stack else roots).append(element)
            if not self_closing:
                stack.append(element)
            i = j
        else:
            add_text("<")
            i += 1
    return roots


def _parse_xml(data: bytes | str, what: str) -> tuple[str, list[XmlElement], bool]:
    """Decode (UTF-8, like Central's `buffer.toString()`), screen with defusedxml, tokenize."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8")
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    well_formed = True
    try:
        SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise _ForbiddenMarkup(f"{what}: DOCTYPE/ENTITY declarations are not allowed") from None
    except (SafeET.ParseError, ValueError):
        well_formed = False
    return text, _tokenize(text), well_formed


def _text_value(element: XmlElement) -> str | None:
    """Central's `text()` traverser: text up to the first close tag after some text, else None."""
    acc: list[str] = []

    def walk(el: XmlElement) -> bool:
        for c in el.children:
            if isinstance(c, str):
                acc.append(c)
            elif walk(c):
                return True
        return bool(acc)

    walk(element)
    return "".join(acc) if acc else None


def _find_chain(start: XmlElement, names: Sequence[str | None]) -> XmlElement | None:
    """First element (document order) reached from `start` through direct children named
    `names` (None = any), as Central's `findOne(root(), node(a), node(b), ...)`."""
    if not names:
        return start
    head, rest = names[0], names[1:]
    for child in start.elements():
        if head is None or child.local == head:
            found = _find_chain(child, rest)
            if found is not None:
                return found
    return None


# ---------------------------------------------------------------------------------------------
# Form definitions


_LEADING_ILLEGAL = re.compile(r"^([^a-zA-Z_])")
_ILLEGAL = re.compile(r"[^a-zA-Z0-9_]+")


@lru_cache(maxsize=4096)
def sanitize_odata_identifier(name: str) -> str:
    """Central's `sanitizeOdataIdentifier`: `first-name` → `first_name`, `1st` → `_1st`."""
    return _ILLEGAL.sub("_", _LEADING_ILLEGAL.sub(r"_\1", name))


@dataclass(frozen=True)
class XFormField:
    """One entry of Central's `/fields` list (`path` without the instance root, raw `type`)."""

    path: str
    name: str
    type: str
    order: int
    binary: bool = False
    select_multiple: bool = False

    @property
    def is_structural(self) -> bool:
        return self.type in ("repeat", "structure")

    @cached_property
    def odata_name(self) -> str:
        return sanitize_odata_identifier(self.name)

    @cached_property
    def odata_path(self) -> str:
        return "/".join(sanitize_odata_identifier(p) for p in self.path.split("/"))

    @cached_property
    def parent_path(self) -> str:
        return self.path.rsplit("/", 1)[0]


@dataclass(frozen=True)
class MediaDeclaration:
    """A form attachment the XForm expects (`provinces.csv`, type `file`/`image`/`audio`/`video`)."""

    name: str
    type: str


_JR_PATH = re.compile(r"^jr://(?:images|audio|video|file|file-csv)/([^/]+)$")
_MEDIA_FORMS = {"image": "image", "audio": "audio", "video": "video", "big-image": "image"}
_SEARCH = re.compile(r"""^\s*(?:\w*\s+)?search\s*\(\s*("|')(.+)\)\s*$""")


def _jr_path_name(value: str) -> str | None:
    m = _JR_PATH.match(value.strip())
    return m.group(1) if m else None


def _search_csv(appearance: str) -> str | None:
    m = _SEARCH.match(_decode(appearance))
    if m is None:
        return None
    quote_char, arg = m.groups()
    try:
        first = next(csv.reader([quote_char + arg], quotechar=quote_char, skipinitialspace=True))
    except (csv.Error, StopIteration):
        raise XFormError(400, 400.8, f"Unexpected search() appearance value {appearance}; broken syntax, "
                         "maybe unmatched quotes?", {"field": "search() appearance", "value": appearance,
                                                     "reason": "broken syntax, maybe unmatched quotes?"}) from None
    basename = first[0].rstrip() if first else None
    if not basename or basename != basename.strip():
        return None
    return basename if basename.endswith(".csv") else f"{basename}.csv"


@dataclass
class XFormDefinition:
    """A parsed XForm: identity and hashes as Central reports them, its fields and media."""

    form_id: str
    version: str | None          # None when the instance has no version attribute (Central: "")
    title: str | None
    xml: str
    md5: str                     # Central's `hash` (also in formList as `md5:<hash>`)
    sha: str                     # sha1, Central's `sha`
    sha256: str
    fields: list[XFormField]
    media: list[MediaDeclaration]
    instance_root: str           # the primary instance's root tag as written (`data`)
    public_key: str | None = None
    well_formed: bool = True

    _by_path: dict[str, XFormField] = field(default_factory=dict, init=False, repr=False)
    _children: dict[str, list[XFormField]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for f in self.fields:
            self._by_path[f.path] = f  # a later duplicate wins, like Central's SchemaStack
            self._children.setdefault(f.parent_path, []).append(f)

    @property
    def hash(self) -> str:
        return self.md5

    @property
    def central_version(self) -> str:
        """The version as Central's API shows it (`""` when absent)."""
        return self.version or ""

    @classmethod
    def parse(cls, xml: bytes | str) -> XFormDefinition:
        """Read an XForm the way Central's form upload does (`Form.fromXml`, `getFormFields`,
        `expectedFormAttachments`); 400.2 "Required parameter formId missing." when there is
        no `html/head/model/instance/*[@id]` (broken XML, mismatched tags, not an XForm)."""
        raw = xml if isinstance(xml, bytes) else xml.encode("utf-8")
        try:
            text, roots, well_formed = _parse_xml(raw, "xforms xml")
        except _ForbiddenMarkup as exc:
            raise XFormError(400, 400.1, f"Could not parse the given data ({len(raw)} chars) as xforms xml: "
                             f"{exc}.", {"format": "xforms xml", "rawLength": len(raw)}) from None
        html = roots[0] if roots and roots[0].local == "html" else None
        model = _find_chain(html, ["head", "model"]) if html else None
        data = _find_chain(model, ["instance", None]) if model else None
        form_id = data.attr("id") if data is not None else None
        if not form_id:
            raise XFormError(400, 400.2, "Required parameter formId missing.", {"field": "formId"})
        assert html is not None and model is not None and data is not None
        title_el = _find_chain(html, ["head", "title"])
        title = _text_value(title_el) if title_el is not None else None
        submission = _find_chain(model, ["submission"])
        return cls(
            form_id=form_id,
            version=data.attr("version"),
            title=_decode(title) if title is not None else None,  # Central decodes a second time
            xml=text,
            md5=hashlib.md5(raw).hexdigest(),
            sha=hashlib.sha1(raw).hexdigest(),
            sha256=hashlib.sha256(raw).hexdigest(),
            fields=_form_fields(html, model, data),
            media=_expected_media(html, model),
            instance_root=data.name,
            public_key=submission.attr("base64RsaPublicKey") if submission is not None else None,
            well_formed=well_formed,
        )

    # -- lookups -------------------------------------------------------------------------------

    def field(self, path: str) -> XFormField | None:
        return self._by_path.get(path)

    def children(self, path: str = "") -> list[XFormField]:
        """Direct children of a group/repeat path (`""` for the top level), in form order."""
        return self._children.get(path, [])

    @cached_property
    def has_select_multiple(self) -> bool:
        return any(f.select_multiple for f in self.fields)

    @property
    def binary_fields(self) -> list[XFormField]:
        return [f for f in self.fields if f.binary]

    @property
    def tables(self) -> list[str]:
        """OData entity sets: `Submissions` then `Submissions.<repeat path with dots>`."""
        return ["Submissions"] + ["Submissions." + f.odata_path[1:].replace("/", ".")
                                  for f in self.fields if f.type == "repeat"]

    def table_path(self, table: str) -> str | None:
        """The field path of an OData table (`Submissions.a.b` → `/a/b`; `""` for Submissions),
        or None if there is no such repeat (Central answers 404.1)."""
        if table == "Submissions":
            return ""
        for f in self.fields:
            if f.type == "repeat" and "Submissions." + f.odata_path[1:].replace("/", ".") == table:
                return f.path
        return None

    def duplicate_paths(self) -> list[str]:
        seen: set[str] = set()
        dupes: list[str] = []
        for f in self.fields:
            if f.path in seen and f.path not in dupes:
                dupes.append(f.path)
            seen.add(f.path)
        return dupes

    def field_conflict(self, schema_id: int | str) -> XFormError | None:
        """The 409.3 Central raises when storing this form's fields hits its unique
        (schemaId, path) index, or None. It happens when the body lost its `<repeat>` (a
        truncated upload, 17-02) so the repeat's template and first instance become two
        `structure` fields at one path. Central checks the form id first (05-06 gave the
        `forms` conflict), so the server should call this after its own duplicate-form check."""
        dupes = self.duplicate_paths()
        if not dupes:
            return None
        values = [str(schema_id), dupes[0]]
        return XFormError(409, 409.3, f"A resource already exists with schemaId,path value(s) of "
                          f"{','.join(values)}.", {"fields": ["schemaId", "path"], "values": values,
                                                   "table": "form_fields"})


def _form_fields(html: XmlElement, model: XmlElement, data: XmlElement) -> list[XFormField]:
    """Central's `getFormFields`: the primary instance walked against binds and body repeats."""
    envelope = data.name
    bindings: dict[str, dict[str, str]] = {}
    for bind in model.elements():
        if bind.local == "bind" and bind.attr("type") is not None:
            nodeset = bind.attrs.get("nodeset")
            if nodeset is None:
                continue
            absolute = nodeset if nodeset.startswith("/") else f"/{envelope}/{nodeset}"
            bindings.setdefault(absolute, bind.attrs)
    body = _find_chain(html, ["body"])
    repeats: set[str] = set()
    selects: set[str] = set()
    if body is not None:
        for el in body.iter():
            if el is body:
                continue
            if el.local == "repeat" and el.attr("nodeset") is not None:
                repeats.add(_strip_ns(el.attr("nodeset") or ""))
            elif el.local == "select":
                ref = el.attr("nodeset") if el.attr("nodeset") is not None else el.attr("ref")
                if ref is not None:
                    selects.add(_strip_ns(ref))

    fields: list[XFormField] = []

    def recurse(instance: XmlElement, base: list[str]) -> None:
        processed: set[str] = set()
        for tag in instance.elements():
            path = base + [tag.name]
            joined = "/" + "/".join(path)
            binding_path = f"/{envelope}{joined}"
            has_children = any(True for _ in tag.elements())
            if binding_path in repeats:
                if binding_path in processed:
                    continue  # the template and the first instance of a repeat are one field
                processed.add(binding_path)
                type_ = "repeat"
            elif binding_path in bindings:
                type_ = bindings[binding_path].get("type") or "unknown"
            elif has_children or (tag.name == "entity" and "/meta/entity" in joined):
                type_ = "structure"
            else:
                type_ = "unknown"
            stripped = _strip_ns(joined)
            fields.append(XFormField(
                path=stripped, name=_strip_ns(tag.name), type=type_, order=len(fields),
                binary=type_ == "binary" or stripped == "/meta/audit",
                select_multiple=binding_path in selects))
            if type_ in ("repeat", "structure") and has_children:
                recurse(tag, path)

    recurse(data, [])
    return fields


def _expected_media(html: XmlElement, model: XmlElement) -> list[MediaDeclaration]:
    """Central's `expectedFormAttachments`, in its order, deduplicated the same way."""
    found: list[tuple[str, str]] = []
    for inst in model.elements():  # <instance src="jr://file-csv/x.csv"/>
        if inst.local == "instance" and inst.attr("src") is not None:
            name = _jr_path_name(inst.attr("src") or "")
            if name is not None:
                found.append(("file", name))
    for itext in model.elements():  # itext <value form="image">jr://images/x.png</value>
        if itext.local != "itext":
            continue
        for tr in itext.elements():
            if tr.local != "translation":
                continue
            for text_el in tr.elements():
                if text_el.local != "text":
                    continue
                for value in text_el.elements():
                    form = value.attr("form")
                    if value.local != "value" or form is None:
                        continue
                    content = _text_value(value)
                    media_type = _MEDIA_FORMS.get(form)
                    name = _jr_path_name(content) if content is not None else None
                    if media_type and name:
                        found.append((media_type, name))
    for inst in model.elements():  # default values jr://images/... of top-level fields
        if inst.local != "instance":
            continue
        for top in inst.elements():
            for leaf in top.elements():
                content = _text_value(leaf)
                if content is not None and re.match(r"^jr://images/.", content):
                    name = _jr_path_name(content)
                    if name:
                        found.append(("image", name))
    body = _find_chain(html, ["body"])
    if body is not None:
        if any(el.local == "input" and el.attr("query") is not None for el in body.iter() if el is not body):
            found.append(("file", "itemsets.csv"))
        for el in body.iter():
            appearance = el.attr("appearance") if el is not body else None
            if el.local in ("select", "select1") and appearance and "search" in appearance:
                name = _search_csv(appearance)
                if name:
                    found.append(("file", name))
    seen: dict[str, str] = {}
    result: list[MediaDeclaration] = []
    for type_, name in found:
        if seen.get(name) != type_:
            result.append(MediaDeclaration(name=name, type=type_))
        seen[name] = type_
    return result


def fields_json(defn: XFormDefinition, odata: bool) -> list[dict[str, Any]]:
    """The `/fields` response: 06-05 with `?odata=true` (sanitized names), 06-06 without."""
    return [{
        "path": f.odata_path if odata else f.path,
        "name": f.odata_name if odata else f.name,
        "type": f.type,
        "binary": True if f.binary else None,
        "selectMultiple": True if f.select_multiple else None,
    } for f in defn.fields]


# ---------------------------------------------------------------------------------------------
# $metadata and the service document


_EDM_TYPES = {"int": "Edm.Int64", "decimal": "Edm.Decimal", "boolean": "Edm.Boolean",
              "geopoint": "Edm.GeographyPoint", "geotrace": "Edm.GeographyLineString",
              "geoshape": "Edm.GeographyPolygon", "date": "Edm.Date", "dateTime": "Edm.DateTimeOffset"}


def _mustache_escape(text: str) -> str:
    table = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "/": "&#x2F;",
             "`": "&#x60;", "=": "&#x3D;"}
    return "".join(table.get(c, c) for c in text)


_EDMX_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="org.opendatakit.submission">
      <ComplexType Name="metadata">
        <Property Name="submissionDate" Type="Edm.DateTimeOffset"/>
        <Property Name="updatedAt" Type="Edm.DateTimeOffset"/>
        <Property Name="deletedAt" Type="Edm.DateTimeOffset"/>
        <Property Name="submitterId" Type="Edm.String"/>
        <Property Name="submitterName" Type="Edm.String"/>
        <Property Name="attachmentsPresent" Type="Edm.Int64"/>
        <Property Name="attachmentsExpected" Type="Edm.Int64"/>
        <Property Name="status" Type="org.opendatakit.submission.Status"/>
        <Property Name="reviewState" Type="org.opendatakit.submission.ReviewState"/>
        <Property Name="deviceId" Type="Edm.String"/>
        <Property Name="edits" Type="Edm.Int64"/>
        <Property Name="formVersion" Type="Edm.String"/>
      </ComplexType>
      <EnumType Name="Status">
        <Member Name="notDecrypted"/>
        <Member Name="missingEncryptedFormData"/>
      </EnumType>
      <EnumType Name="ReviewState">
        <Member Name="hasIssues"/>
        <Member Name="edited"/>
        <Member Name="rejected"/>
        <Member Name="approved"/>
      </EnumType>
    </Schema>
"""

_EDMX_PRIMARY_ANNOTATIONS_A = """          <Annotation Term="Org.OData.Capabilities.V1.ConformanceLevel" EnumMember="Org.OData.Capabilities.V1.ConformanceLevelType/Minimal"/>
          <Annotation Term="Org.OData.Capabilities.V1.BatchSupported" Bool="false"/>
          <Annotation Term="Org.OData.Capabilities.V1.CountRestrictions">
            <Record><PropertyValue Property="Countable" Bool="true"/></Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.FilterFunctions">
            <Record>
              <PropertyValue Property="NonCountableProperties">
                <Collection>
                  <String>eq</String>
                </Collection>
              </PropertyValue>
            </Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.FilterFunctions">
            <Record>
              <PropertyValue Property="Filterable" Bool="true"/>
              <PropertyValue Property="RequiresFilter" Bool="false"/>
              <PropertyValue Property="NonFilterableProperties">
                <Collection>
"""
_EDMX_PRIMARY_ANNOTATIONS_B = """                </Collection>
              </PropertyValue>
            </Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.SortRestrictions">
            <Record><PropertyValue Property="Sortable" Bool="false"/></Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.ExpandRestrictions">
            <Record><PropertyValue Property="Expandable" Bool="false"/></Record>
          </Annotation>
"""


@dataclass
class _EdmBag:
    name: str
    path: str | None
    primary: bool = False
    repeat: bool = False
    properties: list[tuple[str, str, bool]] = field(default_factory=list)  # name, type, navigation


def metadata_edmx(defn: XFormDefinition) -> str:
    """The `$metadata` EDMX document, byte for byte as Central's mustache template renders it
    (`lib/formats/odata.js#edmxFor`; 12-02, 14-11)."""
    fqdn = f"org.opendatakit.user.{sanitize_odata_identifier(defn.form_id)}"
    submissions = _EdmBag("Submissions", None, primary=True)
    entity_types = [submissions]
    complex_types: list[_EdmBag] = []
    stack = [submissions]
    for f in defn.fields:
        out = stack[-1]
        while out.path is not None and not f.path.startswith(out.path + "/"):
            stack.pop()
            out = stack[-1]
        name = f.odata_name
        if f.is_structural:
            type_name = f.odata_path[1:].replace("/", ".")
            if f.type == "structure":
                bag = _EdmBag(type_name, f.path)
                complex_types.append(bag)
                stack.append(bag)
                out.properties.append((name, f"{fqdn}.{type_name}", False))
            else:
                context = next((b for b in reversed(stack) if b.repeat), None)
                parts = ["Submissions"]
                if context is not None and context.path is not None:
                    parts += [sanitize_odata_identifier(p) for p in context.path[1:].split("/")]
                bag = _EdmBag(f"Submissions.{type_name}", f.path, repeat=True,
                              properties=[(f"__{'-'.join(parts)}-id", "Edm.String", False)])
                entity_types.append(bag)
                stack.append(bag)
                out.properties.append((name, f"Collection({fqdn}.Submissions.{type_name})", True))
        else:
            out.properties.append((name, _EDM_TYPES.get(f.type, "Edm.String"), False))

    def props(bag: _EdmBag) -> list[str]:
        return [f'        <{"NavigationProperty" if nav else "Property"} Name="{_mustache_escape(n)}" '
                f'Type="{_mustache_escape(t)}"/>\n' for n, t, nav in bag.properties]

    out: list[str] = [_EDMX_HEAD, (f'    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" '
                                   f'Namespace="{_mustache_escape(fqdn)}">\n')]
    for bag in entity_types:
        out.append(f'      <EntityType Name="{_mustache_escape(bag.name)}">\n')
        out.append('        <Key><PropertyRef Name="__id"/></Key>\n')
        out.append('        <Property Name="__id" Type="Edm.String"/>\n')
        if bag.primary:
            out.append('        <Property Name="__system" Type="org.opendatakit.submission.metadata"/>\n')
        out.extend(props(bag))
        out.append("      </EntityType>\n")
    for bag in complex_types:
        out.append(f'      <ComplexType Name="{_mustache_escape(bag.name)}">\n')
        out.extend(props(bag))
        out.append("      </ComplexType>\n")
    out.append(f'      <EntityContainer Name="{_mustache_escape(defn.form_id)}">\n')
    for bag in entity_types:
        out.append(f'        <EntitySet Name="{_mustache_escape(bag.name)}" '
                   f'EntityType="{_mustache_escape(fqdn)}.{_mustache_escape(bag.name)}">\n')
        if bag.primary:
            out.append(_EDMX_PRIMARY_ANNOTATIONS_A)
            out.extend(f"                  <PropertyPath>{_mustache_escape(n)}</PropertyPath>\n"
                       for n, _, _ in bag.properties)
            out.append(_EDMX_PRIMARY_ANNOTATIONS_B)
        out.append("        </EntitySet>\n")
    out.append("      </EntityContainer>\n    </Schema>\n  </edmx:DataServices>\n</edmx:Edmx>")
    return "".join(out)


def service_document(defn: XFormDefinition, base_url: str) -> dict[str, Any]:
    """The `.svc` service document (12-01); `base_url` is the absolute `.svc` URL, built from the
    server's configured domain (`http://127.0.0.1:8383/v1/projects/1/forms/x.svc`)."""
    return {
        "@odata.context": f"{base_url.rstrip('/')}/$metadata",
        "value": [{"name": t, "kind": "EntitySet", "url": t} for t in defn.tables],
    }


# ---------------------------------------------------------------------------------------------
# Submissions


@dataclass
class ParsedSubmission:
    """What Central reads from a submission XML (`Submission.fromXml`) plus the element tree."""

    xml: str
    form_id: str
    version: str | None          # None when absent (Central: "")
    instance_id: str | None      # meta/instanceID, else a root-level instanceID; None if neither
    deprecated_id: str | None
    instance_name: str | None
    root: XmlElement
    well_formed: bool = True
    encrypted: bool = False      # carries base64EncryptedKey (the sandbox has no decryption)

    def attachment_names(self, defn: XFormDefinition) -> list[str]:
        """Names the submission references in the form's binary fields (non-empty values, in
        document order, each once): what Central lists as expected attachments."""
        names: list[str] = []

        def walk(el: XmlElement, path: str) -> None:
            for child in el.elements():
                cpath = f"{path}/{_strip_ns(child.name)}"
                f = defn.field(cpath)
                if f is not None and f.binary and not f.is_structural:
                    value = "".join(c for c in child.children if isinstance(c, str))
                    if value and value not in names:
                        names.append(value)
                walk(child, cpath)

        walk(self.root, "")
        return names


def parse_submission(xml: bytes | str) -> ParsedSubmission:
    """Read a submission like Central does, without its leniency being an attack surface.

    DOCTYPE/entity declarations are refused (400.1). XML that is cut off is accepted: open
    elements are closed at the end and an incomplete trailing tag is dropped, so values after
    the cut are simply absent (Central stores such a submission, 17-06). No root `id` gives
    400.2 "Required parameter form ID xml attribute missing.", as in Central.
    """
    raw = xml if isinstance(xml, bytes) else xml.encode("utf-8")
    try:
        text, roots, well_formed = _parse_xml(raw, "submission xml")
    except _ForbiddenMarkup as exc:
        raise SubmissionError(400, 400.1, f"Could not parse the given data ({len(raw)} chars) as xml: {exc}.",
                              {"format": "xml", "rawLength": len(raw)}) from None
    root = roots[0] if roots else None
    form_id = root.attr("id") if root is not None else None
    if root is None or not form_id:
        raise SubmissionError(400, 400.2, "Required parameter form ID xml attribute missing.",
                              {"field": "form ID xml attribute"})

    def meta(name: str) -> str | None:
        el = _find_chain(root, ["meta", name])
        return _text_value(el) if el is not None else None

    top_instance = _find_chain(root, ["instanceID"])
    instance_id = meta("instanceID")
    if instance_id is None and top_instance is not None:
        instance_id = _text_value(top_instance)
    return ParsedSubmission(
        xml=text, form_id=form_id, version=root.attr("version"), instance_id=instance_id,
        deprecated_id=meta("deprecatedID"), instance_name=meta("instanceName"), root=root,
        well_formed=well_formed, encrypted=_find_chain(root, ["base64EncryptedKey"]) is not None)


# -- JavaScript number parsing, as Central's json.js uses it -------------------------------------

_JS_WS = " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
         "\u2028\u2029\u202f\u205f\u3000\ufeff"
_PARSE_INT = re.compile(r"([+-]?)(\d+)")
_PARSE_FLOAT = re.compile(r"[+-]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_JS_SPLIT_WS = re.compile(f"[{re.escape(_JS_WS)}]+")


def _js_parse_int(text: str) -> int | float | None:
    """`parseInt(text, 10)`; None for NaN (JSON null). Beyond 2^53 it becomes a float, as in JS."""
    m = _PARSE_INT.match(text.lstrip(_JS_WS))
    if m is None:
        return None
    value = int(m.group(1) + m.group(2))
    return float(value) if abs(value) > 2 ** 53 else value


def _js_parse_float(text: str) -> float | None:
    """`parseFloat(text)`; None for NaN and for ±Infinity (both are null in JSON)."""
    m = _PARSE_FLOAT.match(text.lstrip(_JS_WS))
    if m is None or "Infinity" in m.group(0):
        return None
    return float(m.group(0))


def _number(value: float) -> int | float:
    """Integral floats as ints, so a row serializes `35` like JavaScript, not `35.0`."""
    return int(value) if value.is_integer() and abs(value) <= 2 ** 53 else value


def _split_floats(text: str) -> list[float | None]:
    return [_js_parse_float(p) for p in _JS_SPLIT_WS.split(text)]


def _geopoint(text: str) -> dict[str, Any] | None:
    parts = _split_floats(text)
    lat = parts[0] if len(parts) > 0 else None
    lon = parts[1] if len(parts) > 1 else None
    if lat is None or lon is None:
        return None
    coordinates: list[int | float] = [_number(lon), _number(lat)]
    if len(parts) > 2 and parts[2] is not None:
        coordinates.append(_number(parts[2]))
    value: dict[str, Any] = {"type": "Point", "coordinates": coordinates}
    if len(parts) > 3 and parts[3] is not None:
        value["properties"] = {"accuracy": _number(parts[3])}
    return value


def _geo_shape(text: str, kind: str) -> dict[str, Any] | None:
    point_strs = re.split(r"; ?", text)
    coordinates: list[list[int | float]] = []
    accuracies: list[int | float | None] = []
    for s in point_strs:
        parts = _split_floats(s)
        lat = parts[0] if len(parts) > 0 else None
        lon = parts[1] if len(parts) > 1 else None
        if (len(parts) < 2) and len(point_strs) == 1:
            return None
        if lat is None or lon is None:
            continue
        point = [_number(lon), _number(lat)]
        if len(parts) > 2 and parts[2] is not None:
            point.append(_number(parts[2]))
        coordinates.append(point)
        acc = parts[3] if len(parts) > 3 else None
        accuracies.append(_number(acc) if acc else None)  # JS `accuracy || null`
    value: dict[str, Any] = ({"type": "LineString", "coordinates": coordinates} if kind == "geotrace"
                             else {"type": "Polygon", "coordinates": [coordinates]})
    if any(a is not None for a in accuracies):
        value["properties"] = {"accuracies": accuracies}
    return value


_MISSING = object()


def _apply_text(data: dict[str, Any], key: str, type_: str, chunk: str) -> None:
    """One text event of a primitive field, converted as `json.js` does (last event wins for
    typed values, strings concatenate)."""
    if type_ == "int":
        data[key] = _js_parse_int(chunk)
    elif type_ == "decimal":
        number = _js_parse_float(chunk)
        data[key] = None if number is None else _number(number)
    elif type_ == "geopoint":
        point = _geopoint(chunk)
        if point is not None:
            data[key] = point
    elif type_ in ("geotrace", "geoshape"):
        shape = _geo_shape(chunk, type_)
        if shape is not None:
            data[key] = shape
    elif type_ == "dateTime":
        trimmed = chunk.strip(_JS_WS)
        data[key] = f"{trimmed}:00" if re.search(r"[+-]\d\d$", trimmed) else trimmed
    else:
        data[key] = (data.get(key) or "") + chunk


# -- OData rows ----------------------------------------------------------------------------------


def system_metadata(*, submission_date: str, updated_at: str | None, submitter_id: int | str | None,
                    submitter_name: str | None, attachments_present: int, attachments_expected: int,
                    review_state: str | None, device_id: str | None, edits: int, form_version: str,
                    deleted_at: str | None, status: str | None = None) -> dict[str, Any]:
    """The `__system` object in Central's key order (`submitterId` is a string in OData)."""
    return {
        "submissionDate": submission_date, "updatedAt": updated_at,
        "submitterId": None if submitter_id is None else str(submitter_id),
        "submitterName": submitter_name or None, "attachmentsPresent": attachments_present or 0,
        "attachmentsExpected": attachments_expected or 0, "status": status,
        "reviewState": review_state or None, "deviceId": device_id or None, "edits": edits,
        "formVersion": form_version, "deletedAt": deleted_at,
    }


@dataclass(eq=False)
class _Bag:
    table: str
    parent_key: str
    parent_id: str
    data: dict[str, Any]


@dataclass
class ODataEntities:
    """One submission as OData rows: the `Submissions` row, each repeat table's rows (with
    their parent key, document order), and the root with every repeat inlined (`$expand=*`)."""

    instance_id: str
    root: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]
    expanded: dict[str, Any]
    _bags: list[_Bag] = field(default_factory=list, repr=False)

    def table_rows(self, table: str, *, expand: bool = False) -> list[dict[str, Any]]:
        """Rows of `Submissions` or of a repeat table; `expand=True` inlines nested repeats."""
        if table == "Submissions":
            return [self.expanded if expand else self.root]
        if not expand:
            return self.tables.get(table, [])
        return [_with_parent_key(b.data, b.parent_key, b.parent_id) for b in self._bags if b.table == table]


def _strip_arrays(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, list) and f"{key}@odata.navigationLink" in data:
            continue  # an inlined repeat: only in $expand output
        out[key] = _strip_arrays(value) if isinstance(value, dict) else value
    return out


def _with_parent_key(data: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        out[k] = v
        if k == "__id":
            out[key] = value
    return out


def odata_entities(defn: XFormDefinition, parsed: ParsedSubmission, system: Mapping[str, Any],
                   instance_id_for_row: str) -> ODataEntities:
    """The OData rows of a submission under the CURRENT published definition `defn`.

    `system` becomes `__system` as given (see `system_metadata`); `instance_id_for_row` is the
    submission's logical id (the first version's instanceID, also after edits), used for
    `__id`, navigation links and the repeat hashes. Fields of `defn` absent from the XML are
    null; XML elements `defn` does not know are ignored.
    """
    instance_id = instance_id_for_row
    bags: list[_Bag] = []

    def frame(path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in defn.children(path):
            if not child.is_structural:
                out[child.odata_name] = None
            elif child.type == "structure":
                out[child.odata_name] = frame(child.path)
        return out

    def hash_id(stack: Sequence[XFormField], counts: Sequence[int | None]) -> str:
        if not stack:
            return instance_id
        parts = [f"Submissions#{instance_id}"]
        for f, n in zip(stack, counts):
            parts.append(f"{f.name}#" if f.type == "structure" else f"{f.name}#{n}")
        return hashlib.sha1("%%".join(parts).encode("utf-8")).hexdigest()

    def navigation_link(stack: Sequence[XFormField], counts: Sequence[int | None]) -> str:
        parts = [f"Submissions('{quote(instance_id, safe=_URI_COMPONENT_SAFE)}')"]
        for i, f in enumerate(stack):
            if f.type == "repeat" and i < len(stack) - 1:
                parts.append(f"{f.odata_name}('{hash_id(stack[:i + 1], counts[:i + 1])}')")
            else:
                parts.append(f.odata_name)
        return "/".join(parts)

    def walk(element: XmlElement, path: str, stack: list[XFormField], counts: list[int | None],
             counter: dict[str, int], data: dict[str, Any]) -> None:
        for child in element.elements():
            cpath = f"{path}/{_strip_ns(child.name)}"
            f = defn.field(cpath)
            if f is None:
                continue  # not in this definition: the whole subtree is ignored
            key = f.odata_name
            if f.type == "repeat":
                index = counter.get(cpath, -1) + 1
                counter[cpath] = index
                fstack, fcounts = stack + [f], counts + [index]
                data[f"{key}@odata.navigationLink"] = navigation_link(fstack, fcounts)
                bag = frame(f.path)
                bag["__id"] = hash_id(fstack, fcounts)
                if not isinstance(data.get(key), list):
                    data[key] = []
                data[key].append(bag)
                parent = next((i for i in range(len(stack) - 1, -1, -1) if stack[i].type == "repeat"), -1)
                pstack = stack[:parent + 1]
                parent_key = "__" + "-".join(["Submissions"] + [p.odata_name for p in pstack]) + "-id"
                bags.append(_Bag("Submissions." + ".".join(p.odata_name for p in fstack), parent_key,
                                 hash_id(pstack, counts[:parent + 1]), bag))
                walk(child, cpath, fstack, fcounts, {}, bag)
            elif f.type == "structure":
                sub = data.get(key)
                if isinstance(sub, dict):
                    walk(child, cpath, stack + [f], counts + [None], counter, sub)
            else:
                for chunk in child.children:
                    if isinstance(chunk, str):
                        _apply_text(data, key, f.type, chunk)

    expanded = frame("")
    expanded["__id"] = instance_id
    expanded["__system"] = dict(system)
    walk(parsed.root, "", [], [], {}, expanded)
    tables: dict[str, list[dict[str, Any]]] = {}
    for bag in bags:
        tables.setdefault(bag.table, []).append(
            _with_parent_key(_strip_arrays(bag.data), bag.parent_key, bag.parent_id))
    return ODataEntities(instance_id=instance_id, root=_strip_arrays(expanded), tables=tables,
                         expanded=expanded, _bags=bags)


_URI_COMPONENT_SAFE = "-_.!~*'()"


def expand_entities(entities: ODataEntities, table: str = "Submissions") -> list[dict[str, Any]]:
    """`$expand=*`: the table's rows with every nested repeat inlined as an array right after its
    navigation link; inlined rows carry `__id` but no parent key (12-15)."""
    return entities.table_rows(table, expand=True)


# -- $wkt ----------------------------------------------------------------------------------------


def _wkt_number(value: Any) -> str:
    return "Infinity" if value is None else js_number(value)


def _to_wkt(value: dict[str, Any]) -> str | dict[str, Any]:
    kind, coords = value.get("type"), value.get("coordinates")
    if kind == "Point" and isinstance(coords, list):
        return f"POINT ({' '.join(_wkt_number(c) for c in coords)})"
    if kind == "LineString" and isinstance(coords, list):
        return f"LINESTRING ({','.join(' '.join(_wkt_number(c) for c in p) for p in coords)})"
    if kind == "Polygon" and isinstance(coords, list) and coords:
        return f"POLYGON (({','.join(' '.join(_wkt_number(c) for c in p) for p in coords[0])}))"
    return value


def apply_wkt(defn: XFormDefinition, row: Mapping[str, Any], table: str = "Submissions") -> dict[str, Any]:
    """`$wkt=true`: geo fields as Well-Known Text (`POINT (lon lat alt)`, accuracy dropped, 12-14)."""
    base = defn.table_path(table)
    if base is None:
        raise ODataError(404, 404.1, "Could not find the resource you were looking for.")

    def walk(data: Mapping[str, Any], path: str) -> dict[str, Any]:
        kids = {c.odata_name: c for c in defn.children(path)}
        out: dict[str, Any] = {}
        for key, value in data.items():
            f = kids.get(key)
            if f is None:
                out[key] = value
            elif f.type in ("geopoint", "geotrace", "geoshape") and isinstance(value, dict):
                out[key] = _to_wkt(value)
            elif f.type == "structure" and isinstance(value, dict):
                out[key] = walk(value, f.path)
            elif f.type == "repeat" and isinstance(value, list):
                out[key] = [walk(v, f.path) for v in value]
            else:
                out[key] = value
        return out

    return walk(row, base)


# -- $select -------------------------------------------------------------------------------------


_SYSTEM_SELECTABLE = frozenset([
    "__system", "__system/submissionDate", "__system/updatedAt", "__system/submitterId",
    "__system/submitterName", "__system/attachmentsPresent", "__system/attachmentsExpected",
    "__system/status", "__system/reviewState", "__system/deviceId", "__system/edits",
    "__system/formVersion", "__system/deletedAt",
])


def _selected_fields(defn: XFormDefinition, select: str, table: str) -> tuple[set[str], set[str]]:
    """Central's `filterFields`: the sanitized field paths kept, and the `__` names asked for."""
    tree = {f.odata_path: f for f in defn.fields}
    kept: set[str] = set()
    path = ""
    id_keys = {"__id"}
    if table != "Submissions":
        parent_id_key = "__Submissions"
        segments = table.removeprefix("Submissions.").split(".")
        for i, segment in enumerate(segments):
            path += f"/{segment}"
            if path not in tree:
                raise ODataError(404, 404.1, "Could not find the resource you were looking for.")
            kept.add(path)
            if tree[path].type == "repeat" and i < len(segments) - 1:
                parent_id_key = "__Submissions" + path.replace("/", "-")
        id_keys.add(parent_id_key + "-id")
    for prop in (p.strip() for p in select.split(",")):
        if prop in id_keys or (table == "Submissions" and prop in _SYSTEM_SELECTABLE):
            continue
        target = f"{path}/{prop}"
        f = tree.get(target)
        if f is None:
            raise ODataError(400, 400.23, f"Could not find a property named '{prop}'", {"property": prop})
        kept.add(target)
        parent = target.rsplit("/", 1)[0]
        while parent and parent not in kept:
            if tree[parent].type == "repeat":
                raise ODataError(400, 400.24, f"The given OData select property '{prop}' uses features not "
                                 "supported by this server.", {"property": prop})
            kept.add(parent)
            parent = parent.rsplit("/", 1)[0]
        if f.type == "structure":
            pending = [f.odata_path]
            while pending:
                current = pending.pop()
                for child in (c for c in defn.fields if c.odata_path.rsplit("/", 1)[0] == current):
                    kept.add(child.odata_path)
                    if child.type == "structure":
                        pending.append(child.odata_path)
    metadata = {p.strip() for p in select.split(",") if p.strip().startswith("__")}
    return kept, metadata


def apply_select(defn: XFormDefinition, row: Mapping[str, Any], select: str | None,
                 table: str = "Submissions") -> dict[str, Any]:
    """`$select`: keep the listed fields (their groups kept around them, a group brings all its
    fields), `__id`/the parent key only when listed, `__system` or some of its properties
    (12-11, 12-16). Unknown property → 400.23, a field inside a repeat → 400.24."""
    if select is None or select == "*":
        return dict(row)
    base = defn.table_path(table)
    if base is None:
        raise ODataError(404, 404.1, "Could not find the resource you were looking for.")
    kept, metadata = _selected_fields(defn, select, table)
    base_odata = "/".join(sanitize_odata_identifier(p) for p in base.split("/")) if base else ""

    types = {f.odata_path: f.type for f in defn.fields}

    def walk(data: Mapping[str, Any], path: str, top: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key == "__id":
                if not top or "__id" in metadata:  # inlined ($expand) rows always keep theirs
                    out[key] = value
            elif top and key == "__system":
                if "__system" in metadata:
                    out[key] = value
                elif any(m.startswith("__system/") for m in metadata) and isinstance(value, Mapping):
                    out[key] = {k: v for k, v in value.items() if f"__system/{k}" in metadata}
            elif top and re.fullmatch(r"__.*-id", key):
                if key in metadata:
                    out[key] = value
            elif key.endswith("@odata.navigationLink"):
                if f"{path}/{key.removesuffix('@odata.navigationLink')}" in kept:
                    out[key] = value
            elif (target := f"{path}/{key}") in kept:
                if types.get(target) == "repeat" and isinstance(value, list):
                    out[key] = [walk(v, target, False) for v in value]
                elif types.get(target) == "structure" and isinstance(value, Mapping):
                    out[key] = walk(value, target, False)
                else:
                    out[key] = value
        return out

    return walk(row, base_odata, True)


# -- precomputed row JSON --------------------------------------------------------------------------


def split_row_json(row: Mapping[str, Any]) -> tuple[str, str]:
    """The row's JSON split around its `__system` value, so a store can keep the (immutable)
    parts and splice in a fresh `__system` (reviews, deletes, attachments change it):
    `join_row_json(head, system, tail) == to_json(row with that system)`."""
    before: list[str] = []
    after: list[str] = []
    seen = False
    for key, value in row.items():
        if key == "__system":
            seen = True
            continue
        (after if seen else before).append(f"{to_json(key)}:{to_json(value)}")
    if not seen:
        raise ValueError("row has no __system")
    head = "{" + "".join(p + "," for p in before) + '"__system":'
    tail = "".join("," + p for p in after) + "}"
    return head, tail


def join_row_json(head: str, system: Mapping[str, Any], tail: str) -> str:
    return head + to_json(system) + tail

