"""Evidence as it arrives: raw bytes, or hex / base64 text; TEE detection."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Literal

from .errors import ParseError

Tee = Literal["tdx", "snp"]

_HEX = re.compile(rb"^[0-9a-fA-F\s]+$")
_B64 = re.compile(rb"^[A-Za-z0-9+/=_\-\s]+$")

TDX_TEE_TYPE = 0x81
SNP_REPORT_SIZE = 0x4A0


@dataclass(frozen=True, slots=True)
class Evidence:
    """One TEE's evidence: the report or quote, plus certificates that came with it."""

    tee: Tee
    report: bytes
    certificates: tuple[bytes, ...] = ()   # DER or PEM blobs (SNP: VCEK/VLEK, ASK/ASVK, ARK)


def decode_blob(data: bytes) -> bytes:
    """Return binary evidence from raw bytes, hex text or base64 text (detected)."""
    stripped = data.strip()
    if not stripped:
        raise ParseError("evidence", "input", 0, "is empty")
    if stripped.startswith(b"{"):
        quote = _json_quote(stripped)
        if quote is not None:
            stripped = data = quote.strip()
    if _HEX.match(stripped):
        compact = b"".join(stripped.split())
        if len(compact) % 2 == 0:
            return bytes.fromhex(compact.decode())
    if _B64.match(stripped) and len(stripped) >= 16:
        compact = b"".join(stripped.split())
        try:
            if b"-" in compact or b"_" in compact:
                return base64.urlsafe_b64decode(compact + b"=" * (-len(compact) % 4))
            return base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
        except (binascii.Error, ValueError):
            pass
    return bytes(data)


def _json_quote(text: bytes) -> bytes | None:
    """The quote of a JSON envelope: `{"tdx": {"quote": base64, …}}` (Intel Trust Authority style
    evidence, as teekit stores it) or `{"quote": base64}`. None when the JSON is not such an envelope."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("tdx"), dict):
        doc = doc["tdx"]
    quote = doc.get("quote") if isinstance(doc, dict) else None
    if not isinstance(quote, str) or not quote.strip():
        return None
    return quote.encode("utf-8", "replace")


def detect_tee(report: bytes) -> Tee:
    """Tell a TDX quote from an SNP report by their headers."""
    if len(report) >= 8:
        version = int.from_bytes(report[0:2], "little")
        tee_type = int.from_bytes(report[4:8], "little")
        if version in (4, 5) and tee_type == TDX_TEE_TYPE:
            return "tdx"
    if len(report) >= SNP_REPORT_SIZE:
        version = int.from_bytes(report[0:4], "little")
        algo = int.from_bytes(report[0x34:0x38], "little")
        if 2 <= version <= 5 and algo == 1:
            return "snp"
    raise ParseError("evidence", "header", 0,
                     "is neither a TDX quote (version 4/5, TEE type 0x81) nor an SNP report "
                     "(1184 bytes, version 2-5, signature algorithm 1); pass --tee to force one")
