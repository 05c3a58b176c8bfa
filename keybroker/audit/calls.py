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

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from attestation.jcs import canonical_json

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
        return canonical_json(self.model_dump(mode="json"))


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
    return "".join(canonical_json(e.document()).decode() + "\n" for e in entries)


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


class BatchRejected(ValueError):
    """A batch the broker does not append: malformed or badly signed."""


class BatchOutOfOrder(BatchRejected):
    """A well-formed batch that does not continue the chain where the broker's head for its key stands."""


@dataclass(frozen=True, slots=True)
class Batch:
    """A checked batch: its signing key, range, links and the summary the log entry keeps."""

    jwk: dict[str, Any]
    first_seq: int
    last_seq: int
    prev_hash: str
    head_hash: str
    document: dict[str, Any]

    @property
    def key_id(self) -> str:
        return jwk_thumbprint(self.jwk)


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint (hex) of an EC public JWK."""
    members = {k: jwk.get(k) for k in ("crv", "kty", "x", "y")}
    if not all(isinstance(v, str) for v in members.values()) or members["kty"] != "EC":
        raise BatchRejected("tee_pubkey_jwk must be an EC public key JWK (kty, crv, x, y)")
    return hashlib.sha256(canonical_json(members)).hexdigest()


def public_key_of(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    """The EC public key of a P-256/P-384 JWK (joserfc imports it; the point must be on the curve)."""
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey

    try:
        if jwk.get("crv") not in ("P-256", "P-384"):
            raise ValueError(jwk.get("crv"))
        return ECKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "y")}).get_op_key("verify")
    except (JoseError, AttributeError, KeyError, TypeError, ValueError, binascii.Error):
        raise BatchRejected("tee_pubkey_jwk is not a P-256 or P-384 public key") from None


def check_batch(doc: Any, *, prev_hash: str = GENESIS.hex(), first_seq: int = 0) -> Batch:
    """Check a batch document: its shape, digest, every link and signature, and that it continues the chain
    at (`first_seq`, `prev_hash`) — the head the broker holds for this key (genesis for a new key)."""
    if not isinstance(doc, dict) or doc.get("type") != BATCH_TYPE:
        raise BatchRejected(f"not a {BATCH_TYPE} document")
    entries, jwk = doc.get("entries"), doc.get("tee_pubkey_jwk")
    if not isinstance(entries, list) or not entries or not isinstance(jwk, dict):
        raise BatchRejected("a batch has tee_pubkey_jwk and a non-empty list of entries")
    key = public_key_of(jwk)
    jwk_thumbprint(jwk)
    if doc.get("first_seq") != first_seq or doc.get("prev_hash") != prev_hash:
        raise BatchOutOfOrder(f"the batch does not continue this key's chain: expected seq {first_seq} after "
                            f"{prev_hash[:16]}…, got seq {doc.get('first_seq')!r} after "
                            f"{str(doc.get('prev_hash'))[:16]}…")
    check = verify_chain(entries, key, prev_hash=prev_hash, first_seq=first_seq, expected_head=doc.get("head_hash"))
    if not check.ok:
        raise BatchRejected(f"call record {check.first_bad_seq}: {check.reason}")
    last = first_seq + len(entries) - 1
    lines = export_jsonl(ChainEntry.model_validate(e) for e in entries)
    if doc.get("last_seq") != last or doc.get("batch_digest") != hashlib.sha256(lines.encode()).hexdigest():
        raise BatchRejected("last_seq or batch_digest does not match the entries")
    if doc.get("head_signature") != entries[-1].get("signature"):
        raise BatchRejected("head_signature is not the last entry's signature")
    return Batch(dict(jwk), first_seq, last, prev_hash, check.head, doc)


def check_logged_batches(documents: Iterable[tuple[int | None, dict[str, Any]]]) -> list[tuple[int | None, str]]:
    """Re-check the batches a log holds, in log order: each verifies, and each key's batches form one
    unbroken chain from genesis. Returns (log seq, problem) pairs."""
    heads: dict[str, tuple[int, str]] = {}
    problems = []
    for seq, doc in documents:
        try:
            key_id = jwk_thumbprint(doc.get("tee_pubkey_jwk") or {})
            first, prev = heads.get(key_id, (0, GENESIS.hex()))
            batch = check_batch(doc, prev_hash=prev, first_seq=first)
        except BatchRejected as exc:
            problems.append((seq, str(exc)))
            continue
        heads[key_id] = (batch.last_seq + 1, batch.head_hash)
    return problems
