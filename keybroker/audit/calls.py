"""Per-call audit records of an enclave, as the broker ingests them into the attestation log.

The enclave (`enclave.callaudit`) keeps one `CallRecord` per inference call —
time, caller, method, model, token counts, latency, status; never any text —
in a hash chain signed with its attested key:

    hash      = SHA-256(prev_hash ‖ JCS(record))          (prev_hash of seq 0: 32 zero bytes)
    signature = ECDSA-SHA256(key, b"veil-callaudit-v1\\0" ‖ hash)   (DER, base64)

It ships the chain to the broker in batches (`BATCH_TYPE`): the key's JWK, the
seq range, the hash it continues from, the head and the entries. The format and
its verification live here because the broker checks them (keybroker does not
depend on the enclave); the enclave imports them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

GENESIS = bytes(32)
SIGNING_CONTEXT = b"veil-callaudit-v1\0"
BATCH_TYPE = "veil.enclave.callaudit.batch/v1"
_HEX64 = r"^[0-9a-f]{64}$"


class CallRecord(BaseModel):
    """What one call leaves in the audit: counts and outcome, never text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=0)
    time: dt.datetime
    caller: str = Field(min_length=1, max_length=256)
    method: str = Field(min_length=1, max_length=256)
    model: str = Field(max_length=256)
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    latency_ms: float = Field(ge=0)
    status: str = Field(pattern=r"^[A-Z_]+$")   # grpc.StatusCode name: OK, UNAUTHENTICATED, …

    @field_validator("time")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone (UTC)")
        return value.astimezone(dt.timezone.utc)

    def canonical_bytes(self) -> bytes:
        return rfc8785.dumps(self.model_dump(mode="json"))


class ChainEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    record: CallRecord
    prev_hash: str = Field(pattern=_HEX64)
    hash: str = Field(pattern=_HEX64)
    signature: str                                   # base64 DER ECDSA over SIGNING_CONTEXT ‖ hash

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def entry_hash(prev_hash: bytes, record: CallRecord) -> bytes:
    return hashlib.sha256(prev_hash + record.canonical_bytes()).digest()


# --- verification ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    first_bad_seq: int | None = None
    reason: str = ""
    head: str = ""


def verify_chain(entries: Sequence[ChainEntry | dict[str, Any]], public_key: ec.EllipticCurvePublicKey, *,
                 prev_hash: str = GENESIS.hex(), first_seq: int = 0,
                 expected_head: str | None = None) -> ChainCheck:
    """Check seq continuity, hash links and every signature; report the first bad seq.

    A batch that does not start the chain passes its predecessor's hash and seq
    (`prev_hash`, `first_seq`). The reported seq is the position where the chain
    stops being the one the key signed (for a deleted entry: the missing seq).
    """
    prev = prev_hash
    for position, raw in enumerate(entries):
        expected_seq = first_seq + position
        try:
            entry = raw if isinstance(raw, ChainEntry) else ChainEntry.model_validate(raw)
        except ValidationError as exc:
            return ChainCheck(False, expected_seq, f"entry is malformed: {exc.errors()[0]['msg']}")
        if entry.record.seq != expected_seq:
            return ChainCheck(False, expected_seq, f"seq {entry.record.seq} where {expected_seq} was expected")
        if entry.prev_hash != prev:
            return ChainCheck(False, expected_seq, "prev_hash does not link to the previous entry")
        digest = entry_hash(bytes.fromhex(prev), entry.record)
        if digest.hex() != entry.hash:
            return ChainCheck(False, expected_seq, "hash does not match the record")
        try:
            public_key.verify(base64.b64decode(entry.signature, validate=True), SIGNING_CONTEXT + digest,
                              ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            return ChainCheck(False, expected_seq, "signature does not verify under the enclave key")
        prev = entry.hash
    if expected_head is not None and prev != expected_head:
        return ChainCheck(False, first_seq + len(entries), "chain ends before the expected head (truncated)",
                          prev)
    return ChainCheck(True, head=prev)


# --- export ---------------------------------------------------------------------------------------------


def export_jsonl(entries: Iterable[ChainEntry]) -> str:
    """One JCS-encoded entry per line."""
    return "".join(rfc8785.dumps(e.document()).decode() + "\n" for e in entries)


def parse_jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]



def batch_document(entries: Sequence[ChainEntry], jwk: dict[str, Any]) -> dict[str, Any]:
    """A batch for the broker: the signing key's public JWK, the seq range, the hash it continues from,
    its head and head signature, the batch digest (SHA-256 of the JSON-lines export) and the entries."""
    if not entries:
        raise ValueError("an empty batch")
    lines = export_jsonl(entries)
    return {
        "type": BATCH_TYPE,
        "tee_pubkey_jwk": dict(jwk),
        "first_seq": entries[0].record.seq,
        "last_seq": entries[-1].record.seq,
        "prev_hash": entries[0].prev_hash,
        "head_hash": entries[-1].hash,
        "head_signature": entries[-1].signature,
        "batch_digest": hashlib.sha256(lines.encode()).hexdigest(),
        "entries": [e.document() for e in entries],
    }
