"""OData pages decoded through orjson read exactly as `response.json()` reads them, including
what orjson reads differently or refuses."""

from __future__ import annotations

import json

import pytest
import requests

from consult.central.pull import decode_page
from consult.warehouse.records import raw_json

PAGES = [
    '{"value": [{"__id": "uuid:1", "agency_other": "Sở KH&ĐT Thanh Hoá", "staff_days": 12, "budget": 1.5}]}',
    '{"value": [{"staff_days": 123456789012345678901234567890}]}',  # beyond 64 bits: orjson gives a float
    '{"value": [{"staff_days": -9223372036854775809}]}',
    '{"value": [{"coordinates": [12345678901234567890123, 1]}]}',
    '{"value": [{"staff_days":\n  -123456789012345678901234567890}]}',
    '{"value": [{"__id": "7862224674031516241626c0e86b35cd1626e6b4", "n": 1}]}',  # 19 digits in a hex id
    '{"value": [{"budget": NaN}]}',
    '{"value": [{"respondent_name": "\\ud800"}]}',  # a lone surrogate
    '{"value": [{"budget": 1e400}]}',
    '\ufeff{"value": []}',
    '{"value": [], "@odata.nextLink": "https://central/v1/x?%24skiptoken=abc"}',
]


def _response(text: str, encoding: str | None) -> requests.Response:
    response = requests.Response()
    response._content = text.encode("utf-8")
    response.encoding = encoding
    response.status_code = 200
    return response


@pytest.mark.parametrize("encoding", ["utf-8", None])
@pytest.mark.parametrize("text", PAGES)
def test_a_page_reads_as_requests_reads_it(text: str, encoding: str | None) -> None:
    try:
        expected = _response(text, encoding).json()
    except ValueError:
        with pytest.raises(ValueError):
            decode_page(_response(text, encoding))
        return
    found = decode_page(_response(text, encoding))
    assert repr(found) == repr(expected)


def test_a_cut_off_page_is_an_error() -> None:
    with pytest.raises(ValueError):
        decode_page(_response('{"value": [{"__id": "uuid:1"', "utf-8"))


@pytest.mark.parametrize("text", PAGES)
def test_the_raw_json_kept_of_a_row_holds_what_the_page_held(text: str) -> None:
    """orjson writes a row's raw JSON; NaN, ±Infinity and integers beyond 64 bits, which it would write as
    null or refuse, are written by the standard library as it always wrote them."""
    try:
        rows = _response(text, "utf-8").json()["value"]
    except ValueError:
        return
    for row, decoded in zip(rows, decode_page(_response(text, "utf-8"))["value"], strict=True):
        kept = json.loads(raw_json(decoded), parse_constant=str)
        assert kept == json.loads(json.dumps(row, ensure_ascii=False, sort_keys=True), parse_constant=str)
