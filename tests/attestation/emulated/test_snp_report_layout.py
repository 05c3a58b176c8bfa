"""Emulated SNP reports and VCEK/VLEKs against the AMD SEV-SNP Firmware ABI spec (56860) and VCEK/VLEK spec (57230).

Offsets are read here directly, independent of attestation.snp's parser.
"""

from __future__ import annotations

import struct
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestation.collateral import SnpTcbParts

AMD = "1.3.6.1.4.1.3704.1"


def _ext(cert: x509.Certificate, suffix: str) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(f"{AMD}.{suffix}")).value.value
    except x509.ExtensionNotFound:
        return None


def _load(der: bytes) -> x509.Certificate:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x509.load_der_x509_certificate(der)


def test_milan_v3_fields_at_spec_offsets(vendor, report_data):
    measurement, host_data = b"\x5a" * 48, b"\xa5" * 32
    report, _ = vendor.snp_report(report_data, measurement=measurement, host_data=host_data)
    assert len(report) == 0x4A0
    version, _, policy = struct.unpack_from("<IIQ", report, 0)
    assert (version, policy) == (3, 0x30000)
    assert struct.unpack_from("<II", report, 0x30) == (0, 1)             # VMPL, SIGNATURE_ALGO
    assert report[0x050:0x090] == report_data
    assert report[0x090:0x0C0] == measurement
    assert report[0x0C0:0x0E0] == host_data
    assert report[0x180:0x188] == bytes([3, 0, 0, 0, 0, 0, 8, 115])     # REPORTED_TCB, Milan layout
    assert report[0x188:0x18B] == bytes([0x19, 0x01, 0x01])              # CPUID family/model/step
    assert report[0x1A0:0x1E0] == vendor.chip_id("Milan")


def test_must_be_zero_ranges(vendor, report_data):
    report, _ = vendor.snp_report(report_data, version=5)
    for start, end in [(0x04C, 0x050), (0x18B, 0x1A0), (0x1EB, 0x1EC), (0x1EF, 0x1F0),
                       (0x208, 0x2A0), (0x330, 0x4A0)]:
        assert not any(report[start:end]), hex(start)


def test_signature_is_little_endian_p384_over_signed_part(vendor, report_data):
    report, vcek = vendor.snp_report(report_data)
    r = int.from_bytes(report[0x2A0:0x2E8], "little")
    s = int.from_bytes(report[0x2E8:0x330], "little")
    _load(vcek).public_key().verify(encode_dss_signature(r, s), report[:0x2A0], ec.ECDSA(hashes.SHA384()))


def test_turin_tcb_layout_and_short_hwid(vendor, report_data):
    tcb = SnpTcbParts(fmc=2, bootloader=3, tee=4, snp=5, microcode=6)
    report, vcek_der = vendor.snp_report(report_data, product="Turin", version=5, reported_tcb=tcb)
    assert report[0x180:0x188] == bytes([2, 3, 4, 5, 0, 0, 0, 6])
    assert report[0x188] == 0x1A
    assert not any(report[0x1A8:0x1E0])                                  # CHIP_ID bytes 8-63 zero
    vcek = _load(vcek_der)
    assert _ext(vcek, "4") == report[0x1A0:0x1A8]                          # 8-byte raw hwID
    assert _ext(vcek, "3.9") == bytes.fromhex("020102")                    # fmcSPL INTEGER 2
    assert _ext(vcek, "3.4") is None


def test_vcek_extensions_and_chain(vendor, report_data):
    report, vcek_der = vendor.snp_report(report_data, product="Genoa", version=5)
    vcek = _load(vcek_der)
    assert _ext(vcek, "2") == b"\x16\x05Genoa"                              # IA5String productName
    assert _ext(vcek, "3.1") == bytes.fromhex("02010a")                    # blSPL 10
    assert _ext(vcek, "3.8") == bytes.fromhex("020154")                    # ucodeSPL 84
    assert _ext(vcek, "4") == report[0x1A0:0x1E0]                          # 64-byte raw hwID
    ask = vendor.amd_anchor("Genoa").intermediate("SEV-Genoa")
    assert vcek.issuer == ask.subject
    assert vcek.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "SEV-VCEK"
    vcek.verify_directly_issued_by(ask)


def test_vlek_signer_info_and_csp_id(vendor, report_data):
    report, vlek_der = vendor.snp_report(report_data, signer="vlek", csp_id="CN=emulated-csp")
    assert (struct.unpack_from("<I", report, 0x48)[0] >> 2) & 0x7 == 1   # SIGNING_KEY = VLEK
    vlek = _load(vlek_der)
    assert _ext(vlek, "5") == b"\x16\x0fCN=emulated-csp"
    assert _ext(vlek, "4") is None
    assert vlek.issuer == vendor.amd_anchor("Milan").intermediate("SEV-VLEK-Milan").subject


def test_ark_is_self_signed_rsa_pss(vendor):
    ark = vendor.amd_anchor("Milan").certificate
    assert ark.subject == ark.issuer
    assert ark.public_key().key_size == 4096
    assert ark.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSASSA_PSS
    assert ark.signature_algorithm_parameters._salt_length == 48
    ark.verify_directly_issued_by(ark)


def test_v2_has_no_cpuid(vendor, report_data):
    report, _ = vendor.snp_report(report_data, version=2)
    assert struct.unpack_from("<I", report, 0)[0] == 2
    assert not any(report[0x188:0x1A0])


@pytest.mark.parametrize("field,value", [("measurement", bytes(47)), ("host_data", bytes(33))])
def test_wrong_field_sizes_are_rejected(vendor, report_data, field, value):
    with pytest.raises(ValueError, match=field):
        vendor.snp_report(report_data, **{field: value})
