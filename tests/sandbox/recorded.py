"""The exchanges recorded from a real ODK Central (tests/central/contract), for the sandbox's tests."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONTRACT = Path(os.environ.get("CENTRAL_CONTRACT_DIR", HERE.parent / "central" / "contract"))
if not (CONTRACT / "exchanges").is_dir():
    raise FileNotFoundError(
        f"the recorded Central exchanges are missing from {CONTRACT}: they belong to the repository "
        "(tests/central/contract); restore them with git or set CENTRAL_CONTRACT_DIR"
    )


@cache
def exchange(prefix: str) -> dict[str, Any]:
    """The one recorded exchange whose file name starts with `prefix` (`"26-11"`)."""
    (path,) = CONTRACT.glob(f"exchanges/{prefix}-*.json")
    return json.loads(path.read_text(encoding="utf-8"))


def body(prefix: str) -> Any:
    return json.loads(exchange(prefix)["response"]["body"])


def submitted_xml(prefix: str) -> str:
    """The submission XML of a recorded OpenRosa submission."""
    return exchange(prefix)["request"]["multipart_parts"][0]["text"]


def form_xml(name: str) -> str:
    return (CONTRACT / "forms" / f"{name}.xml").read_text(encoding="utf-8")
