"""Analysts' data: labelled Stata, SPSS, Parquet, CSV and Excel exports and a bilingual codebook."""

from .names import Format, variable_names
from .run import export_forms, write_codebooks
from .tables import ExportColumn, ExportTable, Kind, read_form

__all__ = ["ExportColumn", "ExportTable", "Format", "Kind", "export_forms", "read_form", "variable_names",
           "write_codebooks"]
