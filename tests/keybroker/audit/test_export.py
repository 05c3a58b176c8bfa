"""Export → verify, then one tampering per test: each is detected with the right kind and seq."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keybroker.audit import merkle
from keybroker.audit.checkpoint import Checkpoint, NoteSigner, open_note, sign_note
from keybroker.audit.entry import LogEntry, entry_leaf_hash
from keybroker.audit.errors import LogTamperedError, ProofError
from keybroker.audit.export import EntryFilter, export_log, read_lines
from keybroker.audit.verify import verify_consistency_between, verify_export

SIZE = 13


def lines(directory: Path) -> list[bytes]:
    return read_lines(directory / "entries.jsonl")


def write_lines(directory: Path, new: list[bytes]) -> None:
    (directory / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in new))


def edit(line: bytes, **changes) -> bytes:
    doc = json.loads(line)
    doc.update(changes)
    return LogEntry.model_validate(doc).canonical_bytes()


def drop_hint(directory: Path) -> None:
    (directory / "leaf-hashes").unlink()


def kinds(report) -> list[tuple[str, int | None]]:
    return [(p.what, p.seq) for p in report.problems]


def test_an_untouched_export_verifies(exported, log):
    report = verify_export(exported, log.verifier.key_string())
    assert report.ok and report.entries == SIZE and report.warnings == ()
    assert report.checkpoint.size == SIZE and report.checkpoint.root_hash == log.root()
    report.raise_for_problems()


def test_export_layout(exported, log):
    assert sorted(p.name for p in exported.iterdir()) == [
        "checkpoint", "entries.jsonl", "leaf-hashes", "log-key.pub", "manifest.json"]
    assert lines(exported)[4] == log.store.entry(4)
    assert (exported / "log-key.pub").read_text() == log.verifier.key_string() + "\n"
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["size"] == SIZE and manifest["origin"] == log.origin and manifest["filter"] == {}


def test_without_a_pinned_key_it_warns(exported):
    report = verify_export(exported)
    assert report.ok and "pin the log's key" in report.warnings[0]


def test_export_refuses_a_non_empty_directory(log, exported):
    with pytest.raises(FileExistsError):
        export_log(log, exported)


@pytest.mark.parametrize("field, value", [
    ("decision", "deny"), ("resource", "models/other/dek"), ("tenant", "evil"),
    ("time", "2030-01-01T00:00:00Z"), ("policy_version", 4)])
@pytest.mark.parametrize("hint", [True, False])
def test_an_edited_entry_is_detected(exported, log, field, value, hint):
    old = lines(exported)
    old[8] = edit(old[8], **{field: value})
    write_lines(exported, old)
    if not hint:
        drop_hint(exported)
    report = verify_export(exported, log.verifier)
    assert not report.ok
    assert kinds(report) == ([("edited", 8)] if hint else [("edited", None)])


def test_edited_evidence_without_its_digest_is_a_broken_entry(exported, log):
    old = lines(exported)
    doc = json.loads(old[0])
    doc["evidence_b64"] = "AAAA"
    old[0] = json.dumps(doc).encode()
    write_lines(exported, old)
    drop_hint(exported)
    assert ("edited", 0) in kinds(verify_export(exported, log.verifier))


@pytest.mark.parametrize("hint", [True, False])
def test_a_deleted_entry_is_detected(exported, log, hint):
    old = lines(exported)
    del old[6]
    write_lines(exported, old)
    if not hint:
        drop_hint(exported)
    assert kinds(verify_export(exported, log.verifier)) == [("deleted", 6)]


def test_a_deleted_entry_with_the_rest_renumbered_is_detected(exported, log):
    old = lines(exported)
    del old[6]
    write_lines(exported, old[:6] + [edit(line, seq=i + 6) for i, line in enumerate(old[6:])])
    assert kinds(verify_export(exported, log.verifier)) == [("deleted", 6)]


@pytest.mark.parametrize("hint", [True, False])
def test_two_swapped_entries_are_detected_as_reordered(exported, log, hint):
    old = lines(exported)
    old[3], old[8] = old[8], old[3]
    write_lines(exported, old)
    if not hint:
        drop_hint(exported)
    assert kinds(verify_export(exported, log.verifier)) == [("reordered", 3)]


@pytest.mark.parametrize("hint", [True, False])
def test_an_inserted_entry_is_detected(exported, log, entry_at, hint):
    old = lines(exported)
    forged = entry_at(1).model_copy(update={"seq": 4, "resource": "models/stolen/dek"})
    old.insert(5, forged.canonical_bytes())
    write_lines(exported, old)
    if not hint:
        drop_hint(exported)
    assert kinds(verify_export(exported, log.verifier)) == [("inserted", 5)]


def test_an_inserted_entry_with_the_rest_renumbered_is_detected(exported, log, entry_at):
    old = lines(exported)
    forged = entry_at(1).model_copy(update={"seq": 5}).canonical_bytes()
    write_lines(exported, old[:5] + [forged] + [edit(line, seq=i + 6) for i, line in enumerate(old[5:])])
    assert kinds(verify_export(exported, log.verifier)) == [("inserted", 5)]


@pytest.mark.parametrize("hint", [True, False])
def test_a_truncated_log_is_detected(exported, log, hint):
    write_lines(exported, lines(exported)[:9])
    if not hint:
        drop_hint(exported)
    assert kinds(verify_export(exported, log.verifier)) == [("truncated", 9)]


def test_an_appended_unsigned_entry_is_detected(exported, log, entry_at):
    extra = entry_at(13).model_copy(update={"seq": 13}).canonical_bytes()
    write_lines(exported, lines(exported) + [extra])
    assert kinds(verify_export(exported, log.verifier)) == [("extended", 13)]


def test_a_rewritten_hint_is_ignored_and_the_edit_still_found(exported, log):
    old = lines(exported)
    old[2] = edit(old[2], decision="allow", kind="release", reasons=[])
    write_lines(exported, old)
    (exported / "leaf-hashes").write_text("".join(merkle.leaf_hash(x).hex() + "\n" for x in old))
    report = verify_export(exported, log.verifier)
    assert kinds(report) == [("edited", None)] and "located by seq only" in report.warnings[0]


def test_a_checkpoint_signed_by_another_key_is_rejected(exported, log):
    forger = NoteSigner.generate(log.signer.name)
    body = Checkpoint(log.origin, SIZE, b"\x00" * 32).body()
    (exported / "checkpoint").write_text(sign_note(body, [forger]))
    (exported / "log-key.pub").write_text(forger.verifier.key_string())
    assert kinds(verify_export(exported, log.verifier)) == [("checkpoint", None)]


def test_an_edited_checkpoint_fails_its_signature(exported, log):
    text = (exported / "checkpoint").read_text().replace(f"\n{SIZE}\n", "\n12\n", 1)
    (exported / "checkpoint").write_text(text)
    report = verify_export(exported, log.verifier)
    assert kinds(report) == [("checkpoint", None)] and "does not verify" in report.problems[0].detail


def test_an_older_genuine_checkpoint_swapped_in_leaves_entries_unsigned(log, entry_at, tmp_path):
    older = log.checkpoint()
    log.append(entry_at(13))
    export = export_log(log, tmp_path / "x")
    (export / "checkpoint").write_text(older)
    assert kinds(verify_export(export, log.verifier)) == [("extended", 13)]


def test_a_checkpoint_of_another_log_is_rejected(exported, log):
    other = Checkpoint("other.log", SIZE, log.root()).body()
    (exported / "checkpoint").write_text(sign_note(other, [log.signer]))
    assert kinds(verify_export(exported, log.verifier)) == [("checkpoint", None)]


def test_a_previous_checkpoint_bounds_an_unlocated_edit(log, entry_at, tmp_path):
    previous = log.checkpoint()
    for i in range(13, 20):
        log.append(entry_at(i))
    export = export_log(log, tmp_path / "x")
    assert verify_export(export, log.verifier, previous=previous).ok
    old = lines(export)
    old[15] = edit(old[15], tenant="evil")
    write_lines(export, old)
    drop_hint(export)
    report = verify_export(export, log.verifier, previous=previous)
    assert [p.what for p in report.problems] == ["edited", "edited"]
    assert "at or after seq 13" in report.problems[1].detail


def test_a_log_rewritten_and_resigned_is_caught_by_the_previous_checkpoint(log, entry_at, tmp_path):
    previous = log.checkpoint()
    store = log.store
    store._entries[2] = entry_at(6).model_copy(update={"seq": 2}).canonical_bytes()   # the key holder rewrites
    store._hashes[2] = entry_leaf_hash(LogEntry.from_canonical(store._entries[2]))
    store.checkpoints.clear()
    export = export_log(log, tmp_path / "x")
    assert verify_export(export, log.verifier).ok                       # consistent with its own checkpoint
    assert kinds(verify_export(export, log.verifier, previous=previous)) == [("rewritten", None)]


def test_a_previous_checkpoint_larger_than_the_log_means_truncation(log, entry_at, tmp_path):
    export = export_log(log, tmp_path / "x")
    log.append(entry_at(13))
    bigger = log.checkpoint()
    assert kinds(verify_export(export, log.verifier, previous=bigger)) == [("truncated", SIZE)]


def test_raise_for_problems_names_the_first(exported, log):
    write_lines(exported, lines(exported)[:9])
    with pytest.raises(LogTamperedError) as info:
        verify_export(exported, log.verifier).raise_for_problems()
    assert (info.value.what, info.value.index) == ("truncated", 9)


def test_a_filtered_view_checks_each_entry_it_holds(log, tmp_path):
    view = export_log(log, tmp_path / "v", EntryFilter(decision="deny"))
    held = [LogEntry.from_canonical(x) for x in lines(view)]
    assert [e.seq for e in held] == [2, 6, 10] and verify_export(view, log.verifier).ok
    old = lines(view)
    old[1] = edit(old[1], resource="models/other/dek")
    write_lines(view, old)
    assert kinds(verify_export(view, log.verifier)) == [("edited", 6)]


def test_filters_match_time_resource_decision_and_kind(entry_at):
    from datetime import timedelta
    e = entry_at(1)   # a release of models/llama-1/dek at T0 + 1 min
    assert EntryFilter(resource="models/llama-*/dek", decision="allow", kind="release").matches(e)
    assert not EntryFilter(resource="models/other/*").matches(e)
    assert not EntryFilter(since=e.time + timedelta(seconds=1)).matches(e)
    assert EntryFilter(until=e.time).matches(e) and not EntryFilter(kind="denial").matches(e)


def test_consistency_between_checkpoints(log, entry_at):
    old = open_note(log.checkpoint(), [log.verifier])
    log.append(entry_at(13))
    new = open_note(log.checkpoint(), [log.verifier])
    proof = log.prove_consistency(old.size)
    verify_consistency_between(old, new, proof)
    with pytest.raises(ProofError):
        verify_consistency_between(old, new, proof[::-1])
    with pytest.raises(ProofError, match="different logs"):
        verify_consistency_between(Checkpoint("x", old.size, old.root_hash), new, proof)


def test_not_an_export_is_bad_input(tmp_path):
    with pytest.raises(ValueError, match="not an audit export"):
        verify_export(tmp_path)


# ------------------------------------------------------------------ any single change is detected

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_byte_changed_in_the_entries_is_detected(exported, log, data):
    path = exported / "entries.jsonl"
    original = path.read_bytes()
    i = data.draw(st.integers(0, len(original) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != original[i]))
    try:
        path.write_bytes(original[:i] + bytes([byte]) + original[i + 1:])
        report = verify_export(exported, log.verifier)
        assert not report.ok and report.problems[0].what in (
            "edited", "deleted", "inserted", "truncated", "extended", "reordered")
    finally:
        path.write_bytes(original)
