"""One sync of a form at a time: a second is turned away, and a killed holder frees the form."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy.engine import Engine

from consult.warehouse.locks import FormBusy, form_lock
from consult.warehouse.tables import SYSTEM_TABLES

HOLDER = """
import sys, time
from consult.warehouse.database import create_engine_for
from consult.warehouse.locks import form_lock
engine = create_engine_for(sys.argv[1])
with form_lock(engine, 1, "province_consultation"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_sync_of_the_same_form_is_turned_away_until_the_holder_dies(engine: Engine, db_url: str):
    from consult.warehouse.tables import system

    system.create_all(engine, tables=list(SYSTEM_TABLES))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db_url], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(FormBusy, match="province_consultation"):
            with form_lock(engine, 1, "province_consultation"):
                pass
        with form_lock(engine, 1, "donor_consultation"), form_lock(engine, 2, "province_consultation"):
            pass  # other forms and other projects are free
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            with form_lock(engine, 1, "province_consultation"):
                break
        except FormBusy:
            assert time.monotonic() < deadline, "a killed sync must not keep its form locked"
            time.sleep(0.1)
