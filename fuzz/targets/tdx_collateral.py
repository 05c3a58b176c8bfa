"""Intel collateral: the nine-field JSON, PCS response bodies, TCB info and QE identity: only ParseError.

The first byte picks the entry point, the rest is the document.
"""

from __future__ import annotations

from attestation.collateral.intel import load_intel_collateral_json, split_pcs_body
from attestation.errors import CollateralError, ParseError
from attestation.tdx import pcs


def _pcs(body: bytes) -> None:
    for key, parse in (("tcbInfo", pcs.parse_tcb_info), ("enclaveIdentity", pcs.parse_qe_identity)):
        try:
            signed, _ = split_pcs_body(body, key, structure="fuzz")
        except ParseError:
            continue
        parse(signed)


ENTRY = (load_intel_collateral_json, pcs.parse_tcb_info, pcs.parse_qe_identity, _pcs)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    try:
        ENTRY[data[0] % len(ENTRY)](data[1:])
    except (ParseError, CollateralError):
        pass
