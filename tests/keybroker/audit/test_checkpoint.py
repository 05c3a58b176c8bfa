"""C2SP checkpoints in signed notes: round trips, the Go note test vector, malformed text, wrong keys."""

from __future__ import annotations

import base64
import hashlib

import pytest

from keybroker.audit.checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    generate_key,
    key_id,
    open_note,
    parse_checkpoint,
    sign_note,
    verify_note,
)
from keybroker.audit.errors import CheckpointError

# golang.org/x/mod/sumdb/note's documented example key and signature.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIG = ("\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotp"
          "RZb6KE6RyyBwJnAM=\n")

ROOT = hashlib.sha256(b"root").digest()
ORIGIN = "veil.test/audit"


@pytest.fixture(scope="module")
def signer() -> NoteSigner:
    return NoteSigner.generate("veil-test-log")


def test_the_go_note_example_signs_and_verifies_byte_for_byte():
    signer = NoteSigner.from_key_string(GO_SIGNER)
    assert signer.verifier.key_string() == GO_VERIFIER
    assert sign_note(GO_TEXT, [signer]) == GO_TEXT + "\n" + GO_SIG
    assert verify_note(GO_TEXT + "\n" + GO_SIG, [NoteVerifier.from_key_string(GO_VERIFIER)]) == GO_TEXT


def test_key_id_is_the_sha256_prefix_of_name_newline_alg_key():
    verifier = NoteVerifier.from_key_string(GO_VERIFIER)
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + verifier.raw).digest()[:4]
    assert key_id("PeterNeumann", verifier.raw) == expected == bytes.fromhex("c74f20a3")


def test_checkpoint_body_layout_and_round_trip(signer):
    cp = Checkpoint(ORIGIN, 12, ROOT, ("veil-ext one",))
    body = cp.body()
    assert body == f"{ORIGIN}\n12\n{base64.b64encode(ROOT).decode()}\nveil-ext one\n"
    assert parse_checkpoint(body) == cp
    note = sign_note(body, [signer])
    assert note.startswith(body + "\n\u2014 veil-test-log ")
    assert open_note(note, [signer.verifier]) == cp


def test_generated_keys_round_trip_and_never_show_the_private_key(signer):
    private, public = generate_key("k1")
    assert private.startswith("PRIVATE+KEY+k1+") and public.startswith("k1+")
    restored = NoteSigner.from_key_string(private)
    assert restored.verifier.key_string() == public
    assert "PRIVATE" not in repr(restored) and private.split("+", 4)[4] not in repr(restored)


@pytest.mark.parametrize("body, needle", [
    ("origin\n12\n", "2 lines"),
    ("origin\n12\nAAAA", "newline"),
    ("origin\n012\n" + base64.b64encode(ROOT).decode() + "\n", "canonical decimal"),
    ("origin\n-1\n" + base64.b64encode(ROOT).decode() + "\n", "canonical decimal"),
    ("origin\n 1\n" + base64.b64encode(ROOT).decode() + "\n", "canonical decimal"),
    ("origin\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n", "31 bytes"),
    ("origin\n1\n" + "not base64!" + "\n", "base64"),
    ("origin\n1\n" + base64.b64encode(ROOT).decode() + "\n\nextension\n", "empty"),
    ("\n1\n" + base64.b64encode(ROOT).decode() + "\n", "empty"),
    ("origin\n1\n" + base64.urlsafe_b64encode(b"\xfb" * 32).decode() + "\n", "base64"),
])
def test_malformed_checkpoints_are_rejected(body, needle):
    with pytest.raises(CheckpointError, match=needle):
        parse_checkpoint(body)


def test_a_signature_by_an_unknown_key_alone_is_not_enough(signer):
    note = sign_note(Checkpoint(ORIGIN, 1, ROOT).body(), [NoteSigner.generate("stranger")])
    with pytest.raises(CheckpointError, match="no signature by a trusted key.*stranger"):
        open_note(note, [signer.verifier])


def test_unknown_signatures_are_ignored_beside_a_good_one(signer):
    body = Checkpoint(ORIGIN, 1, ROOT).body()
    note = sign_note(body, [NoteSigner.generate("witness"), signer])
    assert open_note(note, [signer.verifier]).size == 1


def test_a_bad_signature_by_a_known_key_is_an_error(signer):
    note = sign_note(Checkpoint(ORIGIN, 1, ROOT).body(), [signer])
    forged = note.replace(f"{ORIGIN}\n1\n", f"{ORIGIN}\n2\n")
    with pytest.raises(CheckpointError, match="does not verify"):
        open_note(forged, [signer.verifier])


def test_same_name_other_key_is_not_trusted(signer):
    impostor = NoteSigner.generate(signer.name)
    note = sign_note(Checkpoint(ORIGIN, 1, ROOT).body(), [impostor])
    with pytest.raises(CheckpointError, match="no signature by a trusted key"):
        open_note(note, [signer.verifier])


@pytest.mark.parametrize("mangle, needle", [
    (lambda n: n.rstrip("\n"), "newline"),
    (lambda n: n.replace("\n\n", "\n"), "blank line"),
    (lambda n: n.replace("\u2014 ", "- "), "does not start"),
    (lambda n: n.split("\n\n")[0] + "\n\n", "0 signature lines"),
    (lambda n: n.replace("\u2014 veil-test-log ", "\u2014 veil-test-log  "), "signature line"),
])
def test_malformed_notes_are_rejected(signer, mangle, needle):
    note = sign_note(Checkpoint(ORIGIN, 1, ROOT).body(), [signer])
    with pytest.raises(CheckpointError, match=needle):
        open_note(mangle(note), [signer.verifier])


@pytest.mark.parametrize("key, needle", [
    ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
    ("PeterNeumann+c74f20a3+AhpjZA==", "Ed25519"),
    ("PeterNeumann", "expected"),
    ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "without spaces"),
])
def test_malformed_verifier_keys_are_rejected(key, needle):
    with pytest.raises(CheckpointError, match=needle):
        NoteVerifier.from_key_string(key)


# ------------------------------------------------------------------ random and mutated input

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_raises_only_checkpoint_error(text):
    try:
        parse_checkpoint(text)
    except CheckpointError:
        pass
    try:
        open_note(text, [NoteVerifier.from_key_string(GO_VERIFIER)])
    except CheckpointError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_mutated_character_of_a_signed_checkpoint_is_refused(data):
    signer = NoteSigner.from_key_string(GO_SIGNER)
    note = sign_note(Checkpoint(ORIGIN, 42, ROOT).body(), [signer])
    i = data.draw(st.integers(0, len(note) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != note[i]))
    mutated = note[:i] + replacement + note[i + 1:]
    try:
        cp = open_note(mutated, [signer.verifier])
    except CheckpointError:
        return
    assert cp == Checkpoint(ORIGIN, 42, ROOT)     # only an equivalent base64 spelling could pass
