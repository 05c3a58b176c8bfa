"""Re-verification of recorded evidence: real TDX evidence and emulated evidence with a real policy."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from attestation.anchors import vendor_anchors
from attestation.collateral import StaticCollateral
from attestation.collateral.intel import load_intel_collateral_json
from attestation.emulated import EmulatedCollateral, EmulatedVendor
from attestation.options import VerifyOptions
from attestation.verify import verify
from keybroker.audit.entry import LogEntry, Reason
from keybroker.audit.reverify import evidence_of, reverify_entry

REPO = Path(__file__).resolve().parents[3]
AT = datetime(2025, 7, 1, tzinfo=timezone.utc)
EXPIRED = datetime(2026, 11, 23, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def real_quote(evidence_dir: Path) -> bytes:
    return (evidence_dir / "tdx/quotes/dcapqvl_tdx_quote_v4.dat").read_bytes()


@pytest.fixture(scope="module")
def real_opts(evidence_dir: Path) -> VerifyOptions:
    tdx = load_intel_collateral_json((evidence_dir / "tdx/collateral/dcapqvl_2025-06_b0c06f000000.json").read_bytes())
    return VerifyOptions(anchors=vendor_anchors(), collateral=StaticCollateral(tdx_sets=(tdx,)), at=AT)


@pytest.fixture(scope="module")
def real_claims(real_quote, real_opts) -> dict:
    result = verify(evidence_of(LogEntry.record(time=AT, kind="attestation", tee="tdx", evidence=real_quote)),
                    real_opts)
    assert result.verified
    return result.claims.model_dump(mode="json")


def recorded(evidence: bytes, claims: dict | None, decision: str, at: datetime = AT, **more) -> LogEntry:
    return LogEntry.record(seq=0, time=at, kind="attestation", tee="tdx", evidence=evidence, claims=claims,
                           decision=decision, verification_time=at, **more)


def test_a_faithful_record_of_real_evidence_reproduces(real_quote, real_opts, real_claims):
    outcome = reverify_entry(recorded(real_quote, real_claims, "allow"), real_opts)
    assert outcome.mismatches == () and outcome.checked == ("evidence", "claims", "decision")


def test_recorded_allow_that_no_longer_verifies_at_its_time_is_a_mismatch(real_quote, real_opts, real_claims):
    outcome = reverify_entry(recorded(real_quote, None, "allow", at=EXPIRED), real_opts)
    assert [(m.what, m.recorded, m.recomputed) for m in outcome.mismatches] == [("decision", "allow", "deny")]
    assert "tdx." in outcome.mismatches[0].detail


def test_claims_that_differ_from_the_evidence_are_reported(real_quote, real_opts, real_claims):
    doctored = {**real_claims, "tcb_status": "UpToDate", "debug": True}
    outcome = reverify_entry(recorded(real_quote, doctored, "allow"), real_opts)
    assert [m.what for m in outcome.mismatches] == ["claims"]
    assert "debug" in outcome.mismatches[0].detail


def test_kbs_json_evidence_is_decoded(real_quote, real_opts, real_claims):
    body = json.dumps({"primary_evidence": {"quote": base64.b64encode(real_quote).decode(), "cc_eventlog": None},
                       "additional_evidence": ""}).encode()
    assert reverify_entry(recorded(body, real_claims, "allow"), real_opts).mismatches == ()


def test_unreadable_evidence_recorded_as_allowed_is_a_mismatch(real_opts):
    outcome = reverify_entry(recorded(b"\x04\x00garbage", None, "allow"), real_opts)
    assert [m.what for m in outcome.mismatches] == ["decision"] and "unreadable" in outcome.notes[0]


def test_entries_without_evidence_are_skipped(real_opts):
    entry = LogEntry(seq=1, time=AT, kind="admin", actor="a", action="b")
    assert reverify_entry(entry, real_opts).skipped == "no evidence recorded"


# ---------------------------------------------------------------- emulated evidence, replayed policy

@pytest.fixture(scope="module")
def vendor(tmp_path_factory) -> EmulatedVendor:
    return EmulatedVendor.create(tmp_path_factory.mktemp("vendor"))


@pytest.fixture(scope="module")
def dev_policy():
    from policies import load_policy
    return load_policy(REPO / "policies/examples/development-emulated.yaml", references=[REPO / "policies/examples"])


@pytest.fixture(scope="module")
def emulated(vendor):
    quote = vendor.evidence("tdx", b"\x11" * 64).report
    opts = VerifyOptions(anchors=vendor.anchors(), collateral=EmulatedCollateral(vendor, clock=AT), at=AT)
    return quote, opts


def policy_entry(quote: bytes, decision: str, resource: str, policy, **more) -> LogEntry:
    return recorded(quote, None, decision, resource=resource, policy_id=policy.name, policy_digest=policy.digest,
                    **more)


@pytest.mark.parametrize("decision, resource, mismatch", [
    ("allow", "dev/models/tiny/dek", None),
    ("deny", "prod/models/llama/dek", None),           # the policy does not govern prod/: deny reproduces
    ("allow", "prod/models/llama/dek", ("allow", "deny")),
    ("deny", "dev/models/tiny/dek", ("deny", "allow")),
])
def test_recorded_decisions_are_replayed_against_the_policy(emulated, dev_policy, decision, resource, mismatch):
    quote, opts = emulated
    outcome = reverify_entry(policy_entry(quote, decision, resource, dev_policy), opts, {dev_policy.name: dev_policy})
    assert "policy" in outcome.checked
    assert [(m.recorded, m.recomputed) for m in outcome.mismatches] == ([mismatch] if mismatch else [])


def test_a_protocol_denial_is_not_a_mismatch(emulated, dev_policy):
    quote, opts = emulated
    entry = policy_entry(quote, "deny", "dev/models/tiny/dek", dev_policy,
                         reasons=(Reason(code="kbs.nonce_consumed", message="replayed", expected="unused",
                                         actual="consumed"),))
    outcome = reverify_entry(entry, opts, {dev_policy.name: dev_policy})
    assert outcome.mismatches == () and "not replayable" in outcome.notes[-1]


def test_a_policy_with_another_digest_is_not_replayed(emulated, dev_policy):
    quote, opts = emulated
    entry = policy_entry(quote, "deny", "dev/models/tiny/dek", dev_policy).model_copy(
        update={"policy_digest": "00" * 32})
    outcome = reverify_entry(entry, opts, {dev_policy.name: dev_policy})
    assert outcome.mismatches == () and "not replayed" in outcome.notes[0] and "policy" not in outcome.checked


def test_emulated_evidence_under_vendor_anchors_only_does_not_reproduce_an_allow(emulated, dev_policy):
    quote, _ = emulated
    opts = VerifyOptions(anchors=vendor_anchors(), collateral=StaticCollateral(), at=AT)
    outcome = reverify_entry(policy_entry(quote, "allow", "dev/x", dev_policy), opts)
    assert [m.what for m in outcome.mismatches] == ["decision"]


def test_releases_are_replayed_through_their_sessions_attestation(emulated, dev_policy):
    """A release entry has no evidence of its own: its claims and decision are checked against the
    re-verified attestation of the same session; one that the policy would not allow is a mismatch."""
    from attestation.evidence import Evidence
    from attestation.verify import verify
    from keybroker.audit.reverify import reverify

    quote, opts = emulated
    attestation = recorded(quote, None, "allow", session_id="s1")
    claims_doc = verify(Evidence("tdx", quote), opts).claims.model_dump(mode="json")
    release = LogEntry.record(time=AT, kind="release", decision="allow", session_id="s1", claims=claims_doc,
                              resource="dev/models/tiny/dek", policy_id=dev_policy.name, policy_digest=dev_policy.digest)
    wrongly = LogEntry.record(time=AT, kind="release", decision="allow", session_id="s1", claims=claims_doc,
                              resource="prod/models/llama/dek", policy_id=dev_policy.name,
                              policy_digest=dev_policy.digest)
    orphan = release.model_copy(update={"session_id": "nobody"})
    outcomes = reverify([attestation.model_copy(update={"seq": 0}), release.model_copy(update={"seq": 1}),
                         wrongly.model_copy(update={"seq": 2}), orphan.model_copy(update={"seq": 3})],
                        opts, {dev_policy.name: dev_policy})
    assert outcomes[1].checked == ("evidence (seq 0)", "claims", "policy", "decision") and not outcomes[1].mismatches
    assert [(m.what, m.recorded, m.recomputed) for m in outcomes[2].mismatches] == [("decision", "allow", "deny")]
    assert outcomes[3].skipped == "no evidence recorded"
