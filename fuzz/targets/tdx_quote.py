"""TDX quote v4/v5 wire format (attestation.tdx.abi.parse_quote) and the PCK chain in it: only ParseError."""

from __future__ import annotations

from attestation.errors import ParseError
from attestation.tdx.abi import parse_quote
from attestation.tdx.pck import parse_pck_chain


def test_one_input(data: bytes) -> None:
    try:
        quote = parse_quote(data)
    except ParseError:
        return
    try:
        parse_pck_chain(quote.signature.qe_cert.pck_chain_pem)
    except ParseError:
        pass
