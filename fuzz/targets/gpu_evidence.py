"""NVIDIA GPU evidence list JSON (`device_evidence_list`, with or without the "nvidia" wrapper): only ParseError."""

from __future__ import annotations

from attestation.errors import ParseError
from attestation.nvidia.evidence import parse_evidence_list


def test_one_input(data: bytes) -> None:
    try:
        parse_evidence_list(data)
    except ParseError:
        pass
