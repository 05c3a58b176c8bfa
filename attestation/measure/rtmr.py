"""RTMR[1] and RTMR[2] of a TD that OVMF/TDVF boots directly into a Linux kernel (QEMU -kernel).

An RTMR starts at 48 zero bytes; each event extends it: RTMR = SHA-384(RTMR ‖ digest).
The event sequence modelled here (TCG PC Client PFP event types; TDVF maps
PCR[1,7] → RTMR[0], PCR[2..6] → RTMR[1], PCR[8..15] → RTMR[2]):

RTMR[1]
  1. EV_EFI_BOOT_SERVICES_APPLICATION: PE Authenticode SHA-384 of the kernel
     image, as OVMF's LoadImage measures it: the file as given, which is what
     QEMU >= 10.2 serves a confidential guest over fw_cfg (QEMU commit
     a7542a38f399, "x86/loader: Don't update kernel header for CoCo VMs");
     older QEMU rewrote the setup header for TDX guests first (not modelled);
  2. EV_EFI_ACTION "Calling EFI Application from Boot Option";
  3. EV_SEPARATOR 00000000 (PCR[4]);
  4. EV_EFI_ACTION "Exit Boot Services Invocation";
  5. EV_EFI_ACTION "Exit Boot Services Returned with Success".
RTMR[2] (measured by the Linux EFI stub, Linux >= 6.9 in a TD; tagged events, PCR[9])
  1. EV_EVENT_TAG "LOADED_IMAGE::LoadOptions": the kernel command line as OVMF
     hands it to the kernel: UTF-16LE with its NUL terminator, and with
     "initrd=initrd " in front when an initrd is present (edk2's
     X86QemuLoadImageLib). Only when there are load options at all: with an
     empty command line and no initrd OVMF passes none (LoadOptionsSize 0) and
     the stub measures nothing (efi_convert_cmdline: `if (options_size > 0)`);
  2. EV_EVENT_TAG "Linux initrd": SHA-384 of the initrd (only with a non-empty
     initrd: QEMU reports an empty one as size 0, which OVMF treats as none).

Not modelled: RTMR[0] (TD HOB, ACPI tables, UEFI variables: depend on the
VMM's memory size and device model), boot through a boot loader (shim, GRUB),
unified kernel images, and QEMU < 10.2, whose TDX guests measure a kernel
with QEMU's rewritten setup header (loader type, heap end, command line and
initrd address and size: it depends on memory size and initrd size).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pefile

from ..errors import ParseError
from .errors import MeasureError

ZERO = bytes(48)
OVMF_INITRD_OPTION = "initrd=initrd "
SECURITY_DIRECTORY = 4          # IMAGE_DIRECTORY_ENTRY_SECURITY
AUTHENTICODE_ALGORITHMS = ("sha256", "sha384")


@dataclass(frozen=True, slots=True)
class RtmrEvent:
    """One extension of an RTMR: which register, the TCG event type, what was measured, the digest."""

    rtmr: int
    event_type: str
    description: str
    digest: bytes


def sha384(data: bytes) -> bytes:
    return hashlib.sha384(data).digest()


def replay(digests: list[bytes] | tuple[bytes, ...], start: bytes = ZERO) -> bytes:
    """The register value after extending `start` with each 48-byte digest in order."""
    value = start
    for digest in digests:
        if len(digest) != 48:
            raise MeasureError("digest", f"an RTMR is extended with 48-byte SHA-384 digests, got {len(digest)} bytes")
        value = sha384(value + digest)
    return value


def authenticode_sha384(image: bytes) -> bytes:
    """The PE/COFF Authenticode SHA-384 digest: what edk2 extends an RTMR with for a loaded image."""
    return authenticode_digest(image, "sha384")


def authenticode_digest(image: bytes, algorithm: str = "sha384") -> bytes:
    """The PE/COFF Authenticode digest (Microsoft's PE Authenticode format; edk2 measures exactly this).

    Hashed: the headers without the CheckSum field and the Certificate Table
    directory entry; then each section's raw data in file order; then any data
    after the last section, less the attribute certificate table. The same
    ranges under SHA-256 give the digest a signed image's Authenticode
    signature carries (SpcIndirectDataContent), which is how the ranges are
    checked against images signed by others (tests/measure/test_published_vectors.py).
    """
    if algorithm not in AUTHENTICODE_ALGORITHMS:
        raise MeasureError("algorithm", f"{algorithm!r} is not one of {', '.join(AUTHENTICODE_ALGORITHMS)}")
    try:
        pe = pefile.PE(data=image, fast_load=True)
    except pefile.PEFormatError as exc:
        raise ParseError("kernel PE", "headers", 0, f"not a PE/COFF image (an EFI-stub kernel is one): {exc}") from None
    opt = pe.OPTIONAL_HEADER
    checksum = opt.get_field_absolute_offset("CheckSum")
    headers_end = opt.SizeOfHeaders
    if headers_end > len(image) or headers_end < checksum + 4:
        raise ParseError("kernel PE", "SizeOfHeaders", None, f"0x{headers_end:X} does not fit the image")
    h = hashlib.new(algorithm)
    h.update(image[:checksum])
    cert_size = 0
    if opt.NumberOfRvaAndSizes > SECURITY_DIRECTORY:
        entry = opt.DATA_DIRECTORY[SECURITY_DIRECTORY]
        entry_at = entry.get_file_offset()
        h.update(image[checksum + 4:entry_at])
        h.update(image[entry_at + 8:headers_end])
        cert_size = entry.Size
    else:
        h.update(image[checksum + 4:headers_end])
    hashed = headers_end
    for section in sorted(pe.sections, key=lambda s: s.PointerToRawData):
        if section.SizeOfRawData == 0:
            continue
        start, size = section.PointerToRawData, section.SizeOfRawData
        if start + size > len(image):
            name = section.Name.rstrip(b"\0").decode("ascii", "replace")
            raise ParseError("kernel PE", f"section {name}", start,
                             f"raw data 0x{start:X}+0x{size:X} is outside the {len(image)}-byte image")
        h.update(image[start:start + size])
        hashed += size
    if len(image) > hashed:
        if cert_size > len(image) - hashed:
            raise ParseError("kernel PE", "Certificate Table", None, "certificate table is larger than the trailing data")
        h.update(image[hashed:len(image) - cert_size])
    return h.digest()


def load_options_utf16(cmdline: str, *, initrd: bool) -> bytes:
    """The LOAD_OPTIONS OVMF gives the kernel: UTF-16LE with a NUL terminator; b"" when there are none."""
    if "\0" in cmdline:
        raise MeasureError("cmdline", "the command line cannot contain a NUL character")
    text = (OVMF_INITRD_OPTION if initrd else "") + cmdline
    if not text:
        return b""          # LoadOptions NULL, LoadOptionsSize 0: no terminator either
    return text.encode("utf-16-le") + b"\0\0"


def rtmr1_events(kernel: bytes) -> tuple[RtmrEvent, ...]:
    """RTMR[1] events of a direct kernel boot (module docstring, steps 1-5)."""
    action = "EV_EFI_ACTION"
    return (
        RtmrEvent(1, "EV_EFI_BOOT_SERVICES_APPLICATION", "kernel (PE Authenticode)", authenticode_sha384(kernel)),
        RtmrEvent(1, action, "Calling EFI Application from Boot Option",
                  sha384(b"Calling EFI Application from Boot Option")),
        RtmrEvent(1, "EV_SEPARATOR", "separator", sha384(bytes(4))),
        RtmrEvent(1, action, "Exit Boot Services Invocation", sha384(b"Exit Boot Services Invocation")),
        RtmrEvent(1, action, "Exit Boot Services Returned with Success",
                  sha384(b"Exit Boot Services Returned with Success")),
    )


def rtmr2_events(cmdline: str, initrd: bytes | None) -> tuple[RtmrEvent, ...]:
    """RTMR[2] events of a direct kernel boot: the load options if any, then the initrd if there is one."""
    has_initrd = bool(initrd)           # QEMU serves an empty initrd as size 0: OVMF then has none
    options = load_options_utf16(cmdline, initrd=has_initrd)
    events = []
    if options:
        events.append(RtmrEvent(2, "EV_EVENT_TAG", "LOADED_IMAGE::LoadOptions (kernel command line, UTF-16LE)",
                                sha384(options)))
    if has_initrd:
        events.append(RtmrEvent(2, "EV_EVENT_TAG", "Linux initrd", sha384(initrd)))
    return tuple(events)
