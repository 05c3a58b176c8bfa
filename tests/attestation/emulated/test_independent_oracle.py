"""An independent verifier agrees: dcap-qvl (Rust port of Intel's QVL) accepts emulated
TDX quotes and collateral when given the emulated root, and rejects them with Intel's."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from attestation.verify import verify

dcap_qvl = pytest.importorskip("dcap_qvl")


def _collateral(c):
    return dcap_qvl.QuoteCollateralV3(
        pck_crl_issuer_chain=c.pck_crl_issuer_chain.decode(), root_ca_crl=c.root_ca_crl,
        pck_crl=c.pck_crl, tcb_info_issuer_chain=c.tcb_info_issuer_chain.decode(),
        tcb_info=c.tcb_info.decode(), tcb_info_signature=c.tcb_info_signature,
        qe_identity_issuer_chain=c.qe_identity_issuer_chain.decode(),
        qe_identity=c.qe_identity.decode(), qe_identity_signature=c.qe_identity_signature)


@pytest.mark.parametrize("version", [4, 5])
def test_dcap_qvl_accepts_emulated_quote_under_emulated_root(vendor, at, report_data, version):
    quote = vendor.tdx_quote(report_data, version=version)
    collateral = _collateral(vendor.tdx_collateral(at=at))
    root = vendor.intel_anchor().certificate.public_bytes(Encoding.DER)
    result = dcap_qvl.verify_with_root_ca(quote, collateral, root, int(at.timestamp()))
    assert result.status == "UpToDate"
    with pytest.raises(Exception):
        dcap_qvl.verify(quote, collateral, int(at.timestamp()))       # Intel's real root


def test_masked_chip_id_verifies_with_the_supplied_vcek(vendor, emulated_opts, report_data):
    evidence = vendor.evidence("snp", report_data, mask_chip_key=True)
    assert not any(evidence.report[0x1A0:0x1E0])
    result = verify(evidence, emulated_opts)
    assert result.verified, result.errors
    assert result.claims.snp.signer_info.mask_chip_key
