"""SEV-SNP ATTESTATION_REPORT v2/v3/v5 (attestation.snp.abi.parse_report) and its description: only ParseError."""

from __future__ import annotations

from attestation.errors import ParseError
from attestation.snp.abi import describe, parse_report


def test_one_input(data: bytes) -> None:
    try:
        describe(parse_report(data))
    except ParseError:
        pass
