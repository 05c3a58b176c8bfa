"""Release policies as the broker sees them: compile a stored document, evaluate it, cache by digest.

The broker depends on this small protocol, not on the policy language; the
default engine adapts the `policies` package (YAML/JSON `ReleasePolicy`
documents). A document is compiled once per digest: versions are immutable, so
every replica's cache agrees.
"""

from __future__ import annotations

import importlib
import threading
from datetime import datetime
from typing import Any, Protocol

from attestation.claims import Claims

from .errors import Reason, Unprocessable

MAX_POLICY_BYTES = 1 << 20


class CheckResult(Protocol):
    code: str
    passed: bool
    expected: str
    actual: str
    message: str


class Decision(Protocol):
    allowed: bool
    checks: tuple[CheckResult, ...]
    policy_digest: str


class PolicyEngine(Protocol):
    def compile(self, text: str, *, source: str, references: str | None = None) -> Any:
        """A compiled policy with `.digest` and `.name`; Unprocessable listing every problem.
        `references`: a document of the reference values the policy names (`{ref: …}`)."""
        ...

    def evaluate(self, policy: Any, claims: Claims, *, at: datetime, resource: str) -> Decision:
        ...


class VeilPolicies:
    """The `policies` package: loader checks (with positions), CEL compile, evaluator."""

    def compile(self, text: str, *, source: str, references: str | None = None) -> Any:
        from policies.compile import compile_policy
        from policies.errors import PolicyLoadError
        from policies.loader import Source, check_policy, reference_sets
        from policies.yamlpos import YamlProblem, load_located

        if len(text.encode()) + len((references or "").encode()) > MAX_POLICY_BYTES:
            raise Unprocessable("policy.too_large", f"policy and references are larger than {MAX_POLICY_BYTES} bytes")
        try:
            sets, problems = ({}, []) if references is None else \
                reference_sets(Source(f"{source} references", load_located(references)))
            if not problems:
                document, problems = check_policy(Source(source, load_located(text)), sets)
        except YamlProblem as exc:
            raise Unprocessable("policy.syntax", f"{source}:{exc.line}:{exc.column}: {exc.message}") from None
        except PolicyLoadError as exc:
            raise Unprocessable("policy.invalid", str(exc)) from None
        errors = [p for p in problems if getattr(p, "severity", "error") == "error"]
        if errors or document is None:
            raise Unprocessable("policy.invalid", "; ".join(_problem_text(p) for p in errors) or "invalid policy",
                                tuple(Reason(p.path or "policy", p.message) for p in errors))
        return compile_policy(document, sets, source=source)

    def evaluate(self, policy: Any, claims: Claims, *, at: datetime, resource: str) -> Decision:
        from policies.evaluate import evaluate
        return evaluate(policy, claims, at=at, resource=resource)


def _problem_text(problem: Any) -> str:
    return f"{problem.file}:{problem.line}:{problem.column}: {problem.path}: {problem.message}"


def default_engine() -> PolicyEngine:
    return VeilPolicies()


def load_engine(spec: str) -> PolicyEngine:
    """`module:attribute` naming a zero-argument factory (settings.policy_engine)."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)()


class CompiledCache:
    """Compiled policies by digest (stored versions never change)."""

    def __init__(self, engine: PolicyEngine) -> None:
        self.engine = engine
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, text: str, source: str, references: str | None = None) -> Any:
        with self._lock:
            hit = self._cache.get(digest)
        if hit is None:
            hit = self.engine.compile(text, source=source, references=references)
            with self._lock:
                self._cache[digest] = hit
        return hit


def failed_reasons(decision: Decision) -> tuple[Reason, ...]:
    return tuple(Reason(c.code, c.message or f"{c.code} failed", str(c.expected), str(c.actual))
                 for c in decision.checks if not c.passed)
