"""NVIDIA SPDM GET_MEASUREMENTS request ‖ response (raw or hex text), and its description: only ParseError."""

from __future__ import annotations

from attestation.errors import ParseError
from attestation.nvidia.spdm import describe, parse_report


def test_one_input(data: bytes) -> None:
    try:
        describe(parse_report(data))
    except ParseError:
        pass
