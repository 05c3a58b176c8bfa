"""Errors raised by policies/.

PolicyError
└── PolicyLoadError   a policy or reference-values document is invalid: every
                      problem, each with file, line, column and field path
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a document, located in its source."""

    file: str
    line: int          # 1-based; 0 when the problem has no position (e.g. an unreadable file)
    column: int        # 1-based
    path: str          # dotted field path, e.g. "spec.platforms[0].tdx.mrtd"
    message: str
    severity: str = "error"   # "error" or "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        field = f" {self.path}:" if self.path else ""
        return f"{where}: {self.severity}:{field} {self.message}"


class PolicyError(Exception):
    """Base of every error raised by policies/."""


class PolicyLoadError(PolicyError):
    """A document did not load; `problems` lists every error found (warnings too)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(f"{len(errors)} problem(s); first: {errors[0] if errors else problems[0]}")

    @property
    def message(self) -> str:
        return str(self)
