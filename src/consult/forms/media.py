"""The media files an XForm needs, read from the XForm pyxform wrote.

Whatever column or function an XLSForm uses to name a file (`image::English (en)`,
`select_one_from_file`, `pull_data()`, `instance()`, `csv-external`, `search()`), pyxform
writes it into the XForm as a `jr://` URL or a `search()` appearance, which is also where
ODK Central reads the form's expected attachments from. Reading the XForm therefore finds
every kind, including the ones written in ways this module has never seen.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET

JR_URL = re.compile(r"^\s*jr://(?:images|audio|video|file|file-csv)/([^/]+?)\s*$")
SEARCH = re.compile(r"""search\s*\(\s*(["'])(.*)\)""")
EXTERNAL_ITEMSETS = "itemsets.csv"
"""The file ODK reads `select_one_external` choices from (an `<input query=…>` in the XForm)."""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _search_file(appearance: str) -> str | None:
    """`search('fruits', 'matches', …)` → `fruits.csv`, as Central names the attachment."""
    match = SEARCH.search(appearance)
    if match is None:
        return None
    quote, rest = match.groups()
    try:
        first = next(csv.reader([quote + rest], quotechar=quote, skipinitialspace=True))[0].strip()
    except (csv.Error, StopIteration, IndexError):
        return None
    if not first:
        return None
    return first if first.endswith(".csv") else f"{first}.csv"


def referenced_media(xform: str) -> list[str]:
    """File names (as attachments, without folder) the XForm refers to, in order, each once."""
    root = ET.fromstring(xform)
    found: list[str] = []
    for element in root.iter():
        values = [*element.attrib.values(), element.text or ""]
        for value in values:
            match = JR_URL.match(value)
            if match:
                found.append(match.group(1))
        name = _local(element.tag)
        appearance = element.get("appearance") or ""
        if name in ("select", "select1") and "search" in appearance:
            search_file = _search_file(appearance)
            if search_file:
                found.append(search_file)
        if name == "input" and element.get("query") is not None:
            found.append(EXTERNAL_ITEMSETS)
    return list(dict.fromkeys(found))
