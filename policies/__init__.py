"""Veil release policies: which attested workload may receive which key.

    policy = load_policy(Path("tdx-production.yaml"), references=[Path("refs/")])
    decision = evaluate(policy, claims, at=now, resource="models/llama-70b/dek")
    decision.allowed, decision.checks   # every check: code, passed, expected, actual, message

Depends only on `attestation` (its Claims model). Pure: no clock, no network.
"""

from .compile import CompiledPolicy, compile_policy
from .decision import AlternativeResult, CheckResult, Decision
from .errors import PolicyError, PolicyLoadError, Problem
from .evaluate import evaluate
from .loader import lint, load_policy, load_references

__all__ = [
    "AlternativeResult", "CheckResult", "CompiledPolicy", "Decision", "PolicyError", "PolicyLoadError",
    "Problem", "compile_policy", "evaluate", "lint", "load_policy", "load_references",
]
