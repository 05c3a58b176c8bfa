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
    def compile(self, text: str, *, source: str) -> Any:
        """A compiled policy with `.digest` and `.name`; Unprocessable listing every problem."""
        ...

    def evaluate(self, policy: Any, claims: Claims, *, at: datetime, resource: str) -> Decision:
        ...


class VeilPolicies:
    """The `policies` package: loader checks (with positions), CEL compile, evaluator."""

    def compile(self, text: str, *, source: str) -> Any:
        from policies.compile import compile_policy
        from policies.errors import PolicyLoadError
        from policies.loader import Source, check_policy
        from policies.yamlpos import YamlProblem, load_located

        if len(text.encode()) > MAX_POLICY_BYTES:
            raise Unprocessable("policy.too_large", f"policy document is larger than {MAX_POLICY_BYTES} bytes")
        try:
            document, problems = check_policy(Source(source, load_located(text)), {})
        except YamlProblem as exc:
            raise Unprocessable("policy.syntax", f"{source}:{exc.line}:{exc.column}: {exc.message}") from None
        except PolicyLoadError as exc:
            raise Unprocessable("policy.invalid", str(exc)) from None
        errors = [p for p in problems if getattr(p, "severity", "error") == "error"]
        if document is None or errors:
            raise Unprocessable("policy.invalid", "; ".join(_problem_text(p) for p in errors) or "invalid policy",
                                tuple(Reason(p.path or "policy", p.message) for p in errors))
        return compile_policy(document, {}, source=source)

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

    def get(self, digest: str, text: str, source: str) -> Any:
        with self._lock:
            hit = self._cache.get(digest)
        if hit is None:
            hit = self.engine.compile(text, source=source)
            with self._lock:
                self._cache[digest] = hit
        return hit


def failed_reasons(decision: Decision) -> tuple[Reason, ...]:
    return tuple(Reason(c.code, c.message or f"{c.code} failed", str(c.expected), str(c.actual))
                 for c in decision.checks if not c.passed)
