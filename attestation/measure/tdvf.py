"""TDVF metadata and the MRTD a TDX module computes while the VMM builds the TD.

Sources: Intel "TDX Virtual Firmware Design Guide" §11 (metadata) and Intel
"TDX Module Base Architecture Specification" (TDH.MEM.PAGE.ADD, TDH.MR.EXTEND).

Steps:
  (1) the GUIDed table entry e47a6535-… holds the u32 offset, from the end of
      the image, of the TDVF_DESCRIPTOR ("TDVF", length, version 1, count),
      which is followed by `count` 32-byte TDVF_SECTIONs;
  (2) each section is loaded at MemoryAddress: RawDataSize bytes from
      DataOffset of the image, zero-filled to MemoryDataSize;
  (3) for every 4 KiB page of a section, unless its PAGE.AUG attribute is
      set, TDH.MEM.PAGE.ADD extends MRTD with a 128-byte buffer
      "MEM.PAGE.ADD" ‖ 0 ‖ GPA (u64 at offset 16) ‖ 0…;
  (4) for sections with the MR.EXTEND attribute, TDH.MR.EXTEND extends MRTD,
      per 256-byte chunk, with "MR.EXTEND" ‖ 0 ‖ GPA (u64 at 16) ‖ 0… (128
      bytes) followed by the chunk's 256 bytes;
  (5) MRTD is SHA-384 over that whole sequence.

The order of (3) and (4) depends on the VMM/KVM: upstream KVM adds and
extends page by page ("single-pass"); older TDX stacks add every page of a
section before extending it ("two-pass").
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Literal

from ..binary import Reader
from ..errors import ParseError
from .ovmf import footer_table

TDX_METADATA_OFFSET_GUID = uuid.UUID("e47a6535-984a-4798-865e-4685a7bf8ec2")
PAGE = 0x1000
CHUNK = 0x100
ATTR_MR_EXTEND = 0x1
ATTR_PAGE_AUG = 0x2
MAX_SECTIONS = 64
MAX_PAGES = 0x10000           # 256 MiB of measured pages; real TDVF builds add about 1,050
STRUCTURE = "TDVF metadata"


class SectionType(IntEnum):
    """TDVF_SECTION.Type (TDVF design guide table 11-2; TD_INFO from td-shim)."""

    BFV = 0
    CFV = 1
    TD_HOB = 2
    TEMP_MEM = 3
    PERM_MEM = 4
    PAYLOAD = 5
    PAYLOAD_PARAM = 6
    TD_INFO = 7


class PageAddOrder(str, Enum):
    single_pass = "single-pass"
    two_pass = "two-pass"


@dataclass(frozen=True, slots=True)
class TdvfSection:
    data_offset: int
    raw_data_size: int
    memory_address: int
    memory_data_size: int
    type: SectionType
    attributes: int

    @property
    def extend_mr(self) -> bool:
        return bool(self.attributes & ATTR_MR_EXTEND)

    @property
    def page_aug(self) -> bool:
        return bool(self.attributes & ATTR_PAGE_AUG)


@dataclass(frozen=True, slots=True)
class Tdvf:
    """A parsed TDVF image: the image bytes and its sections, in metadata order."""

    image: bytes
    descriptor_offset: int
    sections: tuple[TdvfSection, ...]

    def section_memory(self, section: TdvfSection) -> bytes:
        """What the VMM loads at the section's MemoryAddress: its raw data, zero-filled to MemoryDataSize."""
        raw = self.image[section.data_offset:section.data_offset + section.raw_data_size]
        return raw + bytes(section.memory_data_size - len(raw))


def parse_tdvf(image: bytes) -> Tdvf:
    """Locate and check the TDVF metadata of a TDX firmware image (ParseError if it is not one)."""
    entries = footer_table(image, structure="TDVF")
    if TDX_METADATA_OFFSET_GUID not in entries:
        raise ParseError("TDVF", "TDX metadata offset", None,
                         f"the GUIDed table has no {TDX_METADATA_OFFSET_GUID} entry: not a TDX (TDVF) firmware image")
    entry = entries[TDX_METADATA_OFFSET_GUID]
    if len(entry) < 4:
        raise ParseError("TDVF", "TDX metadata offset", None, f"entry holds {len(entry)} bytes, expected 4")
    from_end = int.from_bytes(entry[:4], "little")
    if not 0 < from_end <= len(image):
        raise ParseError("TDVF", "TDX metadata offset", None, f"offset {from_end} from the end is outside the image")
    base = len(image) - from_end
    r = Reader(image, structure=STRUCTURE, base=base)
    if r.bytes("Signature", 0, 4) != b"TDVF":
        raise ParseError(STRUCTURE, "Signature", base, f"expected 'TDVF', found {r.bytes('Signature', 0, 4)!r}")
    length, version, count = r.u32("Length", 4), r.u32("Version", 8), r.u32("NumberOfSectionEntries", 12)
    if version != 1:
        raise ParseError(STRUCTURE, "Version", base + 8, f"unsupported version {version}; expected 1")
    if not 1 <= count <= MAX_SECTIONS:
        raise ParseError(STRUCTURE, "NumberOfSectionEntries", base + 12, f"{count} sections; expected 1..{MAX_SECTIONS}")
    if length != 16 + 32 * count:
        raise ParseError(STRUCTURE, "Length", base + 4, f"{length} does not match {count} sections ({16 + 32 * count})")
    sections = tuple(_section(r, image, i) for i in range(count))
    pages = sum(s.memory_data_size // PAGE for s in sections)
    if pages > MAX_PAGES:
        raise ParseError(STRUCTURE, "MemoryDataSize", None, f"sections add {pages} pages; at most {MAX_PAGES} supported")
    return Tdvf(image=bytes(image), descriptor_offset=base, sections=sections)


def _section(r: Reader, image: bytes, index: int) -> TdvfSection:
    at = 16 + 32 * index
    field = f"Section[{index}]"
    kind = r.u32(f"{field}.Type", at + 24)
    attributes = r.u32(f"{field}.Attributes", at + 28)
    if kind not in SectionType._value2member_map_:
        raise r.fail(f"{field}.Type", r.base + at + 24, f"unknown section type {kind}")
    if attributes & ~(ATTR_MR_EXTEND | ATTR_PAGE_AUG):
        raise r.fail(f"{field}.Attributes", r.base + at + 28, f"reserved bits set in 0x{attributes:08x}")
    section = TdvfSection(data_offset=r.u32(f"{field}.DataOffset", at), raw_data_size=r.u32(f"{field}.RawDataSize", at + 4),
                          memory_address=r.u64(f"{field}.MemoryAddress", at + 8),
                          memory_data_size=r.u64(f"{field}.MemoryDataSize", at + 16),
                          type=SectionType(kind), attributes=attributes)
    if section.memory_address % PAGE or section.memory_data_size % PAGE:
        raise r.fail(f"{field}.MemoryAddress", r.base + at + 8, "address and size must be 4 KiB aligned")
    if section.raw_data_size > section.memory_data_size:
        raise r.fail(f"{field}.RawDataSize", r.base + at + 4,
                     f"{section.raw_data_size} bytes do not fit MemoryDataSize {section.memory_data_size}")
    if section.data_offset + section.raw_data_size > len(image):
        raise r.fail(f"{field}.DataOffset", r.base + at,
                     f"raw data 0x{section.data_offset:X}+0x{section.raw_data_size:X} is outside the image")
    if section.memory_address + section.memory_data_size > 1 << 52:
        raise r.fail(f"{field}.MemoryAddress", r.base + at + 8, "guest range is beyond the 52-bit physical address space")
    if section.page_aug and section.extend_mr:
        raise r.fail(f"{field}.Attributes", r.base + at + 28, "a PAGE.AUG section is accepted by the guest, never measured")
    return section


def _page_add(gpa: int) -> bytes:
    return b"MEM.PAGE.ADD".ljust(16, b"\0") + gpa.to_bytes(8, "little") + bytes(104)


def _mr_extend(gpa: int) -> bytes:
    return b"MR.EXTEND".ljust(16, b"\0") + gpa.to_bytes(8, "little") + bytes(104)


def mrtd(tdvf: Tdvf, order: PageAddOrder | Literal["single-pass", "two-pass"] = PageAddOrder.single_pass) -> bytes:
    """The 48-byte MRTD after the VMM has added (and extended) every section of `tdvf`."""
    order = PageAddOrder(order)
    h = hashlib.sha384()
    for section in tdvf.sections:
        memory = tdvf.section_memory(section) if section.extend_mr else b""
        pages = range(0, section.memory_data_size, PAGE)

        def add(offset: int) -> None:
            if not section.page_aug:
                h.update(_page_add(section.memory_address + offset))

        def extend(offset: int) -> None:
            if section.extend_mr:
                for chunk in range(offset, offset + PAGE, CHUNK):
                    h.update(_mr_extend(section.memory_address + chunk))
                    h.update(memory[chunk:chunk + CHUNK])

        if order is PageAddOrder.two_pass:
            for offset in pages:
                add(offset)
            for offset in pages:
                extend(offset)
        else:
            for offset in pages:
                add(offset)
                extend(offset)
    return h.digest()
