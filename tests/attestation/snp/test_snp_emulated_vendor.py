"""The emulated vendor's SNP evidence goes through the production verifier (DESIGN invariant 6).

Covers what no real sample does: Turin reports (fmc SPL, 8-byte hwID), Genoa VLEKs, CRLs.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from attestation.collateral import StaticCollateral
from attestation.options import VerifyOptions
from attestation.verify import verify

AT = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def vendor(tmp_path_factory):
    emulated = pytest.importorskip("attestation.emulated.vendor")
    return emulated.EmulatedVendor.create(tmp_path_factory.mktemp("emulated-vendor"))


@pytest.mark.parametrize("product", ["Milan", "Genoa", "Turin"])
@pytest.mark.parametrize("signer", ["vcek", "vlek"])
def test_emulated_report_verifies_with_crl(vendor, product, signer):
    extra = {"csp_id": "CN=emulated-csp"} if signer == "vlek" else {}
    evidence = vendor.evidence("snp", b"\x5a" * 64, product=product, signer=signer, version=5, **extra)
    crl = vendor.snp_crl(product, signer, at=AT)
    opts = VerifyOptions(anchors=vendor.anchors(), at=AT,
                         collateral=StaticCollateral(snp_crls={(product, signer): crl}))
    result = verify(evidence, opts)
    assert result.verified, result.errors
    claims = result.claims
    assert claims.anchor.kind == "emulated" and claims.snp.product == product
    assert claims.snp.signer_info.signing_key == signer and claims.warnings == ()
    if product == "Turin":
        assert claims.snp.reported_tcb.fmc is not None


def test_emulated_report_is_refused_by_the_vendor_anchors(vendor):
    from attestation.anchors import vendor_anchors
    evidence = vendor.evidence("snp", b"\x5a" * 64, product="Milan")
    opts = VerifyOptions(anchors=vendor_anchors(), collateral=StaticCollateral(), at=AT,
                         check_revocation=False)
    result = verify(evidence, opts)
    assert not result.verified and result.errors[0].code == "snp.vcek_chain"
