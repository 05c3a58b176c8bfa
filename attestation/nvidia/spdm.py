"""NVIDIA GPU evidence: the SPDM 1.1 GET_MEASUREMENTS request and MEASUREMENTS response.

Layout (DMTF DSP0274 SPDM 1.1 GET_MEASUREMENTS, as NVIDIA nvtrust reads it): a 37-byte request (version 0x11, code
0xE0, param1, param2, the verifier's 32-byte nonce, slot id) followed by the
response (version, code 0x60, param1, param2, block count, u24 record length,
the measurement blocks, the GPU's 32-byte nonce, u16 opaque length, opaque TLV
data, a 96-byte raw r‖s ECDSA P-384 signature). The signature covers
everything before it. Parsing only checks structure; nothing is verified here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from ..binary import Reader
from ..errors import ParseError

REQUEST_SIZE = 37
SIGNATURE_SIZE = 96
NONCE_SIZE = 32
SPDM_VERSION = 0x11
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
DMTF_SPEC = 0x01
MAX_BLOCKS = 255

# Opaque data types (nvtrust's opaque-data field types).
CERT_ISSUER_NAME, CERT_AUTHORITY_KEY_IDENTIFIER, DRIVER_VERSION, GPU_INFO, SKU = 1, 2, 3, 4, 5
VBIOS_VERSION, MANUFACTURER_ID, NVDEC0_STATUS, MSRSCNT = 6, 7, 11, 12
CHIP_SKU, CHIP_SKU_MOD, PROJECT, PROJECT_SKU, PROJECT_SKU_MOD, FWID = 15, 16, 17, 18, 19, 20
PROTECTED_PCIE_STATUS, OPAQUE_DATA_VERSION, CHIP_INFO, FEATURE_FLAG = 21, 34, 35, 36
OPAQUE_NAMES = {
    1: "cert_issuer_name", 2: "cert_authority_key_identifier", 3: "driver_version", 4: "gpu_info",
    5: "sku", 6: "vbios_version", 7: "manufacturer_id", 8: "tamper_detection", 9: "smc", 10: "vpr",
    11: "nvdec0_status", 12: "msrscnt", 13: "cprinfo", 14: "board_id", 15: "chip_sku",
    16: "chip_sku_mod", 17: "project", 18: "project_sku", 19: "project_sku_mod", 20: "fwid",
    21: "protected_pcie_status", 22: "switch_pdi", 23: "floorswept_ports", 24: "position_id",
    25: "lock_switch_status", 32: "gpu_link_conn", 33: "sys_enable_status", 34: "opaque_data_version",
    35: "chip_info", 36: "feature_flag", 255: "invalid",
}
_ASCII = (DRIVER_VERSION, CHIP_SKU, CHIP_SKU_MOD, PROJECT, PROJECT_SKU, PROJECT_SKU_MOD, CHIP_INFO)
FEATURE_FLAGS = {0: "spt", 1: "mpt", 2: "ppcie"}
NVDEC0_DISABLED = 0x55
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")


@dataclass(frozen=True, slots=True)
class SpdmRequest:
    version: int
    param1: int
    param2: int
    nonce: bytes
    slot_id: int


@dataclass(frozen=True, slots=True)
class MeasurementBlock:
    index: int            # 1-based SPDM index (RIM index + 1)
    value_type: int
    value: bytes


@dataclass(frozen=True, slots=True)
class OpaqueData:
    """The response's NVIDIA TLV opaque data, by type (each type at most once)."""

    fields: Mapping[int, bytes]

    def raw(self, kind: int) -> bytes | None:
        return self.fields.get(kind)

    def text(self, kind: int) -> str | None:
        value = self.fields.get(kind)
        return None if value is None else _ascii(value, OPAQUE_NAMES.get(kind, str(kind)))

    @property
    def driver_version(self) -> str | None:
        return self.text(DRIVER_VERSION)

    @property
    def vbios_version(self) -> str | None:
        value = self.fields.get(VBIOS_VERSION)
        return None if value is None else format_vbios_version(value)

    @property
    def fwid(self) -> bytes | None:
        return self.fields.get(FWID)

    @property
    def nvdec0_disabled(self) -> bool:
        return self.fields.get(NVDEC0_STATUS) == bytes([NVDEC0_DISABLED])

    @property
    def feature_flag(self) -> str | None:
        value = self.fields.get(FEATURE_FLAG)
        if value is None:
            return None
        number = int.from_bytes(value, "little")
        return FEATURE_FLAGS.get(number, f"unknown-{number}")

    def describe(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for kind, value in sorted(self.fields.items()):
            name = OPAQUE_NAMES.get(kind, f"type_{kind}")
            if kind in _ASCII:
                out[name] = self.text(kind) or ""
            elif kind == VBIOS_VERSION:
                out[name] = format_vbios_version(value)
            else:
                out[name] = value.hex()
        return out


@dataclass(frozen=True, slots=True)
class SpdmResponse:
    version: int
    param1: int
    param2: int
    blocks: tuple[MeasurementBlock, ...]
    responder_nonce: bytes
    opaque: OpaqueData
    signature: bytes      # raw r‖s, 96 bytes


@dataclass(frozen=True, slots=True)
class AttestationReport:
    """Request ‖ response as returned by nvmlDeviceGetConfComputeGpuAttestationReport."""

    raw: bytes
    request: SpdmRequest
    response: SpdmResponse

    @property
    def signed_bytes(self) -> bytes:
        return self.raw[:-SIGNATURE_SIZE]

    @property
    def nonce(self) -> bytes:
        return self.request.nonce

    def measurement(self, spdm_index: int) -> bytes | None:
        for block in self.response.blocks:
            if block.index == spdm_index:
                return block.value
        return None


def format_vbios_version(value: bytes) -> str:
    """8 bytes LE → "96.00.9f.00.01" (nvtrust's opaque-data field types), lower-case."""
    if len(value) != 8:
        raise ParseError("SPDM opaque data", "vbios_version", None, f"is {len(value)} bytes, expected 8")
    digits = f"{int.from_bytes(value, 'little'):016x}"
    picked = digits[8:16] + digits[6:8]
    return ".".join(picked[i:i + 2] for i in range(0, 10, 2))


def _ascii(value: bytes, field: str) -> str:
    text = value.split(b"\0", 1)[0]
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        raise ParseError("SPDM opaque data", field, None, "is not ASCII") from None
    if not _PRINTABLE.match(decoded):
        raise ParseError("SPDM opaque data", field, None, "holds control characters")
    return decoded


def decode_report_text(data: bytes | str) -> bytes:
    """Raw bytes, or hex text as the NVML samples store them (whitespace ignored)."""
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    compact = b"".join(data.split())
    if compact and re.fullmatch(rb"[0-9a-fA-F]+", compact):
        if len(compact) % 2:
            raise ParseError("SPDM report", "hex text", None, "has an odd number of digits")
        return bytes.fromhex(compact.decode())
    return bytes(data)


def parse_request(data: bytes) -> SpdmRequest:
    r = Reader(data, structure="SPDM request")
    if len(data) < REQUEST_SIZE:
        raise r.fail("length", 0, f"is {len(data)} bytes, expected {REQUEST_SIZE}")
    _expect(r, "SPDMVersion", 0, SPDM_VERSION)
    _expect(r, "RequestResponseCode", 1, GET_MEASUREMENTS)
    return SpdmRequest(version=SPDM_VERSION, param1=r.u8("Param1", 2), param2=r.u8("Param2", 3),
                       nonce=r.bytes("Nonce", 4, NONCE_SIZE), slot_id=r.u8("SlotIDParam", 36))


def _expect(r: Reader, field: str, offset: int, value: int) -> None:
    actual = r.u8(field, offset)
    if actual != value:
        raise r.fail(field, offset, f"is 0x{actual:02X}, expected 0x{value:02X}")


def _blocks(r: Reader, count: int, length: int) -> tuple[MeasurementBlock, ...]:
    blocks, seen, offset, end = [], set(), 8, 8 + length
    for n in range(count):
        field = f"MeasurementBlock[{n}]"
        index = r.u8(f"{field}.Index", offset)
        if r.u8(f"{field}.MeasurementSpecification", offset + 1) != DMTF_SPEC:
            raise r.fail(f"{field}.MeasurementSpecification", offset + 1, "must be 1 (DMTF)")
        size = r.u16(f"{field}.MeasurementSize", offset + 2)
        value_type = r.u8(f"{field}.DMTFSpecMeasurementValueType", offset + 4)
        value_size = r.u16(f"{field}.DMTFSpecMeasurementValueSize", offset + 5)
        if size != value_size + 3:
            raise r.fail(f"{field}.MeasurementSize", offset + 2,
                         f"is {size}, but the DMTF value needs {value_size + 3}")
        if offset + 4 + size > end:
            raise r.fail(field, offset, "runs past MeasurementRecordLength")
        if index in seen or index == 0:
            raise r.fail(f"{field}.Index", offset, f"index {index} is zero or repeated")
        seen.add(index)
        blocks.append(MeasurementBlock(index, value_type, r.bytes(f"{field}.Value", offset + 7, value_size)))
        offset += 4 + size
    if offset != end:
        raise r.fail("MeasurementRecordLength", 5, f"is {length}, but {count} blocks take {offset - 8}")
    return tuple(blocks)


def parse_opaque(data: bytes) -> OpaqueData:
    r = Reader(data, structure="SPDM opaque data")
    fields: dict[int, bytes] = {}
    offset = 0
    while offset < len(data):
        kind = r.u16("type", offset)
        size = r.u16(f"{OPAQUE_NAMES.get(kind, kind)}.size", offset + 2)
        name = OPAQUE_NAMES.get(kind, f"type_{kind}")
        value = r.bytes(name, offset + 4, size)
        if kind in fields:
            raise r.fail(name, offset, "appears twice")
        fields[kind] = value
        offset += 4 + size
    opaque = OpaqueData(fields)
    for kind in _ASCII:
        opaque.text(kind)            # reject non-ASCII early, naming the field
    if VBIOS_VERSION in fields:
        format_vbios_version(fields[VBIOS_VERSION])
    return opaque


def parse_response(data: bytes) -> SpdmResponse:
    r = Reader(data, structure="SPDM response")
    _expect(r, "SPDMVersion", 0, SPDM_VERSION)
    _expect(r, "RequestResponseCode", 1, MEASUREMENTS)
    count = r.u8("NumberOfBlocks", 4)
    length = int.from_bytes(r.bytes("MeasurementRecordLength", 5, 3), "little")
    blocks = _blocks(r, count, length)
    nonce = r.bytes("Nonce", 8 + length, NONCE_SIZE)
    opaque_length = r.u16("OpaqueLength", 40 + length)
    opaque = parse_opaque(r.bytes("OpaqueData", 42 + length, opaque_length))
    sig_offset = 42 + length + opaque_length
    signature = r.bytes("Signature", sig_offset, SIGNATURE_SIZE)
    if len(data) != sig_offset + SIGNATURE_SIZE:
        raise r.fail("Signature", sig_offset + SIGNATURE_SIZE,
                     f"{len(data) - sig_offset - SIGNATURE_SIZE} unexpected bytes after the signature")
    return SpdmResponse(version=SPDM_VERSION, param1=r.u8("Param1", 2), param2=r.u8("Param2", 3),
                        blocks=blocks, responder_nonce=nonce, opaque=opaque, signature=signature)


def parse_report(data: bytes | str) -> AttestationReport:
    """Parse request ‖ response (raw bytes or hex text). Raises ParseError naming the field."""
    raw = decode_report_text(data)
    request = parse_request(raw[:REQUEST_SIZE])
    response = parse_response(raw[REQUEST_SIZE:])
    return AttestationReport(raw=raw, request=request, response=response)


def describe(report: AttestationReport) -> dict:
    """Every decoded field, for `veil attest inspect` (nothing verified)."""
    req, resp = report.request, report.response
    return {
        "request": {"version": f"0x{req.version:02x}", "param1": req.param1, "param2": req.param2,
                    "nonce": req.nonce.hex(), "slot_id": req.slot_id},
        "response": {"version": f"0x{resp.version:02x}", "param1": resp.param1, "param2": resp.param2,
                     "number_of_blocks": len(resp.blocks), "responder_nonce": resp.responder_nonce.hex(),
                     "opaque": resp.opaque.describe(), "signature": resp.signature.hex()},
        "measurements": {str(b.index): b.value.hex() for b in resp.blocks},
    }
