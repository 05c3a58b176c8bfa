"""The whole TDX verifier on mutated real quotes, with real Intel collateral and anchors: only AttestationError.

Parsing, the PCK chain and its SGX extension, collateral matching and TCB
evaluation all run on attacker-controlled bytes before (or instead of) a
signature failing.
"""

from __future__ import annotations

from attestation.anchors import vendor_anchors
from attestation.collateral import StaticCollateral
from attestation.collateral.intel import load_intel_collateral_json
from attestation.errors import AttestationError
from attestation.evidence import Evidence
from attestation.options import VerifyOptions
from attestation.verify import verify

from ._fixed import AT_TDX, DATA

_OPTS = VerifyOptions(anchors=vendor_anchors(),
                      collateral=StaticCollateral((load_intel_collateral_json((DATA / "tdx_collateral.json")
                                                                              .read_bytes()),)),
                      at=AT_TDX)


def test_one_input(data: bytes) -> None:
    try:
        verify(Evidence("tdx", data), _OPTS)
    except AttestationError:
        pass
