"""Synthetic firmware and kernel images with the documented layouts, for the measure tests.

- TDVF: section data ‖ TDX metadata GUID ‖ TDVF_DESCRIPTOR ‖ TDVF_SECTIONs ‖
  GUIDed table ‖ footer ‖ 32-byte reset vector (TDVF design guide §11; edk2
  OvmfPkg/ResetVector).
- SEV OVMF: the same GUIDed table carrying the SEV-ES reset block, the SEV
  hashes table address and the "ASEV" metadata (edk2 OvmfSevMetadata.asm).
- PE32+: DOS header, COFF header, optional header with 16 data directories,
  section table, raw section data, trailing data and a certificate table.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

FOOTER = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d")
TDX_OFFSET = uuid.UUID("e47a6535-984a-4798-865e-4685a7bf8ec2")
TDX_METADATA = uuid.UUID("e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae")
SEV_ES_RESET = uuid.UUID("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
SEV_HASH_TABLE = uuid.UUID("7255371f-3a3b-4b04-927b-1da6efa8d454")
SEV_METADATA = uuid.UUID("dc886566-984a-4798-a75e-5585a7bf67cc")


def entry(guid: uuid.UUID, data: bytes) -> bytes:
    return data + struct.pack("<H", len(data) + 18) + guid.bytes_le


def close(body: bytes, entries: list[tuple[uuid.UUID, bytes]], *, offsets: dict | None = None) -> bytes:
    """Append the GUIDed table and reset vector. An entry data of b"@name" becomes the u32 offset-from-end
    of `offsets[name]` (a position in body)."""
    sizes = sum((4 if d.startswith(b"@") else len(d)) + 18 for _, d in entries) + 18
    total = len(body) + sizes + 32
    table = b""
    for guid, data in entries:
        if data.startswith(b"@"):
            data = struct.pack("<I", total - offsets[data[1:].decode()])
        table += entry(guid, data)
    return body + table + struct.pack("<H", len(table) + 18) + FOOTER.bytes_le + bytes(32)


@dataclass
class Section:
    data: bytes                 # raw data placed in the image (may be empty)
    address: int
    memory_size: int
    type: int
    attributes: int


def tdvf_image(sections: list[Section], *, version: int = 1, signature: bytes = b"TDVF", pad_to: int = 16) -> bytes:
    body = b""
    records = b""
    for s in sections:
        offset = len(body) if s.data else 0
        body += s.data
        records += struct.pack("<IIQQII", offset, len(s.data), s.address, s.memory_size, s.type, s.attributes)
    body += TDX_METADATA.bytes_le
    descriptor_at = len(body)
    body += signature + struct.pack("<III", 16 + len(records), version, len(sections)) + records
    body += bytes(-len(body) % 16)
    body += bytes(-(len(body) + 4 + 18 + 18 + 32) % pad_to)
    return close(body, [(TDX_OFFSET, b"@tdvf")], offsets={"tdvf": descriptor_at})


def sev_ovmf_image(*, size: int = 0x10000, kernel_hashes: bool = True, reset_eip: int = 0xFFFFF000) -> bytes:
    """An OVMF-shaped image whose SEV metadata names zero, secrets, CPUID (and kernel hashes) pages."""
    items = [(0x800000, 0x9000, 1), (0x809000, 0x1000, 2), (0x80A000, 0x1000, 3), (0x80B000, 0x5000, 1)]
    if kernel_hashes:
        items.append((0x80F000, 0x1000, 0x10))
    metadata = b"ASEV" + struct.pack("<III", 16 + 12 * len(items), 1, len(items))
    metadata += b"".join(struct.pack("<III", *item) for item in items)
    body = bytes(range(256)) * 16           # 4 KiB of recognisable firmware bytes
    metadata_at = len(body)
    body += metadata + bytes(-len(metadata) % 16)
    entries = [(SEV_ES_RESET, struct.pack("<II", reset_eip, 0)), (SEV_METADATA, b"@meta")]
    if kernel_hashes:
        entries.append((SEV_HASH_TABLE, struct.pack("<II", 0x80FC00, 0x400)))
    table_len = sum((4 if d.startswith(b"@") else len(d)) + 18 for _, d in entries) + 18 + 32
    return close(body + bytes(size - len(body) - table_len), entries, offsets={"meta": metadata_at})


# PE32+ layout constants (PE/COFF spec): where the builder puts each field.
E_LFANEW = 0x40
OPTIONAL = E_LFANEW + 4 + 20                 # 0x58
CHECKSUM = OPTIONAL + 64                     # 0x98
SECURITY_ENTRY = OPTIONAL + 112 + 4 * 8      # 0xE8
SECTION_TABLE = OPTIONAL + 240               # 0x148
HEADERS = 0x200


def pe_image(sections: list[bytes], *, trailing: bytes = b"", certificate: bytes = b"",
             checksum: int = 0x1234ABCD) -> bytes:
    """A PE32+ image; section i's raw data lands in the file in REVERSE header order (so sorting matters)."""
    dos = b"MZ" + bytes(0x3A) + struct.pack("<I", E_LFANEW)
    coff = struct.pack("<HHIIIHH", 0x8664, len(sections), 0, 0, 0, 240, 0x22)
    raw_offsets, cursor = {}, HEADERS
    for i in reversed(range(len(sections))):
        raw_offsets[i] = cursor
        cursor += len(sections[i])
    end_of_sections = cursor
    cert_at = end_of_sections + len(trailing) if certificate else 0
    directories = [(0, 0)] * 16
    directories[4] = (cert_at, len(certificate))
    optional = struct.pack("<HBBIIIII", 0x20B, 2, 30, 0, 0, 0, 0x1000, 0x1000)
    optional += struct.pack("<QII", 0x140000000, 0x1000, 0x200)
    optional += struct.pack("<HHHHHHI", 6, 0, 0, 0, 6, 0, 0)
    optional += struct.pack("<IIIHH", 0x1000 * (len(sections) + 1), HEADERS, checksum, 10, 0)
    optional += struct.pack("<QQQQII", 0x100000, 0x1000, 0x100000, 0x1000, 0, 16)
    optional += b"".join(struct.pack("<II", *d) for d in directories)
    table = b""
    for i, data in enumerate(sections):
        table += struct.pack("<8sIIIIIIHHI", f".s{i}".encode(), len(data), 0x1000 * (i + 1), len(data),
                             raw_offsets[i], 0, 0, 0, 0, 0x60000020)
    headers = dos + b"PE\0\0" + coff + optional + table
    assert len(headers) <= HEADERS
    image = bytearray(headers + bytes(HEADERS - len(headers)))
    for i in sorted(raw_offsets, key=raw_offsets.get):
        image += sections[i]
    return bytes(image + trailing + certificate)
