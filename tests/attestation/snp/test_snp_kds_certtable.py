"""VCEK/VLEK extensions (incl. the Turin VCEK), the tiny DER decoder, KDS URLs, the certificate table."""

from __future__ import annotations

import pytest

from attestation.errors import ParseError
from attestation.snp import chain as chains
from attestation.snp.abi import parse_report
from attestation.snp.certtable import GUIDS, build_cert_table, parse_cert_table
from attestation.snp.fields import decode_tcb, product_from_cpuid, product_from_name
from attestation.snp.kds import (cert_chain_url, crl_url, decode_hwid, der_ia5string, der_integer,
                                 load_endorsement, parse_extensions, vcek_url)
from attestation.snp.verify import check_tcb
from tests.attestation.snp.snp_support import NOW, options, read_report


def _cert(evidence_dir, relative):
    return load_endorsement((evidence_dir / "snp" / relative).read_bytes())


def test_turin_vcek_extensions_and_chain(evidence_dir):
    cert = _cert(evidence_dir, "virtee_turin_vcek_only/vcek_turin.der")
    ext = parse_extensions(cert)
    assert ext.product_name == "Turin" and ext.struct_version == 1
    assert (ext.fmc_spl, ext.bl_spl, ext.tee_spl, ext.snp_spl, ext.ucode_spl) == (0, 0, 0, 0, 9)
    assert ext.hwid == bytes.fromhex("1e550a8ee5cf9f4d") and ext.csp_id is None
    assert ext.reserved_spls[0] is None                           # .3.4 is absent on Turin
    chain = chains.build_chain(cert, product="Turin", signer="vcek", anchors=options().anchors)
    assert chain.anchor.name == "amd-ark-turin"
    chains.check_chain_validity(chain, NOW)
    # the Turin TCB layout: byte 0 fmc, 1 bl, 2 tee, 3 snp, 7 ucode
    reported = decode_tcb(int.from_bytes(bytes([0, 0, 0, 0, 0, 0, 0, 9]), "little"), "Turin")
    check_tcb(reported, ext)
    assert vcek_url("Turin", bytes.fromhex("1e550a8ee5cf9f4d") + bytes(56), fmc=0, bl=0, tee=0, snp=0,
                    ucode=9) == ("https://kdsintf.amd.com/vcek/v1/Turin/1e550a8ee5cf9f4d"
                                 "?fmcSPL=0&blSPL=0&teeSPL=0&snpSPL=0&ucodeSPL=9")


def test_turin_tcb_layout_differs_from_milan():
    raw = int.from_bytes(bytes([1, 2, 3, 4, 0, 0, 0, 5]), "little")
    turin, milan = decode_tcb(raw, "Turin"), decode_tcb(raw, "Milan")
    assert (turin.fmc, turin.bootloader, turin.tee, turin.snp, turin.microcode) == (1, 2, 3, 4, 5)
    assert (milan.fmc, milan.bootloader, milan.tee, milan.snp, milan.microcode) == (None, 1, 2, 0, 5)


def test_fake_vcek_hwid_as_octet_string(evidence_dir):
    ext = parse_extensions(_cert(evidence_dir, "negative/test-vcek-invalid-new.der"))
    assert ext.hwid == bytes(range(64)) and ext.ucode_spl == 30     # DER OCTET STRING form
    ext = parse_extensions(_cert(evidence_dir, "negative/test-vcek-invalid-legacy.der"))
    assert ext.hwid == bytes(range(64)) and (ext.bl_spl, ext.snp_spl, ext.ucode_spl) == (3, 10, 169)


def test_vlek_extensions(evidence_dir):
    ext = parse_extensions(_cert(evidence_dir, "trustee_aws_vlek_milan_v3/test-vlek.der"))
    assert ext.product_name == "Milan" and ext.hwid is None
    assert ext.csp_id == "CN=cc-us-east-2.amazonaws.com" and ext.ucode_spl == 217


@pytest.mark.parametrize("data,value", [(b"\x02\x01\x03", 3), (b"\x02\x02\x00\xd9", 217),
                                        (b"\x02\x01\x00", 0),
                                        (b"\x02\x81\x80" + b"\x01" * 128, int.from_bytes(b"\x01" * 128, "big"))])
def test_der_integer(data, value):
    assert der_integer(data, "x") == value


@pytest.mark.parametrize("data", [b"", b"\x02", b"\x02\x00", b"\x02\x02\x01", b"\x02\x01\x01\x00",
                                  b"\x04\x01\x01", b"\x02\x01\x80", b"\x02\x02\x00\x01",
                                  b"\x02\x81\x01\x01", b"\x02\x85\x00\x00\x00\x00\x01\x01"])
def test_der_integer_rejects(data):
    with pytest.raises(ParseError):
        der_integer(data, "blSPL")


def test_der_ia5string_and_hwid():
    assert der_ia5string(b"\x16\x05Genoa", "productName") == "Genoa"
    for bad in (b"\x0c\x05Genoa", b"\x16\x05Geno", b"\x16\x01\xff"):
        with pytest.raises(ParseError, match="productName"):
            der_ia5string(bad, "productName")
    assert decode_hwid(b"\x04\x08" + bytes(8)) == bytes(8)
    for bad in (bytes(63), b"\x04\x07" + bytes(7), b"\x04\x40" + bytes(63)):
        with pytest.raises(ParseError, match="hwID"):
            decode_hwid(bad)


def test_kds_urls():
    chip = bytes.fromhex("3ac3fe21") + bytes(60)
    assert vcek_url("Milan", chip, bl=2, tee=0, snp=5, ucode=68) == (
        f"https://kdsintf.amd.com/vcek/v1/Milan/{chip.hex()}?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68")
    assert cert_chain_url("Genoa") == "https://kdsintf.amd.com/vcek/v1/Genoa/cert_chain"
    assert cert_chain_url("Milan", "vlek") == "https://kdsintf.amd.com/vlek/v1/Milan/cert_chain"
    assert crl_url("Turin", "vlek") == "https://kdsintf.amd.com/vlek/v1/Turin/crl"
    with pytest.raises(ValueError):
        vcek_url("Turin", chip, bl=0, tee=0, snp=0, ucode=0)


def test_products():
    assert [product_from_cpuid(0x19, m) for m in (0x01, 0x11, 0xA1, 0x30)] == ["Milan", "Genoa", "Genoa", None]
    assert product_from_cpuid(0x1A, 0x02) == "Turin" and product_from_cpuid(0x17, 0) is None
    assert [product_from_name(n) for n in ("Milan-B0", "Genoa", "Turin", "Venice")] == [
        "Milan", "Genoa", "Turin", None]


# --------------------------------------------------------------------------- certificate table

def test_cert_table_round_trip():
    table = build_cert_table({"vcek": b"V" * 10, "ask": b"A" * 5, "ark": b"R" * 7,
                              "12345678-1234-5678-1234-567812345678": b"X"})
    assert parse_cert_table(table + bytes(100)) == {
        "vcek": b"V" * 10, "ask": b"A" * 5, "ark": b"R" * 7, "12345678-1234-5678-1234-567812345678": b"X"}
    assert table[:16] == GUIDS["vcek"].bytes
    assert parse_cert_table(bytes(24)) == {}


def _entry(guid, offset, length):
    return guid.bytes + offset.to_bytes(4, "little") + length.to_bytes(4, "little")


@pytest.mark.parametrize("data,field", [
    (_entry(GUIDS["vcek"], 48, 10), "entry"),                                     # no terminator
    (_entry(GUIDS["vcek"], 48, 100) + bytes(24) + bytes(10), "vcek certificate"),  # past the end
    (_entry(GUIDS["vcek"], 24, 8) + bytes(24) + bytes(10), "offset"),              # into the entry list
    (_entry(GUIDS["vcek"], 48, 0) + bytes(24), "length"),
    (_entry(GUIDS["vcek"], 72, 1) + _entry(GUIDS["vcek"], 72, 1) + bytes(24) + b"x", "GUID"),
    (_entry(GUIDS["vcek"], 0xFFFFFFFF, 0xFFFFFFFF) + bytes(24), "vcek certificate"),
])
def test_cert_table_bounds(data, field):
    with pytest.raises(ParseError) as info:
        parse_cert_table(data)
    assert info.value.field == field and info.value.structure == "SNP certificate table"


def test_unrelated_trailing_bytes_are_kept(evidence_dir):
    data = read_report(evidence_dir, "azure_genoa_v3/report.bin")
    report = parse_report(data + b"HCLA trailing")
    assert report.trailing == b"HCLA trailing" and not report.certificates
