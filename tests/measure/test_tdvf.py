"""TDVF metadata parsing and MRTD (TDH.MEM.PAGE.ADD / TDH.MR.EXTEND replay) on synthetic and real images."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attestation.errors import ParseError
from attestation.measure import mrtd, parse_tdvf
from attestation.measure.tdvf import MAX_PAGES, SectionType
from tests.measure.debian import package_file
from tests.measure.images import Section, close, tdvf_image

BFV = bytes(range(256)) * 32                            # 8 KiB: two pages of firmware code


def small_tdvf() -> bytes:
    return tdvf_image([Section(BFV, 0xFFFFE000, 0x2000, 0, 1),         # BFV, MR.EXTEND
                       Section(b"", 0x809000, 0x1000, 2, 0),           # TD_HOB: added, not extended
                       Section(b"", 0x800000, 0x2000, 3, 2)])          # TEMP_MEM with PAGE.AUG: neither


def page_add(gpa: int) -> bytes:
    """The spec's 128-byte MEM.PAGE.ADD extension buffer, written out field by field."""
    return b"MEM.PAGE.ADD" + b"\0" * 4 + struct.pack("<Q", gpa) + b"\0" * 104


def mr_extend(gpa: int, chunk: bytes) -> bytes:
    assert len(chunk) == 256
    return b"MR.EXTEND" + b"\0" * 7 + struct.pack("<Q", gpa) + b"\0" * 104 + chunk


def test_sections_parse_in_metadata_order():
    tdvf = parse_tdvf(small_tdvf())
    assert [(s.type, s.memory_address, s.memory_data_size, s.attributes) for s in tdvf.sections] == [
        (SectionType.BFV, 0xFFFFE000, 0x2000, 1), (SectionType.TD_HOB, 0x809000, 0x1000, 0),
        (SectionType.TEMP_MEM, 0x800000, 0x2000, 2)]
    assert tdvf.section_memory(tdvf.sections[0]) == BFV


def test_mrtd_single_pass_is_the_spec_byte_stream():
    """Upstream KVM: for each page, PAGE.ADD then 16 MR.EXTENDs; the PAGE.AUG section adds nothing."""
    stream = b""
    for page in range(2):
        gpa = 0xFFFFE000 + page * 0x1000
        stream += page_add(gpa)
        stream += b"".join(mr_extend(gpa + c * 256, BFV[page * 4096 + c * 256:][:256]) for c in range(16))
    stream += page_add(0x809000)
    assert mrtd(parse_tdvf(small_tdvf()), "single-pass") == hashlib.sha384(stream).digest()


def test_mrtd_two_pass_adds_a_sections_pages_before_extending_them():
    stream = page_add(0xFFFFE000) + page_add(0xFFFFF000)
    stream += b"".join(mr_extend(0xFFFFE000 + c * 256, BFV[c * 256:][:256]) for c in range(32))
    stream += page_add(0x809000)
    assert mrtd(parse_tdvf(small_tdvf()), "two-pass") == hashlib.sha384(stream).digest()
    assert mrtd(parse_tdvf(small_tdvf()), "two-pass") != mrtd(parse_tdvf(small_tdvf()), "single-pass")


def test_raw_data_shorter_than_memory_is_zero_filled():
    short = tdvf_image([Section(b"\x5a" * 0x1000, 0xFFFFE000, 0x2000, 0, 1)])
    full = tdvf_image([Section(b"\x5a" * 0x1000 + bytes(0x1000), 0xFFFFE000, 0x2000, 0, 1)])
    assert mrtd(parse_tdvf(short)) == mrtd(parse_tdvf(full))


def test_every_measured_byte_and_address_matters():
    base = mrtd(parse_tdvf(small_tdvf()))
    flipped = bytearray(BFV)
    flipped[5000] ^= 1
    assert mrtd(parse_tdvf(tdvf_image([Section(bytes(flipped), 0xFFFFE000, 0x2000, 0, 1),
                                       Section(b"", 0x809000, 0x1000, 2, 0),
                                       Section(b"", 0x800000, 0x2000, 3, 2)]))) != base
    moved = tdvf_image([Section(BFV, 0xFFFFE000, 0x2000, 0, 1), Section(b"", 0x80A000, 0x1000, 2, 0),
                        Section(b"", 0x800000, 0x2000, 3, 2)])
    assert mrtd(parse_tdvf(moved)) != base


def _error(image: bytes) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_tdvf(image)
    return info.value


@pytest.mark.parametrize("image, field, words", [
    (b"\0" * 4096, "footer GUID", "OVMF GUIDed table footer"),
    (close(b"\0" * 64, []), "TDX metadata offset", "not a TDX (TDVF) firmware image"),
    (tdvf_image([Section(BFV, 0xFFFFE000, 0x2000, 0, 1)], signature=b"XDVF"), "Signature", "expected 'TDVF'"),
    (tdvf_image([Section(BFV, 0xFFFFE000, 0x2000, 0, 1)], version=2), "Version", "unsupported version 2"),
    (tdvf_image([Section(BFV, 0xFFFFE800, 0x2000, 0, 1)]), "Section[0].MemoryAddress", "4 KiB aligned"),
    (tdvf_image([Section(BFV, 0xFFFFE000, 0x1000, 0, 1)]), "Section[0].RawDataSize", "do not fit"),
    (tdvf_image([Section(b"", 0x800000, 0x1000, 9, 0)]), "Section[0].Type", "unknown section type 9"),
    (tdvf_image([Section(b"", 0x800000, 0x1000, 3, 4)]), "Section[0].Attributes", "reserved bits"),
    (tdvf_image([Section(b"", 0x800000, 0x1000, 3, 3)]), "Section[0].Attributes", "never measured"),
    (tdvf_image([Section(b"", 0x800000, (MAX_PAGES + 1) * 0x1000, 3, 0)]), "MemoryDataSize", "pages"),
])
def test_malformed_metadata_is_named(image, field, words):
    error = _error(image)
    assert error.field == field and words in error.message


def test_raw_data_outside_the_image_is_refused():
    image = bytearray(small_tdvf())
    at = parse_tdvf(bytes(image)).descriptor_offset + 16          # first section record: DataOffset
    image[at:at + 4] = struct.pack("<I", len(image))
    assert _error(bytes(image)).field == "Section[0].DataOffset"


def test_truncation_at_every_structure_boundary_raises_parse_error():
    image = small_tdvf()
    start = parse_tdvf(image).descriptor_offset
    for cut in (0, 17, start, start + 4, start + 16, start + 48, len(image) - 50, len(image) - 33, len(image) - 1):
        with pytest.raises(ParseError):
            parse_tdvf(image[:cut])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_images_raise_only_parse_error(data):
    image = bytearray(small_tdvf())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(len(image) - 400, len(image) - 1))
        image[at] = data.draw(st.integers(0, 255))
    try:
        tdvf = parse_tdvf(bytes(image))
    except ParseError:
        return
    if sum(s.memory_data_size for s in tdvf.sections) <= 0x100000:      # keep each example fast
        assert len(mrtd(tdvf)) == 48


# A real TDVF: Debian 12's OVMF.fd (package ovmf 2022.11-6+deb12u2, sha256 below). Not committed (2 MiB):
# VEIL_TEST_OVMF or /usr/share/ovmf/OVMF.fd where present, else fetched from the Debian mirror and cached
# (tests/measure/debian.py).
DEBIAN_OVMF_SHA256 = "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773"
DEBIAN_OVMF = Path(os.environ.get("VEIL_TEST_OVMF", "/usr/share/ovmf/OVMF.fd"))


def debian12_ovmf() -> tuple[bytes, str]:
    """Debian 12's OVMF.fd and where it came from; skips when it cannot be had or is another build."""
    if DEBIAN_OVMF.is_file():
        image, source = DEBIAN_OVMF.read_bytes(), str(DEBIAN_OVMF)
    else:
        image, source = package_file("ovmf", "usr/share/ovmf/OVMF.fd")
    if hashlib.sha256(image).hexdigest() != DEBIAN_OVMF_SHA256:
        pytest.skip(f"{source} is not the Debian 12 build (ovmf 2022.11-6+deb12u2) these values were computed from")
    return image, source


@pytest.fixture
def debian_ovmf() -> bytes:
    return debian12_ovmf()[0]


def test_debian_ovmf_tdvf_metadata(debian_ovmf):
    tdvf = parse_tdvf(debian_ovmf)
    assert [(s.type.name, hex(s.memory_address), hex(s.memory_data_size), s.attributes) for s in tdvf.sections] == [
        ("BFV", "0xffe20000", "0x1e0000", 1), ("CFV", "0xffe00000", "0x20000", 0),
        ("TEMP_MEM", "0x810000", "0x10000", 0), ("TEMP_MEM", "0x80b000", "0x2000", 0),
        ("TD_HOB", "0x809000", "0x2000", 0), ("TEMP_MEM", "0x800000", "0x6000", 0)]
    # Regression pins computed by this implementation (no published MRTD for this build exists to compare with).
    assert mrtd(tdvf).hex() == ("4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057"
                                "fb887fed0744d5631a212967fb231c47")
    assert mrtd(tdvf, "two-pass").hex() == ("acccbcc870a381adab0d3919d90a7f268ac3b0364771f202ed4bb4e892d045b3"
                                            "3db3b32e6924cba830a724eed443f7e1")
