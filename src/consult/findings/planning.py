"""Planning practice: whether provinces know the CPRGS and used MPI letter 2215 BKH/TH for the 2005 plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from .frames import frame, share, tally
from .model import Chart, ChartKind, Kind, Section, Table
from .source import Source
from .words import Words

PROVINCE = "province_consultation"
USED = ("fully", "partly")


def planning(src: Source, w: Words) -> Section:
    return Section("planning", w("section.planning"), (cprgs_awareness(src, w), mpi_2215_use(src, w)))


def _most_respondents_first(rows: Sequence[Mapping[str, object]], keys: list[str]) -> pd.DataFrame:
    return frame(rows, keys).sort_values("respondents", ascending=False, kind="stable").reset_index(drop=True)


def cprgs_awareness(src: Source, w: Words) -> Table:
    levels = src.codes(PROVINCE, "cprgs_awareness")
    rows = [{"province": province, "respondents": len(mine), **tally(mine["cprgs_awareness"], levels),
             "well_share": share(int((mine["cprgs_awareness"] == "well").sum()), len(mine))}
            for _, province, mine in src.by_province(PROVINCE, "cprgs_awareness")]
    columns = (w.column("province", Kind.TEXT), w.column("respondents"),
               *(w.column(code, Kind.COUNT, src.label(PROVINCE, "cprgs_awareness", code)) for code in levels),
               w.column("well_share", Kind.SHARE))
    return w.table("cprgs_awareness", columns, _most_respondents_first(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, ("province",), tuple(levels)))


def mpi_2215_use(src: Source, w: Words) -> Table:
    """Of the agencies that received the letter, how far it was used for the 2005 plan."""
    uses = src.codes(PROVINCE, "mpi_2215_used")
    rows, unreached = [], []
    for _, province, mine in src.by_province(PROVINCE, "mpi_2215_received", "mpi_2215_used"):
        received = int((mine["mpi_2215_received"] == "yes").sum())
        if not received:
            unreached.append(str(province))
            continue
        rows.append({"province": province, "respondents": len(mine), "received": received,
                     **tally(mine["mpi_2215_used"], uses),
                     "used_share": share(int(mine["mpi_2215_used"].isin(USED).sum()), received)})
    columns = (w.column("province", Kind.TEXT), w.column("respondents"), w.column("received"),
               *(w.column(code, Kind.COUNT, src.label(PROVINCE, "mpi_2215_used", code)) for code in uses),
               w.column("used_share", Kind.SHARE))
    note = w("mpi_2215_use.note").format(count=len(unreached), provinces=", ".join(unreached)) if unreached else None
    return w.table("mpi_2215_use", columns, _most_respondents_first(rows, [c.key for c in columns]),
                   Chart(ChartKind.BARS, ("province",), tuple(uses)), note=note)
