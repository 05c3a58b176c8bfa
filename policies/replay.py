"""The attestation record the broker logs, and replaying a log under other policies.

The key broker appends one record per attestation, allowed or denied, as one
line of JSON (docs/policies.md, "The replay record"). `veil policy diff`
re-evaluates every record under two policies and lists the decisions that
would change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from attestation.claims import Claims

from .compile import CompiledPolicy
from .decision import Decision
from .errors import PolicyLoadError, Problem
from .evaluate import evaluate

RECORD_VERSION = 1


class AttestationRecord(BaseModel):
    """One attestation as the broker decided it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = RECORD_VERSION
    time: AwareDatetime                       # when the broker decided (the evaluation's `at`)
    resource: str | None                      # the resource asked for (None: attestation only)
    tee: Literal["tdx", "snp"]
    verified: bool                            # did the evidence verify
    claims: Claims | None                     # the verified claims; None when verification failed
    evidence_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    decision: Literal["allow", "deny"]
    reasons: tuple[str, ...] = ()             # codes of the failed checks (or of verification errors)
    policy_name: str
    policy_digest: str = Field(pattern=r"^[0-9a-f]{64}$")

    @classmethod
    def from_decision(cls, decision: Decision, claims: Claims, *, time: datetime, resource: str | None,
                      evidence_sha256: str) -> "AttestationRecord":
        return cls(time=time, resource=resource, tee=claims.tee, verified=True, claims=claims,
                   evidence_sha256=evidence_sha256, decision="allow" if decision.allowed else "deny",
                   reasons=tuple(c.code for c in decision.failures), policy_name=decision.policy_name,
                   policy_digest=decision.policy_digest)


def read_log(path: Path) -> Iterator[tuple[int, AttestationRecord]]:
    """(line number, record) for each non-empty line; PolicyLoadError naming the first bad line."""
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError as exc:
        raise PolicyLoadError([Problem(str(path), 0, 0, "", f"cannot read: {exc.strerror}")]) from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, AttestationRecord.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as exc:
                first = str(exc).splitlines()[0] if isinstance(exc, json.JSONDecodeError) else \
                    "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
                raise PolicyLoadError([Problem(str(path), number, 1, "", f"not an attestation record: {first}")]) \
                    from None


@dataclass(frozen=True)
class Change:
    """A record whose decision differs between two policies."""

    line: int
    record: AttestationRecord
    old: Decision | None          # None: evidence did not verify (denied under any policy)
    new: Decision | None

    @property
    def summary(self) -> str:
        def word(d: Decision | None) -> str:
            return "allow" if d and d.allowed else "deny"
        return f"{word(self.old)} -> {word(self.new)}"


def decide(policy: CompiledPolicy, record: AttestationRecord) -> Decision | None:
    if not record.verified or record.claims is None:
        return None
    return evaluate(policy, record.claims, at=record.time, resource=record.resource)


def diff(old: CompiledPolicy, new: CompiledPolicy, records) -> list[Change]:
    """Every record whose allow/deny outcome differs between `old` and `new`."""
    changes = []
    for line, record in records:
        before, after = decide(old, record), decide(new, record)
        if bool(before and before.allowed) != bool(after and after.allowed):
            changes.append(Change(line, record, before, after))
    return changes
