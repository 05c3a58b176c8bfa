"""What an evaluation returns: every check, with expected and actual values."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One rule applied to one claim.

    `waived` marks a check that passes only because the policy (or a field's
    documented default) accepts anything here: `any`, no floor, debug allowed.
    """

    code: str
    passed: bool
    expected: str
    actual: str
    message: str = ""
    waived: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AlternativeResult:
    """The checks of one platform alternative."""

    index: int
    name: str | None
    tee: str
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def to_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "tee": self.tee, "passed": self.passed,
                "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True, slots=True)
class Decision:
    """Allowed only when one platform alternative and every policy-level check passed.

    `checks` holds the policy-level checks and those of the alternative that
    passed (`platform`) or, on a denial, of the one that came closest
    (`closest`); `alternatives` holds every alternative's checks.
    """

    allowed: bool
    checks: tuple[CheckResult, ...]
    policy_name: str
    policy_digest: str
    platform: int | None
    closest: int | None
    alternatives: tuple[AlternativeResult, ...] = ()

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def reason(self) -> CheckResult | None:
        """The first failed check shown, None when allowed."""
        failures = self.failures
        return failures[0] if failures else None

    def to_dict(self) -> dict:
        return {"allowed": self.allowed, "decision": "allow" if self.allowed else "deny",
                "policy": self.policy_name, "policy_digest": self.policy_digest,
                "platform": self.platform, "closest": self.closest,
                "reasons": [c.code for c in self.failures],
                "checks": [c.to_dict() for c in self.checks],
                "alternatives": [a.to_dict() for a in self.alternatives]}
