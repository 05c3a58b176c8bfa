"""CRLs as collateral delivers them (DER, hex text or PEM): only ParseError."""

from __future__ import annotations

from attestation.collateral.intel import crl_der, pck_crl_ca
from attestation.errors import ParseError
from attestation.tdx.trust import load_crl


def test_one_input(data: bytes) -> None:
    try:
        der = crl_der(data)
        load_crl(der, "fuzz CRL")
        pck_crl_ca(der)
    except ParseError:
        pass
