"""GPU evidence as it travels: one SPDM report plus its PEM certificate chain per GPU.

JSON form (Trustee / guest-components' NVIDIA attester), optionally wrapped
in {"nvidia": …} as in KBS additional evidence:

    {"device_evidence_list": [{"arch": "HOPPER", "uuid": "GPU-…", "evidence": b64 or hex,
                               "certificate": b64(PEM chain), "cc_mode": "on"}]}

`cc_mode` is what NVML reported inside the guest; nothing signs it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from ..errors import ParseError
from .spdm import decode_report_text

MAX_GPUS = 8
STRUCTURE = "NVIDIA evidence"
CC_MODES = ("on", "devtools", "off")


@dataclass(frozen=True, slots=True)
class GpuEvidence:
    report: bytes                  # SPDM request ‖ response
    certificates: bytes            # PEM chain, leaf first
    arch: str = "hopper"
    uuid: str | None = None
    cc_mode: str | None = None     # unsigned: NVML's answer inside the guest, if the attester sent it

    def to_json(self) -> dict:
        doc = {"arch": self.arch.upper(), "evidence": base64.b64encode(self.report).decode(),
               "certificate": base64.b64encode(self.certificates).decode()}
        if self.uuid:
            doc["uuid"] = self.uuid
        if self.cc_mode:
            doc["cc_mode"] = self.cc_mode
        return doc


def evidence_list_json(gpus: tuple[GpuEvidence, ...] | list[GpuEvidence]) -> str:
    """The exact string carried as KBS additional evidence: {"nvidia": {"device_evidence_list": […]}}."""
    return json.dumps({"nvidia": {"device_evidence_list": [g.to_json() for g in gpus]}},
                      separators=(",", ":"), sort_keys=True)


def _blob(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ParseError(STRUCTURE, field, None, "must be a non-empty string")
    text = value.strip()
    if all(c in "0123456789abcdefABCDEF" for c in text) and len(text) % 2 == 0:
        return decode_report_text(text)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(STRUCTURE, field, None, "is neither hex nor base64") from None


def _certificates(value: object, field: str) -> bytes:
    if isinstance(value, str) and "-----BEGIN CERTIFICATE-----" in value:
        return value.encode()
    if not isinstance(value, str):
        raise ParseError(STRUCTURE, field, None, "must be a string")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(STRUCTURE, field, None, "is not base64 of a PEM chain") from None


def _one(item: object, n: int) -> GpuEvidence:
    field = f"device_evidence_list[{n}]"
    if not isinstance(item, dict):
        raise ParseError(STRUCTURE, field, None, "must be an object")
    arch = item.get("arch", "HOPPER")
    cc_mode = item.get("cc_mode")
    if not isinstance(arch, str) or (cc_mode is not None and cc_mode not in CC_MODES):
        raise ParseError(STRUCTURE, field, None, "arch must be a string and cc_mode one of on/devtools/off")
    uuid = item.get("uuid")
    return GpuEvidence(report=_blob(item.get("evidence"), f"{field}.evidence"),
                       certificates=_certificates(item.get("certificate"), f"{field}.certificate"),
                       arch=arch.lower(), uuid=uuid if isinstance(uuid, str) else None, cc_mode=cc_mode)


def parse_evidence_list(data: bytes | str) -> tuple[GpuEvidence, ...]:
    """Parse the JSON form (with or without the {"nvidia": …} wrapper)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(STRUCTURE, "JSON", None, f"is not JSON: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("nvidia"), dict):
        doc = doc["nvidia"]
    items = doc.get("device_evidence_list") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise ParseError(STRUCTURE, "device_evidence_list", None, "must be a non-empty list")
    if len(items) > MAX_GPUS:
        raise ParseError(STRUCTURE, "device_evidence_list", None, f"has {len(items)} GPUs; at most {MAX_GPUS}")
    return tuple(_one(item, n) for n, item in enumerate(items))
