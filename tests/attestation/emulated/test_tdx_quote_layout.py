"""Emulated TDX quotes against the byte layout of the Intel TDX DCAP Quoting Library API, Appendix 4/5.

Offsets are read here directly, independent of attestation.tdx's parser.
"""

from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestation.emulated.pck import SGX_EXTENSION_OID

INTEL_QE_VENDOR = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")


def _u16(b, o): return struct.unpack_from("<H", b, o)[0]
def _u32(b, o): return struct.unpack_from("<I", b, o)[0]


def _verify_raw(public_key, sig: bytes, data: bytes) -> None:
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))


def _p256(raw: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw)


def _split(quote: bytes):
    """(signed bytes, body offset, body size, signature data) by the spec's offsets."""
    if _u16(quote, 0) == 4:
        return quote[:0x278], 0x30, 584, quote[0x27C:0x27C + _u32(quote, 0x278)]
    size = _u32(quote, 0x32)
    return quote[:0x36 + size], 0x36, size, quote[0x3A + size:0x3A + size + _u32(quote, 0x36 + size)]


def test_v4_header_and_body_offsets(vendor, report_data):
    mrtd, rtmr2 = b"\x01" * 48, b"\x02" * 48
    quote = vendor.tdx_quote(report_data, mrtd=mrtd, rtmr2=rtmr2, mrconfigid=b"\x03" * 48)
    assert struct.unpack_from("<HHI", quote, 0) == (4, 2, 0x81)
    assert quote[0x0C:0x1C] == INTEL_QE_VENDOR
    assert quote[0xB8:0xE8] == mrtd                   # MRTD
    assert quote[0xE8:0x118] == b"\x03" * 48          # MRCONFIGID
    assert quote[0x1D8:0x208] == rtmr2                # RTMR2
    assert quote[0x238:0x278] == report_data          # REPORTDATA
    td_attributes = struct.unpack_from("<Q", quote, 0xA8)[0]
    assert td_attributes == 1 << 28                   # SEPT_VE_DISABLE, not DEBUG
    assert len(quote) == 0x27C + _u32(quote, 0x278)


def test_v5_td15_body_carries_svn2_and_mrservicetd(vendor, report_data):
    quote = vendor.tdx_quote(report_data, version=5, tee_tcb_svn2=bytes([9]) + bytes(15),
                             mrservicetd=b"\x07" * 48)
    assert _u16(quote, 0) == 5
    assert (_u16(quote, 0x30), _u32(quote, 0x32)) == (3, 648)
    body = quote[0x36:0x36 + 648]
    assert body[0x208:0x248] == report_data
    assert body[0x248:0x258] == bytes([9]) + bytes(15)
    assert body[0x258:0x288] == b"\x07" * 48
    assert _u32(quote, 0x2BE) == len(quote) - 0x2C2   # signature data length at 0x2BE (spec §3.2)


@pytest.mark.parametrize("version", [4, 5])
def test_signature_chain_of_custody(vendor, report_data, version):
    quote = vendor.tdx_quote(report_data, version=version)
    signed, _, _, sig = _split(quote)
    att_key = sig[0x40:0x80]
    _verify_raw(_p256(att_key), sig[:0x40], signed)                       # attestation key signs header‖body
    assert _u16(sig, 0x80) == 6
    cert_data = sig[0x86:0x86 + _u32(sig, 0x82)]
    qe_report, qe_sig = cert_data[:384], cert_data[384:448]
    auth_size = _u16(cert_data, 0x1C0)
    auth = cert_data[0x1C2:0x1C2 + auth_size]
    assert auth_size == 32
    assert qe_report[0x140:0x160] == hashlib.sha256(att_key + auth).digest()   # binding
    assert qe_report[0x160:0x180] == bytes(32)
    inner = 0x1C2 + auth_size
    assert _u16(cert_data, inner) == 5
    chain = x509.load_pem_x509_certificates(cert_data[inner + 6:inner + 6 + _u32(cert_data, inner + 2)])
    cns = [c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value for c in chain]
    assert cns == ["Intel SGX PCK Certificate", "Intel SGX PCK Platform CA", "Intel SGX Root CA"]
    _verify_raw(chain[0].public_key(), qe_sig, qe_report)                 # PCK signs the QE report
    assert chain[2].subject == chain[2].issuer == vendor.intel_anchor().certificate.subject


def test_pck_extension_states_fmspc_and_tcb(vendor, report_data):
    quote = vendor.tdx_quote(report_data, fmspc="00a06f000000")
    pem = quote[quote.index(b"-----BEGIN CERTIFICATE-----"):]
    leaf = x509.load_pem_x509_certificates(pem)[0]
    ext = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXTENSION_OID)).value.value
    assert bytes.fromhex("060a2a864886f84d010d0104040600a06f000000") in ext   # .4 FMSPC OCTET STRING
    assert bytes.fromhex("060b2a864886f84d010d01021102010b") in ext            # .2.17 PCESVN 11
    org = leaf.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value
    assert org == "Veil Emulated Vendor"


def test_debug_td_sets_bit_zero(vendor, report_data):
    quote = vendor.tdx_quote(report_data, td_attributes=(1 << 28) | 1)
    assert struct.unpack_from("<Q", quote, 0xA8)[0] & 1


@pytest.mark.parametrize("bad", [b"", bytes(63), bytes(65)])
def test_report_data_is_never_padded(vendor, bad):
    with pytest.raises(ValueError, match="64 bytes"):
        vendor.tdx_quote(bad)
