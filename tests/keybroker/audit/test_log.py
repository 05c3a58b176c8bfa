"""The entry model, its canonical leaf data, and AuditLog over the in-memory store."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest
import rfc8785
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from keybroker.audit import merkle
from keybroker.audit.checkpoint import open_note
from keybroker.audit.entry import LogEntry, claims_digest, entry_leaf_hash
from keybroker.audit.errors import AuditError, LogTamperedError, ProofError
from keybroker.audit.log import AuditLog, InMemoryLogStore, LogStore

T = datetime(2025, 7, 1, tzinfo=timezone.utc)


def test_leaf_data_is_the_jcs_form_with_seq_and_the_leaf_hash_is_rfc9162(entry_at):
    entry = entry_at(0).model_copy(update={"seq": 0})
    data = entry.canonical_bytes()
    assert data == rfc8785.dumps(json.loads(data))
    assert json.loads(data)["seq"] == 0 and json.loads(data)["time"] == "2025-07-01T12:00:00Z"
    assert entry_leaf_hash(entry) == hashlib.sha256(b"\x00" + data).digest()
    assert LogEntry.from_canonical(data) == entry


_json = st.recursive(st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | st.text(max_size=8)
                     | st.floats(min_value=-1e15, max_value=1e15),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
                     max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(claims=st.none() | st.dictionaries(st.text(max_size=6), _json, max_size=4),
       evidence=st.none() | st.binary(max_size=40), resource=st.none() | st.text(max_size=10),
       seq=st.integers(0, 10**12), kind=st.sampled_from(["attestation", "admin"]))
def test_prepared_entry_numbers_to_the_canonical_bytes(claims, evidence, resource, seq, kind):
    """`prepare().numbered(seq)` (built before the log lock), and `prepare_record`'s with the claims' JCS
    bytes spliced in, are byte for byte the JCS form with that seq (floats take rfc8785's path)."""
    fields = dict(time=T, kind=kind, claims=claims, evidence=evidence, resource=resource, actor="a", action="b",
                  reasons=())
    entry = LogEntry.record(**fields)
    recorded, prepared = LogEntry.prepare_record(**fields)
    assert recorded == entry
    data = entry.prepare().numbered(seq)
    assert data == prepared.numbered(seq) == entry.model_copy(update={"seq": seq}).canonical_bytes()
    assert LogEntry.from_canonical(data).seq == seq


_any_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(), lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
    max_leaves=12)


@settings(max_examples=500, deadline=None)
@given(value=_any_json)
def test_canonical_json_is_rfc8785(value):
    """The fast path (orjson) gives RFC 8785's bytes or defers to it; errors are rfc8785's own."""
    from attestation.jcs import canonical_json
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@settings(max_examples=2000, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False) | st.floats(min_value=1e-4, max_value=1e16)
       | st.floats(min_value=-1e16, max_value=-1e-4) | st.sampled_from([1e-4, 1e16, 0.1, 1 / 3, 123.456, 2.0**52 + 0.5]))
def test_canonical_json_floats_are_rfc8785(value):
    """Floats: the fast path's plain-notation range and the ECMAScript notation outside it, both as RFC 8785."""
    from attestation.jcs import canonical_json
    assert canonical_json({"latency_ms": value, "n": [value]}) == rfc8785.dumps({"latency_ms": value, "n": [value]})


@pytest.mark.parametrize("value", ["\ud800", {"k": ["a\udfff"]}, {"\ud83d": 1}, 2**53, [1.5e300]])
def test_canonical_json_edge_cases_match_rfc8785(value):
    from attestation.jcs import canonical_json
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError) as exc:     # rfc8785's own refusal, whichever it is
        with pytest.raises(type(exc)):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected


def test_a_numbered_entry_cannot_be_prepared_again(entry_at):
    with pytest.raises(ValueError, match="already has a seq"):
        entry_at(0).model_copy(update={"seq": 3}).prepare()


def test_record_computes_both_digests():
    entry = LogEntry.record(time=T, kind="attestation", evidence=b"\x01\x02", claims={"b": 1, "a": [2]})
    assert entry.evidence_digest == hashlib.sha256(b"\x01\x02").hexdigest()
    assert entry.claims_digest == hashlib.sha256(b'{"a":[2],"b":1}').hexdigest() == claims_digest({"a": [2], "b": 1})
    assert entry.evidence() == b"\x01\x02"


@pytest.mark.parametrize("fields, needle", [
    (dict(kind="release", decision="deny"), "release entry"),
    (dict(kind="denial", decision="allow"), "denial entry"),
    (dict(kind="admin"), "actor and action"),
    (dict(kind="attestation", evidence_b64="AAAA", evidence_digest="00" * 32), "evidence_digest"),
    (dict(kind="attestation", claims={"a": 1}, claims_digest="00" * 32), "claims_digest"),
    (dict(kind="attestation", unknown=1), "Extra inputs"),
    (dict(kind="attestation", time=datetime(2025, 1, 1)), "time zone"),
])
def test_inconsistent_entries_are_refused(fields, needle):
    with pytest.raises(ValidationError, match=needle):
        LogEntry(**{"time": T, **fields})


def test_non_canonical_bytes_are_refused(entry_at):
    entry = entry_at(1).model_copy(update={"seq": 1})
    spaced = json.dumps(entry.document(), indent=1).encode()
    with pytest.raises(ValueError, match="canonical"):
        LogEntry.from_canonical(spaced)
    with pytest.raises(ValueError, match="seq"):
        entry_at(1).canonical_bytes()


def test_times_are_normalised_to_utc():
    from datetime import timedelta
    cet = timezone(timedelta(hours=2))
    entry = LogEntry(time=datetime(2025, 7, 1, 14, tzinfo=cet), kind="admin", actor="a", action="b")
    assert entry.time == T.replace(hour=12) and entry.time.tzinfo == timezone.utc


def test_append_numbers_entries_and_stores_their_leaf_hashes(log_of, entry_at):
    log = log_of(5)
    assert isinstance(log.store, LogStore)
    seq, leaf = log.append(entry_at(5))
    assert seq == 5 and log.store.leaf_hash(5) == leaf
    assert log.entry(5).seq == 5 and log.entry(5).resource == entry_at(5).resource
    assert log.root() == merkle.root([entry_leaf_hash(log.entry(i)) for i in range(6)])


def test_checkpoint_signs_the_current_size_and_root(log):
    note = log.checkpoint()
    cp = open_note(note, [log.verifier])
    assert (cp.origin, cp.size, cp.root_hash) == (log.origin, 13, log.root())
    assert log.store.latest_checkpoint() == note


def test_proofs_from_the_log_verify_against_its_checkpoints(log, entry_at):
    old = open_note(log.checkpoint(), [log.verifier])
    for i in range(13, 20):
        log.append(entry_at(i))
    new = open_note(log.checkpoint(), [log.verifier])
    merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, log.prove_consistency(old.size))
    for seq in (0, 7, 19):
        merkle.verify_inclusion(seq, new.size, log.store.leaf_hash(seq), log.prove_inclusion(seq), new.root_hash)
    with pytest.raises(ProofError, match="beyond"):
        log.prove_inclusion(0, 21)


class RacingStore(InMemoryLogStore):
    """A store where another replica slipped an entry in between size() and append()."""

    def append(self, entry_bytes: bytes, leaf_hash: bytes) -> int:
        super().append(b"{}", b"\x00" * 32)
        return super().append(entry_bytes, leaf_hash)


def test_a_concurrent_append_is_an_error_not_a_renumbering(signer, entry_at):
    log = AuditLog(RacingStore(), signer, "o")
    with pytest.raises(AuditError, match="concurrent append"):
        log.append(entry_at(0))


def test_checkpoint_refuses_a_store_rewritten_under_it(log, entry_at):
    log.checkpoint()
    store: InMemoryLogStore = log.store  # type: ignore[assignment]
    store._hashes[3] = entry_leaf_hash(entry_at(9).model_copy(update={"seq": 3}))
    with pytest.raises(LogTamperedError) as info:
        log.checkpoint()
    assert info.value.what == "rewritten"
    del store._hashes[5:]
    del store._entries[5:]
    with pytest.raises(LogTamperedError) as info:
        log.checkpoint()
    assert (info.value.what, info.value.index) == ("truncated", 5)


def test_signer_repr_and_log_never_show_the_private_key(log):
    secret = log.signer.private_key_string().split("+", 4)[4]
    assert secret not in repr(log.signer) and secret not in log.checkpoint()


def test_a_fresh_log_checkpoints_the_empty_tree(signer):
    log = AuditLog(InMemoryLogStore(), signer, "o")
    cp = open_note(log.checkpoint(), [signer.verifier])
    assert cp.size == 0 and cp.root_hash == hashlib.sha256(b"").digest()
