"""The whole SNP verifier on a report plus host-supplied certificates, with AMD's real anchors.

Input: the 1184-byte report, then the supplied certificate blob (DER or PEM,
as a host hands it over). Only AttestationError may come out.
"""

from __future__ import annotations

from attestation.anchors import vendor_anchors
from attestation.collateral import StaticCollateral
from attestation.errors import AttestationError
from attestation.evidence import SNP_REPORT_SIZE, Evidence
from attestation.options import VerifyOptions
from attestation.verify import verify

from ._fixed import AT_SNP

_OPTS = VerifyOptions(anchors=vendor_anchors(), collateral=StaticCollateral(()), at=AT_SNP,
                      check_revocation=False)


def test_one_input(data: bytes) -> None:
    report, certs = data[:SNP_REPORT_SIZE], data[SNP_REPORT_SIZE:]
    try:
        verify(Evidence("snp", report, (certs,) if certs else ()), _OPTS)
    except AttestationError:
        pass
