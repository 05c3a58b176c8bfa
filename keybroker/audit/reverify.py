"""Re-run verification (and policy evaluation) on the evidence a log recorded, offline.

For each entry that carries evidence — and for each release or release denial,
through the attestation entry of its session — (1) decode it as the broker received it;
(2) verify it with the auditor's anchors and collateral as of the entry's
recorded verification time; (3) compare the claims digest with the recorded
one; (4) if the auditor supplies the policy the entry names (same digest),
evaluate it at that time for the entry's resource; (5) compare the decision
with the recorded one. A recorded denial whose reasons come from the KBS
protocol (code "kbs.…": nonce, binding, session) cannot be replayed from
evidence alone and is not a mismatch; a recorded "allow" that does not
reproduce always is.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from attestation.errors import ParseError
from attestation.evidence import Evidence, decode_blob, detect_tee
from attestation.options import VerifyOptions
from attestation.verify import verify

from .entry import LogEntry, claims_digest

PROTOCOL_REASON = "kbs."


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A recorded value that re-verification did not reproduce. `what`: evidence, claims, decision, policy."""

    what: str
    recorded: str
    recomputed: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one entry: checked (with any mismatches) or skipped, and why."""

    seq: int | None
    checked: tuple[str, ...] = ()
    mismatches: tuple[Mismatch, ...] = ()
    skipped: str = ""
    notes: tuple[str, ...] = ()


def evidence_of(entry: LogEntry) -> Evidence:
    """The entry's evidence: a raw quote/report (binary, hex or base64), or a KBS `tee-evidence` object."""
    raw = entry.evidence()
    if raw.lstrip().startswith(b"{"):
        return _from_kbs_json(raw)
    report = decode_blob(raw)
    tee = entry.tee if entry.tee in ("tdx", "snp") else detect_tee(report)
    return Evidence(tee=tee, report=report)  # type: ignore[arg-type]


def _from_kbs_json(raw: bytes) -> Evidence:
    try:
        doc = json.loads(raw)
        doc = doc.get("tee-evidence", doc)
        primary = doc.get("primary_evidence", doc)
        if isinstance(primary, dict) and isinstance(primary.get("quote"), str):
            return Evidence(tee="tdx", report=base64.b64decode(primary["quote"], validate=True))
        if isinstance(primary, dict) and isinstance(primary.get("attestation_report"), str):
            certs = tuple(base64.b64decode(c, validate=True) for c in primary.get("cert_chain") or ())
            return Evidence(tee="snp", report=base64.b64decode(primary["attestation_report"], validate=True),
                            certificates=certs)
    except (ValueError, AttributeError, TypeError, binascii.Error):
        pass
    raise ParseError("evidence", "tee-evidence", None, "no TDX quote or base64 SNP report found in the JSON")


def _composite_of(entry: LogEntry) -> tuple[str, str, dict, Evidence] | None:
    """(additional evidence, nonce, tee-pubkey, CPU evidence) of a KBS attestation that carried GPU evidence."""
    raw = entry.evidence()
    if not raw.lstrip().startswith(b"{"):
        return None
    try:
        doc = json.loads(raw)
        tee_evidence = doc.get("tee-evidence")
        if isinstance(tee_evidence, str):
            tee_evidence = json.loads(tee_evidence)
        additional = tee_evidence.get("additional_evidence") if isinstance(tee_evidence, dict) else None
        runtime = doc.get("runtime-data") or {}
        if not additional:
            return None
        return additional, runtime["nonce"], runtime["tee-pubkey"], _from_kbs_json(raw)
    except (ValueError, AttributeError, TypeError, KeyError):
        raise ParseError("evidence", "tee-evidence", None, "composite evidence without its runtime data") from None


def _verify_recorded(entry: LogEntry, opts: VerifyOptions):
    """Verify the recorded evidence as the broker did: CPU alone, or CPU + GPUs with their binding.

    The log does not record the session's report-data hash; a composite binding is
    accepted under any of the protocol's hashes (SHA-384 first), each equally binding."""
    from attestation.binding import HASHES
    from attestation.composite import CompositeEvidence, verify_composite

    composite = _composite_of(entry)
    if composite is None:
        return verify(evidence_of(entry), opts)
    additional, nonce, pubkey, cpu = composite
    result = None
    for alg in sorted(HASHES, key=lambda a: a != "sha384"):
        result = verify_composite(CompositeEvidence(cpu, additional, alg), opts, nonce=nonce, tee_pubkey=pubkey)
        if result.verified:
            break
    return result


def reverify_entry(entry: LogEntry, opts: VerifyOptions, policies: Mapping[str, Any] | None = None,
                   attested: Any | None = None) -> Outcome:
    """Re-verify one entry; `policies` maps policy name → policies.CompiledPolicy.

    A release or release denial carries no evidence of its own: pass `attested`, the re-verification
    of its session's attestation entry, and its claims and policy decision are checked against that."""
    return _reverify(entry, opts, policies, attested)[0]


def _reverify(entry: LogEntry, opts: VerifyOptions, policies: Mapping[str, Any] | None,
              attested: Any | None) -> tuple[Outcome, Any | None]:
    """(outcome, the verification result the entry's claims rest on, or None)."""
    if entry.evidence_b64 is None and attested is None:
        return Outcome(entry.seq, skipped="no evidence recorded"), None
    if entry.tee == "nvidia":
        return Outcome(entry.seq, skipped="GPU evidence without its CPU TEE is not re-verified here"), None
    at = entry.verification_time or entry.time
    if entry.evidence_b64 is None:
        result, checked = attested, [f"evidence (seq {attested.seq})"]     # the session's attestation
    else:
        try:
            result = _verify_recorded(entry, dataclasses.replace(opts, at=at))           # (1), (2)
        except ParseError as exc:
            return _compare_decision(entry, False, ("evidence",), [], [f"unreadable evidence: {exc.message}"]), None
        result = _Verified(entry.seq, result.verified, result.claims, result.errors)
        checked = ["evidence"]
    mismatches, notes = [], []
    if not result.verified:
        notes.append("not verified: " + "; ".join(f"{f.code}: {f.message}" for f in result.errors))
    elif entry.claims_digest is not None:                                                 # (3)
        checked.append("claims")
        digest = claims_digest(result.claims.model_dump(mode="json"))
        if digest != entry.claims_digest:
            mismatches.append(Mismatch("claims", entry.claims_digest, digest, _claims_diff(entry, result.claims)))
    allowed = result.verified
    if result.verified and policies is not None and entry.policy_id:                      # (4)
        allowed, policy_note = _evaluate(entry, result.claims, at, policies)
        if policy_note:
            notes.append(policy_note)
        if allowed is not None:
            checked.append("policy")
    return _compare_decision(entry, allowed, tuple(checked), mismatches, notes), result


@dataclass(frozen=True, slots=True)
class _Verified:
    """A re-verification, remembered by the seq of the entry whose evidence it replayed."""

    seq: int | None
    verified: bool
    claims: Any
    errors: tuple


def _evaluate(entry: LogEntry, claims, at, policies: Mapping[str, Any]) -> tuple[bool | None, str]:
    """(allowed, note); allowed None when the recorded policy is not available to replay."""
    from policies import evaluate

    policy = policies.get(entry.policy_id or "")
    if policy is None:
        return None, f"policy {entry.policy_id!r} not supplied: decision compared with verification only"
    if entry.policy_digest and policy.digest != entry.policy_digest:
        return None, (f"policy {entry.policy_id!r} supplied has digest {policy.digest[:16]}…, the entry "
                      f"recorded {entry.policy_digest[:16]}…: not replayed")
    decision = evaluate(policy, claims, at=at, resource=entry.resource)
    failed = ", ".join(c.code for c in decision.failures)
    return decision.allowed, (f"policy denies: {failed}" if failed else "")


def _compare_decision(entry: LogEntry, allowed: bool | None, checked: tuple[str, ...],
                      mismatches: list[Mismatch], notes: list[str]) -> Outcome:
    """(5) A recomputed decision against the recorded one (None: only an allow can be refuted)."""
    if entry.decision is not None:
        recomputed = None if allowed is None else ("allow" if allowed else "deny")
        protocol = any(r.code.startswith(PROTOCOL_REASON) for r in entry.reasons)
        if entry.decision == "allow" and allowed is False:
            mismatches.append(Mismatch("decision", "allow", "deny", "; ".join(notes)))
        elif entry.decision == "deny" and recomputed == "allow" and "policy" in checked:
            if protocol:
                notes.append("denied by the KBS protocol (" + ", ".join(
                    r.code for r in entry.reasons if r.code.startswith(PROTOCOL_REASON)) + "): not replayable")
            else:
                mismatches.append(Mismatch("decision", "deny", "allow", "evidence and policy allow it now"))
        checked = (*checked, "decision")
    return Outcome(entry.seq, checked, tuple(mismatches), notes=tuple(notes))


def _claims_diff(entry: LogEntry, claims) -> str:
    if entry.claims is None:
        return "recorded claims not stored; digests differ"
    now = claims.model_dump(mode="json")
    keys = sorted(k for k in set(now) | set(entry.claims) if now.get(k) != entry.claims.get(k))
    return "differing claims: " + ", ".join(keys[:10])


def reverify(entries: Iterable[LogEntry], opts: VerifyOptions,
             policies: Mapping[str, Any] | None = None) -> list[Outcome]:
    """Re-verify every entry (the caller verified the export first). Releases and release denials are
    replayed on the claims of their session's attestation entry, re-verified from its evidence."""
    sessions: dict[str, Any] = {}
    outcomes = []
    for entry in entries:
        linked = sessions.get(entry.session_id or "") if entry.evidence_b64 is None else None
        outcome, result = _reverify(entry, opts, policies, linked)
        if entry.kind == "attestation" and entry.session_id and result is not None:
            sessions[entry.session_id] = result
        outcomes.append(outcome)
    return outcomes
