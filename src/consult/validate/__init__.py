"""Validation of pulled submissions: GX suites generated from each FormSchema plus domain rules.

`validate_records(schema, records, context)` judges one page on its own. Duplicate
interviews are judged form-wide instead, after each sync pass, over every live submission:
`duplicate_rules(schema)` gives each `DuplicateRule`, whose `columns` the caller reads from
the database for `DuplicateRule.across_form` (`consult.warehouse.load.recheck_duplicates`
does it all). `write_data_docs(reports_dir)` renders the sync's GX Data Docs once at its end.
pandas and Great Expectations load on first use of `validate_records`, `rule_inventory` and
`write_data_docs`, not on import of this package; `consult.validate.duplicates` never loads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .report import Failure, Status, ValidationContext, ValidationReport

if TYPE_CHECKING:
    from .docs import write_data_docs
    from .duplicates import DuplicateRule, duplicate_rules
    from .run import rule_inventory, validate_records

_LAZY = {
    "validate_records": "run", "rule_inventory": "run",
    "DuplicateRule": "duplicates", "duplicate_rules": "duplicates",
    "write_data_docs": "docs",
}

__all__ = ["DuplicateRule", "Failure", "Status", "ValidationContext", "ValidationReport", "duplicate_rules",
           "rule_inventory", "validate_records", "write_data_docs"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
