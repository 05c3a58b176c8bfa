"""Byte flips over the signed region and the signature, truncation, random and mutated input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation.errors import CollateralError, ParseError, VerificationError
from attestation.snp.abi import LAYOUT, REPORT_SIZE, describe, parse_report
from attestation.snp.certtable import build_cert_table
from attestation.snp.verify import verify_report
from tests.attestation.snp.snp_support import SAMPLES, options, read_report

SIGNATURE_ONLY = "snp.report_signature"


def _outcome(data: bytes, endorsement: bytes) -> str:
    try:
        verify_report(parse_report(data), options(), supplied_certificates=(endorsement,))
    except ParseError:
        return "parse"
    except VerificationError as exc:
        return exc.check
    except CollateralError:
        return "collateral"
    return "verified"


def _allowed(offset: int, version: int) -> set[str]:
    """What a flipped byte at `offset` may legitimately fail with (it must always fail)."""
    if offset < 0x004:
        return {"parse", "snp.product_unknown"}                       # VERSION: 2 ↔ 3 changes the layout
    if 0x008 <= offset < 0x010:
        return {"parse", SIGNATURE_ONLY}                              # POLICY: reserved bits are parse errors
    if 0x034 <= offset < 0x038 or 0x04C <= offset < 0x050:
        return {"parse"}                                              # SIGNATURE_ALGO, reserved
    if 0x048 <= offset < 0x04C:
        return {"parse", SIGNATURE_ONLY, "collateral"}                # SIGNER_INFO: VLEK asked, none given
    if 0x180 <= offset < 0x188:
        return {"snp.tcb_mismatch"}                                   # REPORTED_TCB
    if 0x188 <= offset < 0x1A0:
        return {"parse"} if version == 2 or offset >= 0x18B else {"snp.product_unknown", "snp.product_mismatch", SIGNATURE_ONLY}
    if 0x1A0 <= offset < 0x1E0:
        return {"snp.chip_id_mismatch"}
    if offset in (0x1EB, 0x1EF) or offset >= 0x208 or (0x1F8 <= offset < 0x208 and version < 5):
        return {"parse"}
    return {SIGNATURE_ONLY}


def _positions() -> list[int]:
    starts = {o for o, _, _ in LAYOUT if o < 0x2A0}
    return sorted(starts | {o + 1 for o in starts} | set(range(0, 0x2A0, 7)) | {0x29F})


@pytest.mark.parametrize("sample", [SAMPLES[0], SAMPLES[1], SAMPLES[2]], ids=lambda s: s.name)
def test_flips_in_the_signed_region_fail(evidence_dir, sample):
    data = read_report(evidence_dir, sample.report)
    cert = (evidence_dir / "snp" / sample.endorsement).read_bytes()
    assert _outcome(data, cert) == "verified"
    for offset in _positions():
        for mask in (0x01, 0x80):
            flipped = bytearray(data)
            flipped[offset] ^= mask
            got = _outcome(bytes(flipped), cert)
            assert got in _allowed(offset, sample.version), (hex(offset), mask, got)


def test_flips_in_the_signature_fail(evidence_dir):
    sample = SAMPLES[0]
    data = read_report(evidence_dir, sample.report)
    cert = (evidence_dir / "snp" / sample.endorsement).read_bytes()
    for offset in [*range(0x2A0, 0x330, 5), 0x2E7, 0x2E8, 0x32F]:
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        assert _outcome(bytes(flipped), cert) == SIGNATURE_ONLY, hex(offset)
    for offset in (0x330, 0x400, 0x49F):                              # reserved part of SIGNATURE
        flipped = bytearray(data)
        flipped[offset] ^= 0x01
        with pytest.raises(ParseError, match="SIGNATURE reserved"):
            parse_report(bytes(flipped))


@pytest.mark.parametrize("offset,size,name", LAYOUT, ids=[f"{n}@{o:x}" for o, _, n in LAYOUT])
def test_truncation_names_the_field(evidence_dir, offset, size, name):
    data = read_report(evidence_dir, SAMPLES[1].report)
    for cut in {offset, offset + size - 1}:
        with pytest.raises(ParseError) as info:
            parse_report(data[:cut])
        assert (info.value.field, info.value.offset) == (name, offset)


def test_unknown_versions_and_structural_fields(evidence_dir):
    data = bytearray(read_report(evidence_dir, SAMPLES[1].report))
    data[0x1F8:0x208] = bytes(16)                 # mitigation vectors are reserved before v5
    for version, ok in ((1, False), (2, True), (4, True), (6, False)):
        data[0:4] = version.to_bytes(4, "little")
        if version == 2:
            data[0x188:0x18B] = bytes(3)
        if ok:
            assert parse_report(bytes(data)).version == version
        else:
            with pytest.raises(ParseError, match="VERSION"):
                parse_report(bytes(data))


def _report_strategy():
    return st.sampled_from([s.report for s in SAMPLES])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=1400))
def test_random_bytes_raise_only_parse_error(blob):
    try:
        describe(parse_report(blob))
    except ParseError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=_report_strategy(), table=st.booleans(),
       edits=st.lists(st.tuples(st.integers(0, 0x4A0 + 200), st.integers(0, 255)), max_size=6),
       cut=st.integers(0, 0x4A0 + 200))
def test_mutated_reports_raise_only_parse_error(evidence_dir, which, table, edits, cut):
    data = bytearray(read_report(evidence_dir, which))
    if table:
        data += build_cert_table({"vcek": b"\x30\x82" + bytes(60), "ark": bytes(40)})
    for offset, value in edits:
        if offset < len(data):
            data[offset] = value
    try:
        report = parse_report(bytes(data[: max(cut, REPORT_SIZE - 8) if cut % 3 else len(data)]))
        describe(report)
    except ParseError:
        pass


@pytest.mark.parametrize("offset,value,field", [
    (0x008, (0x30000 & ~(1 << 17)).to_bytes(8, "little"), "POLICY"),      # reserved bit 17 cleared
    (0x008, (0x30000 | (1 << 26)).to_bytes(8, "little"), "POLICY"),       # bit 26 set
    (0x034, (2).to_bytes(4, "little"), "SIGNATURE_ALGO"),
    (0x048, (2 << 2).to_bytes(4, "little"), "SIGNER_INFO"),               # SIGNING_KEY 2 is reserved
    (0x048, (1 << 5).to_bytes(4, "little"), "SIGNER_INFO"),
    (0x04C, b"\x01", "reserved"),
    (0x18B, b"\x01", "reserved"),
    (0x1EB, b"\x01", "reserved"),
    (0x250, b"\x01", "reserved"),
])
def test_structural_fields_are_checked(evidence_dir, offset, value, field):
    data = bytearray(read_report(evidence_dir, SAMPLES[1].report))
    data[offset:offset + len(value)] = value
    with pytest.raises(ParseError) as info:
        parse_report(bytes(data))
    assert info.value.field == field and info.value.offset == offset


def test_v2_reserved_range_covers_the_cpuid_bytes(evidence_dir):
    data = bytearray(read_report(evidence_dir, SAMPLES[0].report))
    data[0x188] = 0x19
    with pytest.raises(ParseError) as info:
        parse_report(bytes(data))
    assert (info.value.field, info.value.offset) == ("reserved", 0x188)


def test_unsigned_report_is_rejected(evidence_dir):
    data = bytearray(read_report(evidence_dir, SAMPLES[1].report))
    data[0x048:0x04C] = (7 << 2).to_bytes(4, "little")
    report = parse_report(bytes(data))
    assert report.signer_info.signing_key == "none"
    with pytest.raises(VerificationError) as info:
        verify_report(report, options())
    assert info.value.check == "snp.unsigned"
