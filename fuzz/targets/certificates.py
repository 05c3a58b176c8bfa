"""Certificates from evidence and collateral: PEM chains (PCK, issuer chains) and the Intel SGX extension.

Only ParseError may come out. The first byte picks the entry point.
"""

from __future__ import annotations

from attestation.collateral.intel import issuer_chain
from attestation.errors import ParseError
from attestation.tdx.pck import load_chain, parse_pck_chain, parse_sgx_extension


def _issuer_chain(data: bytes) -> None:
    load_chain(issuer_chain(data), "fuzz issuer chain")


ENTRY = (parse_pck_chain, parse_sgx_extension, _issuer_chain)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    try:
        ENTRY[data[0] % len(ENTRY)](data[1:])
    except ParseError:
        pass
