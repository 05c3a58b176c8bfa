"""Call-audit batches in the attestation log: the entry kind, and the auditor's re-check of every batch."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from enclave.callaudit import CallAuditChain, broker_payload
from keybroker.audit.calls import GENESIS, BatchOutOfOrder, BatchRejected, check_batch, check_logged_batches
from keybroker.audit.entry import LogEntry

T = datetime(2026, 11, 23, tzinfo=timezone.utc)


def chain_of(n: int) -> tuple[ec.EllipticCurvePrivateKey, CallAuditChain]:
    key = ec.generate_private_key(ec.SECP256R1())
    chain = CallAuditChain(key, model="m")
    for i in range(n):
        chain.append(caller="c", method="/m", completion_tokens=i, time=T)
    return key, chain


def test_only_a_calls_entry_carries_a_batch_and_other_entries_keep_their_bytes():
    key, chain = chain_of(2)
    batch = broker_payload(chain.entries(), key.public_key())
    entry = LogEntry(time=T, kind="calls", calls=batch, seq=0)
    assert LogEntry.from_canonical(entry.canonical_bytes()).calls == batch
    with pytest.raises(ValidationError, match="only a calls entry"):
        LogEntry(time=T, kind="calls")
    with pytest.raises(ValidationError, match="only a calls entry"):
        LogEntry(time=T, kind="admin", actor="a", action="b", calls=batch)
    assert b'"calls"' not in LogEntry(time=T, kind="admin", actor="a", action="b", seq=1).canonical_bytes()


def test_check_batch_names_what_is_wrong():
    key, chain = chain_of(6)
    entries = chain.entries()
    assert check_batch(broker_payload(entries[:3], key.public_key())).last_seq == 2
    with pytest.raises(BatchOutOfOrder, match="expected seq 0"):
        check_batch(broker_payload(entries[3:], key.public_key()))
    second = broker_payload(entries[3:], key.public_key())
    assert check_batch(second, first_seq=3, prev_hash=entries[2].hash).head_hash == entries[-1].hash
    lying = copy.deepcopy(second) | {"last_seq": 9}
    with pytest.raises(BatchRejected, match="last_seq or batch_digest"):
        check_batch(lying, first_seq=3, prev_hash=entries[2].hash)
    with pytest.raises(BatchRejected, match="not a veil.enclave.callaudit.batch/v1"):
        check_batch({"entries": []})
    assert GENESIS == bytes(32)


def test_the_auditor_finds_a_batch_that_skips_or_is_forged():
    key_a, chain_a = chain_of(4)
    key_b, chain_b = chain_of(2)
    a, b = chain_a.entries(), chain_b.entries()
    good = [(0, broker_payload(a[:2], key_a.public_key())), (1, broker_payload(b, key_b.public_key())),
            (2, broker_payload(a[2:], key_a.public_key()))]
    assert check_logged_batches(good) == []
    skipped = [good[0], good[1], (2, broker_payload(a[3:], key_a.public_key()))]
    assert [seq for seq, _ in check_logged_batches(skipped)] == [2]
    impostor = ec.generate_private_key(ec.SECP256R1())
    forged = copy.deepcopy(good[2][1]) | {"tee_pubkey_jwk": broker_payload(a, impostor.public_key())["tee_pubkey_jwk"]}
    problems = check_logged_batches([good[0], (2, forged)])
    assert problems and problems[0][0] == 2 and "expected seq 0" in problems[0][1]   # a new key starts at genesis


def test_audit_verify_checks_the_batches_a_signed_log_holds(tmp_path):
    """A log (validly signed by its operator) that holds a batch not continuing its key's chain fails (5)."""
    from keybroker.audit.checkpoint import NoteSigner
    from keybroker.audit.export import export_log
    from keybroker.audit.log import AuditLog, InMemoryLogStore
    from keybroker.audit.verify import verify_export

    key, chain = chain_of(5)
    entries = chain.entries()
    for name, batches in (("honest", [entries[:2], entries[2:]]), ("skipping", [entries[:2], entries[3:]])):
        log = AuditLog(InMemoryLogStore(), NoteSigner.generate("veil-test"), "veil.test/calls")
        for part in batches:
            log.append(LogEntry(time=T, kind="calls", calls=broker_payload(part, key.public_key())))
        log.checkpoint()
        report = verify_export(export_log(log, tmp_path / name), log.verifier.key_string())
        if name == "honest":
            assert report.ok, report.problems
        else:
            assert [(p.what, p.seq) for p in report.problems] == [("calls", 1)]
