"""The SNP extended-report certificate table (GUID table from the host): only ParseError."""

from __future__ import annotations

from attestation.errors import ParseError
from attestation.snp.certtable import looks_like_cert_table, parse_cert_table


def test_one_input(data: bytes) -> None:
    looks_like_cert_table(data)
    try:
        parse_cert_table(data)
    except ParseError:
        pass
