"""Chain, CRL and binding logic against a locally generated AMD-like hierarchy.

We can't sign as AMD, so the real reports are re-signed with local VCEK/VLEK keys
whose certificates carry AMD's extensions and chain to a local "ARK-Milan"
configured as an emulated anchor.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from attestation.anchors import vendor_anchors
from attestation.collateral import StaticCollateral
from attestation.errors import CollateralError, VerificationError
from attestation.snp import chain as chains
from attestation.snp.abi import parse_report
from attestation.snp.certtable import build_cert_table
from attestation.snp.verify import clear_caches, verify_report
from tests.attestation.snp.snp_support import (NOW, amd_extensions, issue, options, read_report,
                                               sign_report)

MILAN_V2 = "virtee_milan_v2/report_milan.hex"        # CHIP_ID d49554ec…, TCB bl 3 tee 0 snp 8 ucode 115
AWS_VLEK_V3 = "trustee_aws_vlek_milan_v3/test-vlek-report.bin"   # TCB bl 4 tee 0 snp 24 ucode 217


def _vcek(local, report_bytes: bytes, *, tcb=(3, 0, 8, 115), hwid=None, **kw):
    key = ec.generate_private_key(ec.SECP384R1())
    chip = parse_report(report_bytes).chip_id
    cert = issue("SEV-VCEK", key, "SEV-Milan", local.ask_key, extensions=amd_extensions(
        product_name="Milan-B0", tcb=tcb, hwid=chip if hwid is None else hwid), **kw)
    return key, cert


def _vlek(local, *, csp_id="CN=test-csp", hwid=None):
    key = ec.generate_private_key(ec.SECP384R1())
    cert = issue("SEV-VLEK", key, "SEV-VLEK-Milan", local.ask_key, extensions=amd_extensions(
        product_name="Milan", tcb=(4, 0, 24, 217), csp_id=csp_id, hwid=hwid))
    return key, cert


@pytest.fixture()
def signed_v2(evidence_dir, local_amd):
    """(report bytes re-signed by a local VCEK, that VCEK as DER)."""
    body = read_report(evidence_dir, MILAN_V2)
    key, cert = _vcek(local_amd, body)
    return sign_report(body, key), cert.public_bytes(Encoding.DER), cert


def _run(local, data: bytes, certs, **kw):
    return verify_report(parse_report(data), options(anchors=local.anchors, **kw),
                         supplied_certificates=tuple(certs))


def test_local_hierarchy_verifies_as_emulated(local_amd, signed_v2):
    data, der, _ = signed_v2
    claims = _run(local_amd, data, [der])
    assert claims.anchor.kind == "emulated" and claims.anchor.name == "emulated-amd-milan"
    assert claims.snp.product == "Milan"


def test_vendor_and_emulated_anchors_side_by_side(local_amd, signed_v2):
    data, der, _ = signed_v2
    claims = verify_report(parse_report(data), options(anchors=vendor_anchors() + local_amd.anchors),
                           supplied_certificates=(der,))
    assert claims.anchor.kind == "emulated"
    with pytest.raises(VerificationError) as info:   # the vendor anchor alone does not accept it
        verify_report(parse_report(data), options(), supplied_certificates=(der,))
    assert info.value.check == "snp.vcek_chain"


# --------------------------------------------------------------------------- revocation

def _crl_opts(local, crl: bytes):
    return {"collateral": StaticCollateral(snp_crls={("Milan", "vcek"): crl}), "check_revocation": True}


def test_current_crl_without_entries_passes(local_amd, signed_v2):
    data, der, cert = signed_v2
    crl = local_amd.crl(revoked=(12345,))
    claims = _run(local_amd, data, [der], **_crl_opts(local_amd, crl))
    assert "snp.revocation_not_checked" not in claims.warnings
    assert claims.collateral_window.not_after == NOW + timedelta(days=30)     # the CRL's nextUpdate
    assert claims.collateral_window.not_before == NOW - timedelta(days=1)       # the CRL's thisUpdate


def test_revoked_ask_is_rejected(local_amd, signed_v2):
    data, der, _ = signed_v2
    crl = local_amd.crl(revoked=(local_amd.ask.serial_number,))
    with pytest.raises(VerificationError) as info:
        _run(local_amd, data, [der], **_crl_opts(local_amd, crl))
    assert info.value.check == "snp.revoked" and "SEV-Milan" in info.value.message


def test_revoked_vcek_is_rejected(local_amd, signed_v2):
    data, der, cert = signed_v2
    crl = local_amd.crl(revoked=(cert.serial_number,))
    with pytest.raises(VerificationError, match="snp.revoked"):
        _run(local_amd, data, [der], **_crl_opts(local_amd, crl))


def test_crl_signed_by_another_key_is_rejected(local_amd, signed_v2):
    data, der, _ = signed_v2
    crl = local_amd.crl(signer_key=local_amd.ask_key)
    with pytest.raises(VerificationError) as info:
        _run(local_amd, data, [der], **_crl_opts(local_amd, crl))
    assert info.value.check == "snp.crl"


def test_stale_crl_is_rejected(local_amd, signed_v2):
    data, der, _ = signed_v2
    crl = local_amd.crl(last=NOW - timedelta(days=60), next_=NOW - timedelta(days=30))
    with pytest.raises(VerificationError) as info:
        _run(local_amd, data, [der], **_crl_opts(local_amd, crl))
    assert info.value.check == "snp.crl_expired" and info.value.actual == NOW.isoformat()


def test_missing_crl_fails_closed(local_amd, signed_v2):
    data, der, _ = signed_v2
    with pytest.raises(CollateralError, match="Milan VCEK"):
        _run(local_amd, data, [der], check_revocation=True)


# --------------------------------------------------------------------------- chain and binding

def test_pkcs1_signed_vcek_is_rejected(evidence_dir, local_amd):
    body = read_report(evidence_dir, MILAN_V2)
    key = ec.generate_private_key(ec.SECP384R1())
    chip = parse_report(body).chip_id
    cert = issue("SEV-VCEK", key, "SEV-Milan", local_amd.ask_key,
                 extensions=amd_extensions(product_name="Milan-B0", tcb=(3, 0, 8, 115), hwid=chip))
    pkcs1 = cert  # re-sign the same TBS content with PKCS#1 v1.5
    from cryptography import x509
    builder = (x509.CertificateBuilder().subject_name(pkcs1.subject).issuer_name(pkcs1.issuer)
               .public_key(key.public_key()).serial_number(pkcs1.serial_number)
               .not_valid_before(pkcs1.not_valid_before_utc).not_valid_after(pkcs1.not_valid_after_utc))
    for ext in pkcs1.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    pkcs1 = builder.sign(local_amd.ask_key, hashes.SHA384(), rsa_padding=padding.PKCS1v15())
    with pytest.raises(VerificationError) as info:
        _run(local_amd, sign_report(body, key), [pkcs1.public_bytes(Encoding.DER)])
    assert info.value.check == "snp.vcek_chain" and info.value.expected == "RSASSA-PSS SHA-384"


def test_vcek_signed_by_an_impostor_ask_is_rejected(evidence_dir, local_amd):
    body = read_report(evidence_dir, MILAN_V2)
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = ec.generate_private_key(ec.SECP384R1())
    cert = issue("SEV-VCEK", key, "SEV-Milan", impostor, extensions=amd_extensions(
        product_name="Milan-B0", tcb=(3, 0, 8, 115), hwid=parse_report(body).chip_id))
    with pytest.raises(VerificationError, match="snp.vcek_chain"):
        _run(local_amd, sign_report(body, key), [cert.public_bytes(Encoding.DER)])


def test_tcb_mismatch_names_both_values(evidence_dir, local_amd):
    body = read_report(evidence_dir, MILAN_V2)
    key, cert = _vcek(local_amd, body, tcb=(3, 0, 8, 116))
    with pytest.raises(VerificationError) as info:
        _run(local_amd, sign_report(body, key), [cert.public_bytes(Encoding.DER)])
    assert (info.value.check, info.value.expected, info.value.actual) == (
        "snp.tcb_mismatch", "bl 3, tee 0, snp 8, ucode 116", "bl 3, tee 0, snp 8, ucode 115")


def test_expired_vcek_is_rejected(evidence_dir, local_amd):
    body = read_report(evidence_dir, MILAN_V2)
    key, cert = _vcek(local_amd, body, not_after=NOW - timedelta(seconds=1))
    with pytest.raises(VerificationError) as info:
        _run(local_amd, sign_report(body, key), [cert.public_bytes(Encoding.DER)])
    assert info.value.check == "snp.cert_expired" and "SEV-VCEK" in info.value.message


def test_supplied_ark_that_differs_from_the_pinned_one_is_rejected(evidence_dir, local_amd, signed_v2):
    data, der, _ = signed_v2
    amd_chain = (evidence_dir / "snp/virtee_milan_v2/cert_chain_milan.pem").read_bytes()  # the real ASK+ARK
    with pytest.raises(VerificationError) as info:
        _run(local_amd, data, [der, amd_chain])
    assert info.value.check == "snp.supplied_chain_mismatch"


@pytest.mark.parametrize("csp_id,hwid,check", [(None, None, "snp.vlek_csp_id"),
                                               ("CN=test-csp", bytes(64), "snp.vlek_hwid"),
                                               ("CN=test-csp", None, None)])
def test_vlek_binding(evidence_dir, local_amd, csp_id, hwid, check):
    body = read_report(evidence_dir, AWS_VLEK_V3)
    key, cert = _vlek(local_amd, csp_id=csp_id, hwid=hwid)
    run = lambda: _run(local_amd, sign_report(body, key), [cert.public_bytes(Encoding.DER)])  # noqa: E731
    if check is None:
        claims = run()
        assert claims.snp.csp_id == "CN=test-csp" and claims.snp.signer_info.signing_key == "vlek"
        assert {"snp.vmpl_nonzero", "snp.chip_id_masked"} <= set(claims.warnings)
    else:
        with pytest.raises(VerificationError) as info:
            run()
        assert info.value.check == check


def test_certificates_from_an_extended_report(local_amd, signed_v2):
    data, der, _ = signed_v2
    table = build_cert_table([("vcek", der), ("ask", local_amd.ask.public_bytes(Encoding.DER)),
                              ("ark", local_amd.ark.public_bytes(Encoding.DER))])
    report = parse_report(data + table)
    assert set(report.certificates) == {"vcek", "ask", "ark"}
    claims = verify_report(report, options(anchors=local_amd.anchors))
    assert claims.anchor.kind == "emulated"


# --------------------------------------------------------------------------- caching

def test_cached_links_still_check_time(evidence_dir, local_amd):
    body = read_report(evidence_dir, MILAN_V2)
    key, cert = _vcek(local_amd, body, not_after=NOW + timedelta(days=1))
    data, der = sign_report(body, key), cert.public_bytes(Encoding.DER)
    clear_caches()
    _run(local_amd, data, [der])
    assert (der, local_amd.ask.public_bytes(Encoding.DER)) in chains._verified_links
    with pytest.raises(VerificationError, match="snp.cert_expired"):
        _run(local_amd, data, [der], at=NOW + timedelta(days=2))
    clear_caches()
    assert (der, local_amd.ask.public_bytes(Encoding.DER)) not in chains._verified_links
