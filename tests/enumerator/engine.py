"""Python side of the headless ODK enumerator (see harness.mjs for the protocol).

Tests fill forms with ODK's own XForms engine instead of hand-writing submission
XML, so relevance, constraints, choice filters and the payload match what a real
ODK client would send. One Node process serves many requests; each request is a
fresh interview.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node") or "/usr/bin/node"

Step = dict[str, Any]


def answer(ref: str, value: str | int | float | list[str] | None) -> Step:
    """A step that answers one question; a list answers a select_multiple, None clears."""
    return {"answer": ref, "value": value}


def add_repeat(ref: str, count: int = 1) -> Step:
    """A step that appends `count` instances to the repeat at `ref` (no [n] on the last part)."""
    return {"add_repeat": ref, "count": count}


def remove_repeat(ref: str, index: int | None = None) -> Step:
    """A step that removes a repeat instance: `ref` with [n], or the repeat's ref and a 0-based index."""
    step: Step = {"remove_repeat": ref}
    if index is not None:
        step["index"] = index
    return step


class EnumeratorError(RuntimeError):
    """The harness refused a request (bad ref, unavailable choice, ...); the message says which step."""

    def __init__(self, message: str, response: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.response = response


@dataclass(frozen=True)
class FillResult:
    """One filled interview: every node's state and the engine's submission payload."""

    nodes: list[dict[str, Any]]
    payload: dict[str, Any]
    languages: list[str] = field(default_factory=list)
    language: str | None = None

    def node(self, ref: str) -> dict[str, Any]:
        """The node at `ref`; KeyError names close refs because a typo'd ref is the usual cause."""
        for node in self.nodes:
            if node["ref"] == ref:
                return node
        near = [n["ref"] for n in self.nodes if ref.rsplit("/", 1)[-1] in n["ref"]][:5]
        raise KeyError(f"no node {ref!r} in result; similar: {near}")

    def value(self, ref: str) -> Any:
        return self.node(ref)["value"]

    def relevant(self, ref: str) -> bool:
        return bool(self.node(ref)["relevant"])

    def violation(self, ref: str) -> dict[str, Any] | None:
        return self.node(ref)["violation"]

    def options(self, ref: str) -> list[str]:
        """Choice values offered right now (after choice_filter), in form order."""
        return list(self.node(ref)["options"])

    def label(self, ref: str) -> str | None:
        return self.node(ref)["label"]

    @property
    def payload_ok(self) -> bool:
        """True when the engine would submit: no required/constraint violation anywhere relevant."""
        return self.payload["status"] == "ready"

    @property
    def payload_xml(self) -> str | None:
        """Submission XML, only when `payload_ok`; see `draft_xml` for the instance regardless."""
        return self.payload["xml"]

    @property
    def draft_xml(self) -> str | None:
        return self.payload["draft_xml"]

    @property
    def violations(self) -> list[dict[str, Any]]:
        return list(self.payload["violations"])


class EnumeratorEngine:
    """A running `node harness.mjs`; use as a context manager or call close()."""

    def __init__(self, timeout: float = 60.0) -> None:
        if not (HERE / "node_modules" / "@getodk" / "xforms-engine").is_dir():
            raise RuntimeError(
                "tests/enumerator/node_modules is missing: run `npm ci --prefix tests/enumerator`"
            )
        self.timeout = timeout
        self._next_id = 0
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=200)
        self._start()

    def _start(self) -> None:
        self._lines = queue.Queue()
        self._proc = subprocess.Popen(
            [NODE, "harness.mjs"],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        # Reader threads: stdout lines go to a queue so reads can time out, and stderr is
        # drained continuously so a chatty engine can never block on a full pipe.
        threading.Thread(target=self._pump_stdout, args=(self._proc, self._lines), daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(self._proc,), daemon=True).start()

    @staticmethod
    def _pump_stdout(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    def _pump_stderr(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._stderr.append(line.rstrip("\n"))

    def _stderr_tail(self) -> str:
        return "\n".join(list(self._stderr)[-20:])

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send one raw request and return the raw response (ok or not)."""
        if self._proc is None or self._proc.poll() is not None:
            self._start()  # a timed-out or crashed harness is replaced, not reused
        assert self._proc is not None and self._proc.stdin is not None
        self._next_id += 1
        body = {**body, "id": self._next_id}
        self._proc.stdin.write(json.dumps(body, ensure_ascii=False) + "\n")
        self._proc.stdin.flush()
        try:
            line = self._lines.get(timeout=self.timeout)
        except queue.Empty:
            self._kill()
            raise TimeoutError(
                f"enumerator gave no answer in {self.timeout}s; stderr:\n{self._stderr_tail()}"
            ) from None
        if line is None:
            raise EnumeratorError(f"enumerator process exited; stderr:\n{self._stderr_tail()}")
        response: dict[str, Any] = json.loads(line)
        if response.get("id") != body["id"]:
            self._kill()
            raise EnumeratorError(f"response id {response.get('id')} != request id {body['id']}")
        return response

    def fill(
        self,
        xform: str | os.PathLike[str],
        steps: list[Step] | None = None,
        *,
        media_dir: str | os.PathLike[str] | None = None,
        language: str | None = None,
    ) -> FillResult:
        """Start a fresh interview of `xform`, apply `steps` in order, return the final state."""
        body: dict[str, Any] = {
            "xform": str(Path(xform).resolve()),
            "media_dir": None if media_dir is None else str(Path(media_dir).resolve()),
            "steps": steps or [],
        }
        if language is not None:
            body["language"] = language
        response = self.request(body)
        if not response.get("ok"):
            raise EnumeratorError(str(response.get("error")), response)
        return FillResult(
            nodes=response["nodes"],
            payload=response["payload"],
            languages=response.get("languages", []),
            language=response.get("language"),
        )

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def close(self) -> None:
        """End the harness: closing stdin lets it finish on its own; kill only if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:  # the harness already died; nothing left to flush
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> EnumeratorEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
