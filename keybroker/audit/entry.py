"""One attestation-log entry, and the exact bytes its Merkle leaf commits to.

The leaf data is the RFC 8785 (JCS) serialization of the entry's JSON form,
`seq` included, so an entry cannot be moved to another position without its
leaf hash changing. Byte fields are hex (digests) or standard base64 (evidence);
times are UTC ISO-8601 with a "Z".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from attestation.jcs import canonical_json

from .merkle import leaf_hash

Kind = Literal["attestation", "release", "denial", "admin", "calls"]
TeeName = Literal["tdx", "snp", "nvidia", "composite"]
Decision = Literal["allow", "deny"]
_HEX64 = r"^[0-9a-f]{64}$"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def claims_digest(claims: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the JCS form of a claims object (e.g. `Claims.model_dump(mode="json")`)."""
    return sha256_hex(canonical_json(dict(claims)))


_DIGESTS_JUST_COMPUTED = {"digests": "computed"}     # validation context of LogEntry.record (identity-checked)


class Reason(BaseModel):
    """One check behind a decision, as policies and verifiers report it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    message: str
    expected: str | None = None
    actual: str | None = None


class LogEntry(BaseModel):
    """An attestation, release, denial or admin action, as appended to the log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int | None = Field(default=None, ge=0)       # assigned by AuditLog.append
    time: datetime
    kind: Kind
    tenant: str | None = None
    session_id: str | None = None
    tee: TeeName | None = None
    evidence_b64: str | None = None                   # evidence exactly as received
    evidence_digest: str | None = Field(default=None, pattern=_HEX64)
    claims: dict[str, Any] | None = None
    claims_digest: str | None = Field(default=None, pattern=_HEX64)
    policy_id: str | None = None
    policy_version: int | str | None = None
    policy_digest: str | None = None
    decision: Decision | None = None
    reasons: tuple[Reason, ...] = ()
    resource: str | None = None
    actor: str | None = None
    action: str | None = None
    verification_time: datetime | None = None         # the `at` verification used
    calls: dict[str, Any] | None = None               # kind "calls": an enclave's call-audit batch (audit.calls)

    @field_validator("time", "verification_time")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (UTC)")
        return value.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> LogEntry:
        if self.kind == "release" and self.decision != "allow":
            raise ValueError("a release entry has decision 'allow'")
        if self.kind == "denial" and self.decision != "deny":
            raise ValueError("a denial entry has decision 'deny'")
        if self.kind == "admin" and not (self.actor and self.action):
            raise ValueError("an admin entry names its actor and action")
        if (self.kind == "calls") != (self.calls is not None):
            raise ValueError("a calls entry, and only a calls entry, carries a call-audit batch")
        if info.context is _DIGESTS_JUST_COMPUTED:        # record(): they were derived from these very fields
            return self
        if self.evidence_b64 is not None:
            if self.evidence_digest != sha256_hex(self.evidence()):
                raise ValueError("evidence_digest is not the SHA-256 of the evidence")
        if self.claims is not None and self.claims_digest != claims_digest(self.claims):
            raise ValueError("claims_digest is not the SHA-256 of the claims' JCS form")
        return self

    @classmethod
    def record(cls, *, evidence: bytes | None = None, claims: Mapping[str, Any] | None = None,
               **fields: Any) -> LogEntry:
        """Build an entry from raw evidence bytes and a claims object, computing both digests."""
        return cls._record(evidence, claims, fields)[0]

    @classmethod
    def prepare_record(cls, *, evidence: bytes | None = None, claims: Mapping[str, Any] | None = None,
                       claims_jcs: bytes | None = None, **fields: Any) -> tuple[LogEntry, PreparedEntry]:
        """`record(...)` and its `prepare()`, the claims canonicalised once for both their digest and the
        entry's bytes. `claims_jcs`, where the caller has it, is `canonical_json(claims)` already made (the
        broker makes it once per attestation, for the attestation's entry and its releases')."""
        entry, claims_jcs = cls._record(evidence, claims, fields, claims_jcs)
        return entry, entry._prepare({} if claims_jcs is None else {"claims": claims_jcs})

    @classmethod
    def _record(cls, evidence: bytes | None, claims: Mapping[str, Any] | None, fields: dict[str, Any],
                claims_jcs: bytes | None = None) -> tuple[LogEntry, bytes | None]:
        if evidence is not None:
            fields.update(evidence_b64=base64.b64encode(evidence).decode(), evidence_digest=sha256_hex(evidence))
        if claims is None:
            return cls.model_validate(fields, context=_DIGESTS_JUST_COMPUTED), None
        claims_jcs = claims_jcs or canonical_json(dict(claims))
        fields.update(claims=dict(claims), claims_digest=sha256_hex(claims_jcs))
        return cls.model_validate(fields, context=_DIGESTS_JUST_COMPUTED), claims_jcs

    def evidence(self) -> bytes:
        """The raw evidence bytes (empty when none was stored)."""
        if self.evidence_b64 is None:
            return b""
        try:
            return base64.b64decode(self.evidence_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("evidence_b64 is not standard base64") from None

    def document(self) -> dict[str, Any]:
        """The entry's JSON form (what is canonicalised and exported). `calls` appears only when set, so
        the entries of the four original kinds keep their canonical bytes."""
        return self.model_dump(mode="json", exclude={"calls"} if self.calls is None else None)

    def canonical_bytes(self) -> bytes:
        """Leaf data: RFC 8785 bytes of the JSON form. The entry must have its seq."""
        if self.seq is None:
            raise ValueError("an entry gets its seq when it is appended; it has none yet")
        return canonical_json(self.document())

    def prepare(self) -> PreparedEntry:
        """The canonical bytes of this entry split around its (not yet known) seq.

        RFC 8785 writes an object's members sorted by name, so the top-level object
        is `{` + sorted `"name":value` members joined by `,` + `}`; the seq member's
        value is the only part that depends on where the entry lands in the log.
        Everything expensive (canonicalising claims and evidence) happens here,
        before the append takes the log's write lock (`prepare_record` canonicalises
        the claims once for their digest and for these bytes).
        """
        return self._prepare({})

    def _prepare(self, known: dict[str, bytes]) -> PreparedEntry:
        """prepare(), with the canonical bytes of some members' values already known."""
        if self.seq is not None:
            raise ValueError("this entry already has a seq")
        doc = self.model_dump(mode="json", exclude={"seq", *known, *(() if self.calls is not None else ("calls",))})
        return PreparedEntry(*_canonical_around(doc, known, "seq"))

    @classmethod
    def from_canonical(cls, data: bytes) -> LogEntry:
        """Parse leaf data back into an entry; raises ValueError if it is not canonical."""
        entry = cls.model_validate(json.loads(data))
        if entry.canonical_bytes() != data:
            raise ValueError("entry bytes are not in canonical (RFC 8785) form")
        return entry


def _canonical_around(doc: dict[str, Any], known: dict[str, bytes], hole: str) -> tuple[bytes, bytes]:
    """The RFC 8785 bytes of the object with `doc`'s members, the members whose canonical values `known` gives
    and the member `hole`, split where `hole`'s value goes. Member names must be ASCII (sorted as UTF-16)."""
    parts: list[bytes | None] = []            # the members in order, runs of `doc`'s members as one part
    run: dict[str, Any] = {}
    for name in sorted([*doc, *known, hole]):
        if name in doc:
            run[name] = doc[name]
            continue
        if run:
            parts.append(canonical_json(run)[1:-1])
            run = {}
        parts.append(None if name == hole else canonical_json(name) + b":" + known[name])
    if run:
        parts.append(canonical_json(run)[1:-1])
    at = parts.index(None)
    head = b"{" + b"".join(p + b"," for p in parts[:at]) + canonical_json(hole) + b":"
    tail = b"".join(b"," + p for p in parts[at + 1:]) + b"}"
    return head, tail


@dataclass(frozen=True, slots=True)
class PreparedEntry:
    """An entry's canonical bytes around its seq: `head + str(seq) + tail` (LogEntry.prepare)."""

    head: bytes
    tail: bytes

    def numbered(self, seq: int) -> bytes:
        if seq < 0:
            raise ValueError("seq is not negative")
        return self.head + str(int(seq)).encode() + self.tail


def entry_leaf_hash(entry: LogEntry) -> bytes:
    """RFC 9162 leaf hash of the entry's canonical bytes."""
    return leaf_hash(entry.canonical_bytes())
