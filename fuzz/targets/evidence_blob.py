"""Evidence as it arrives (raw, hex or base64 text) and TEE detection: only ParseError."""

from __future__ import annotations

from attestation.errors import ParseError
from attestation.evidence import decode_blob, detect_tee


def test_one_input(data: bytes) -> None:
    try:
        detect_tee(decode_blob(data))
    except ParseError:
        pass
