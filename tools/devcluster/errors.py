"""Exceptions that carry enough context to fix a failed ``up`` without digging.

A component failure names the component, says what went wrong, and quotes the
tail of that component's log, because the first question after "it failed" is
always "what did the log say".
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

TAIL_LINES = 30


class DevclusterError(Exception):
    """Anything that stops devcluster from doing its job; the CLI prints it and exits 1."""


class MissingBinaryError(DevclusterError):
    """A required executable is not built or not installed."""


class ComponentError(DevclusterError):
    """A component failed to start, exited, or did not become ready in time."""

    def __init__(self, component: str, problem: str, log_path: Path | None = None) -> None:
        self.component = component
        self.problem = problem
        self.log_path = log_path
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.component}: {self.problem}"
        if self.log_path is None:
            return text
        text += f"\n  log: {self.log_path}"
        tail = log_tail(self.log_path)
        if tail:
            text += f"\n---- last {TAIL_LINES} lines of {self.log_path} ----\n{tail}\n----"
        else:
            text += " (empty or missing)"
        return text


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file, or "" when it is missing."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip("\n")
    except FileNotFoundError:
        return ""
