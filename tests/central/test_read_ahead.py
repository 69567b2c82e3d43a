"""`read_ahead`: the sync's pages in order, errors where they happened, no reader left behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from consult.central import CentralError, read_ahead


def _readers() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "odata-read-ahead")


def test_pages_come_in_order_and_the_next_is_fetched_while_the_caller_works() -> None:
    fetched: list[int] = []

    def pages() -> Iterator[int]:
        for n in range(5):
            time.sleep(0.03)
            fetched.append(n)
            yield n

    got = []
    started = time.perf_counter()
    for page in read_ahead(pages()):
        got.append(page)
        time.sleep(0.06)
        if page < 4:
            assert page + 1 in fetched, "the next page is fetched during the caller's work"
    assert got == [0, 1, 2, 3, 4]
    assert time.perf_counter() - started < 0.42, "fetching and working overlap (serial: 0.45 s)"
    assert _readers() == 0


def test_an_error_comes_out_after_the_pages_before_it() -> None:
    def pages() -> Iterator[int]:
        yield 0
        yield 1
        raise CentralError("GET", "http://127.0.0.1/x", 503, "Service Unavailable")

    got = []
    with pytest.raises(CentralError, match="503"):
        for page in read_ahead(pages()):
            got.append(page)
    assert got == [0, 1]
    assert _readers() == 0


def test_leaving_early_closes_the_source_and_stops_the_reader() -> None:
    closed = threading.Event()

    def pages() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    for page in read_ahead(pages()):
        if page == 2:
            break
    assert closed.wait(1), "the source generator was closed"
    assert _readers() == 0


def test_the_caller_is_told_before_it_waits_for_a_page_that_has_not_arrived() -> None:
    """The sync commits then: it must not hold SQLite's write lock while Central is slow."""
    slow = {2}
    waits: list[int] = []
    got: list[int] = []

    def pages() -> Iterator[int]:
        for n in range(4):
            if n in slow:
                time.sleep(0.5)
            yield n

    for page in read_ahead(pages(), before_waiting=lambda: waits.append(len(got))):
        got.append(page)
        time.sleep(0.1)  # the caller's work: long enough for pages 1 and 3 to be ready
    assert got == [0, 1, 2, 3]
    assert 2 in waits, "page 2 took 0.5 s: the caller was told before waiting for it"
    assert 1 not in waits and 3 not in waits, waits
