"""RTMR replay, the OVMF direct-boot event sequence, and the PE Authenticode digest."""

from __future__ import annotations

import hashlib

import pytest

from attestation.errors import ParseError
from attestation.measure import MeasureError, authenticode_digest, authenticode_sha384, replay, tdx_measurements
from attestation.measure.rtmr import load_options_utf16, rtmr1_events, rtmr2_events
from tests.measure.images import CHECKSUM, HEADERS, SECURITY_ENTRY, Section, pe_image, tdvf_image


def sha384(data: bytes) -> bytes:
    return hashlib.sha384(data).digest()


def test_replay_extends_from_zero_in_order():
    a, b = sha384(b"a"), sha384(b"b")
    assert replay([]) == bytes(48)
    assert replay([a, b]) == sha384(sha384(bytes(48) + a) + b)
    assert replay([b, a]) != replay([a, b])
    with pytest.raises(MeasureError):
        replay([hashlib.sha256(b"a").digest()])


def test_fixed_rtmr1_events_match_published_event_logs():
    """The EV_EFI_ACTION and EV_SEPARATOR digests exactly as they appear in TDVF CCEL event logs of real TDs."""
    events = rtmr1_events(pe_image([b"K" * 0x200]))
    assert [e.digest.hex() for e in events[1:]] == [
        "77a0dab2312b4e1e57a84d865a21e5b2ee8d677a21012ada819d0a98988078d3d740f6346bfe0abaa938ca20439a8d71",
        "394341b7182cd227c5c6b07ef8000cdfd86136c4292b8e576573ad7ed9ae41019f5818b4b971c9effc60e1ad9f1289f0",
        "214b0bef1379756011344877743fdc2a5382bac6e70362d624ccf3f654407c1b4badf7d8f9295dd3dabdef65b27677e0",
        "0a2e01c85deae718a530ad8c6d20a84009babe6c8989269e950d8cf440c6e997695e64d455c4174a652cd080f6230b74"]
    assert [e.event_type for e in events] == ["EV_EFI_BOOT_SERVICES_APPLICATION", "EV_EFI_ACTION", "EV_SEPARATOR",
                                              "EV_EFI_ACTION", "EV_EFI_ACTION"]


def test_authenticode_skips_checksum_and_certificate_and_sorts_sections():
    """The hashed ranges written out by hand for the builder's layout (PE/COFF Authenticode)."""
    s0, s1 = b"\x01" * 0x200, b"\x02" * 0x400
    image = pe_image([s0, s1], trailing=b"T" * 24, certificate=b"C" * 40)
    # Header order is s0, s1; file order is s1 (at 0x200), then s0: hashed in file order.
    expected = sha384(image[:CHECKSUM] + image[CHECKSUM + 4:SECURITY_ENTRY] + image[SECURITY_ENTRY + 8:HEADERS]
                      + s1 + s0 + b"T" * 24)
    assert authenticode_sha384(image) == expected
    # The excluded fields really are excluded: changing them changes nothing; changing code does.
    assert authenticode_sha384(pe_image([s0, s1], trailing=b"T" * 24, certificate=b"X" * 40,
                                        checksum=0)) == expected
    assert authenticode_sha384(pe_image([s0, b"\x03" * 0x400], trailing=b"T" * 24, certificate=b"C" * 40)) != expected


def test_authenticode_digest_takes_sha256_and_sha384_only():
    image = pe_image([b"\x01" * 0x200])
    assert authenticode_digest(image, "sha384") == authenticode_sha384(image)
    assert len(authenticode_digest(image, "sha256")) == 32
    with pytest.raises(MeasureError) as info:
        authenticode_digest(image, "md5")
    assert info.value.parameter == "algorithm"


def test_not_a_pe_kernel_is_a_parse_error():
    with pytest.raises(ParseError) as info:
        authenticode_sha384(b"\x7fELF" + bytes(4092))
    assert info.value.structure == "kernel PE"


def test_section_beyond_the_file_is_a_parse_error():
    image = pe_image([b"\x01" * 0x200])
    with pytest.raises(ParseError) as info:
        authenticode_sha384(image[:0x300])
    assert "outside" in info.value.message


def test_load_options_are_utf16_with_nul_and_the_ovmf_initrd_option():
    assert load_options_utf16("console=ttyS0", initrd=False) == "console=ttyS0\0".encode("utf-16-le")
    assert load_options_utf16("ro", initrd=True) == "initrd=initrd ro\0".encode("utf-16-le")
    with pytest.raises(MeasureError):
        load_options_utf16("a\0b", initrd=False)


def test_rtmr2_is_load_options_then_initrd():
    events = rtmr2_events("console=hvc0 root=/dev/vda1", b"initramfs")
    assert [e.digest for e in events] == [sha384("initrd=initrd console=hvc0 root=/dev/vda1\0".encode("utf-16-le")),
                                          sha384(b"initramfs")]
    assert [e.event_type for e in events] == ["EV_EVENT_TAG", "EV_EVENT_TAG"]      # the stub's tagged events
    assert len(rtmr2_events("quiet", None)) == 1


def test_no_load_options_means_no_rtmr2_event():
    """edk2 X86QemuLoadImageLib sets LoadOptionsSize 0 for an empty command line without initrd, and the
    Linux EFI stub measures load options only `if (options_size > 0)`: RTMR[2] stays zero."""
    assert load_options_utf16("", initrd=False) == b""
    assert rtmr2_events("", None) == ()
    # With an initrd the options are the prefix alone, trailing space included ("%a%a%a" in edk2).
    assert [e.digest for e in rtmr2_events("", b"rd")] == [sha384("initrd=initrd \0".encode("utf-16-le")),
                                                          sha384(b"rd")]
    # QEMU reports an empty initrd as size 0, which OVMF treats as no initrd at all.
    assert rtmr2_events("quiet", b"") == rtmr2_events("quiet", None)


def test_tdx_measurements_direct_boot():
    firmware = tdvf_image([Section(b"\x90" * 0x1000, 0xFFFFF000, 0x1000, 0, 1)])
    kernel = pe_image([b"\xcc" * 0x200])
    result = tdx_measurements(firmware, kernel=kernel, initrd=b"rd", cmdline="quiet")
    assert result.rtmr1 == replay([authenticode_sha384(kernel)] + [e.digest for e in rtmr1_events(kernel)[1:]])
    assert result.rtmr2 == replay([sha384("initrd=initrd quiet\0".encode("utf-16-le")), sha384(b"rd")])
    assert tdx_measurements(firmware).rtmr1 is None
    assert tdx_measurements(firmware).mrtd == result.mrtd
    with pytest.raises(MeasureError):
        tdx_measurements(firmware, cmdline="quiet")
