"""Signed checkpoints of the attestation log (C2SP signed-note form) and verifier keys: only CheckpointError."""

from __future__ import annotations

from keybroker.audit.checkpoint import NoteVerifier, open_note, parse_checkpoint, split_note
from keybroker.audit.errors import CheckpointError

from ._fixed import ed_key

VERIFIER = NoteVerifier("veil-fuzz.invalid/log", ed_key(4).public_key())


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for parse in (split_note, parse_checkpoint, NoteVerifier.from_key_string, lambda t: open_note(t, [VERIFIER])):
        try:
            parse(text)
        except CheckpointError:
            pass
