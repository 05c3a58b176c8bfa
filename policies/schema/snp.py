"""What a platform alternative requires of SEV-SNP claims (AMD SEV-SNP Firmware ABI spec 56860 fields)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from .common import AllowList, Flag, HexAllowList, Strict, hex_list

M64 = Annotated[HexAllowList, BeforeValidator(hex_list(64))]
M48 = Annotated[HexAllowList, BeforeValidator(hex_list(48))]
M32 = Annotated[HexAllowList, BeforeValidator(hex_list(32))]
M16 = Annotated[HexAllowList, BeforeValidator(hex_list(16))]

_VERSION = re.compile(r"\d{1,3}(\.\d{1,3}){1,2}")


def _zero(size: int) -> HexAllowList:
    return HexAllowList(values=("00" * size,), size=size)


class SnpGuestPolicyRule(Strict):
    """The guest POLICY bits. DEBUG is governed by the platform's `insecure_allow_debug`."""

    smt: Flag = "forbidden"
    migrate_ma: Flag = "forbidden"
    single_socket: Flag = "allowed"
    cxl_allow: Flag = "forbidden"
    mem_aes_256_xts: Flag = "allowed"
    rapl_dis: Flag = "allowed"
    ciphertext_hiding: Flag = "allowed"
    page_swap_disable: Flag = "allowed"
    abi_minimum: str | None = None

    @field_validator("abi_minimum")
    @classmethod
    def _abi(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{1,3}\.\d{1,3}", value):
            raise ValueError("abi_minimum is MAJOR.MINOR, e.g. \"1.51\"")
        return value


class SnpTcbFloor(Strict):
    """Component-wise minimum of a TCB_VERSION (fmc only on Turin and later)."""

    bootloader: int = Field(default=0, ge=0, le=255)
    tee: int = Field(default=0, ge=0, le=255)
    snp: int = Field(default=0, ge=0, le=255)
    microcode: int = Field(default=0, ge=0, le=255)
    fmc: int | None = Field(default=None, ge=0, le=255)


def _vmpl(value: Any) -> AllowList:
    parsed = value if isinstance(value, AllowList) else AllowList.model_validate(value)
    if parsed.refs or any(not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 3 for v in parsed.values):
        raise ValueError("vmpl values are integers 0-3 (no refs)")
    return parsed


class SnpRule(Strict):
    """Measurements, guest policy and TCB floors of an SNP guest.

    Required: measurement. Defaulting to all-zero: host_data, id_key_digest,
    author_key_digest, family_id, image_id (i.e. no ID block, no host data).
    chip_id defaults to `any`: the VCEK chain already binds the chip.
    """

    measurement: M48
    host_data: M32 = _zero(32)
    id_key_digest: M48 = _zero(48)
    author_key_digest: M48 = _zero(48)
    family_id: M16 = _zero(16)
    image_id: M16 = _zero(16)
    chip_id: M64 = HexAllowList(any=True, size=64)
    vmpl: Annotated[AllowList, BeforeValidator(_vmpl)] = AllowList(values=(0,))
    guest_policy: SnpGuestPolicyRule = SnpGuestPolicyRule()
    min_reported_tcb: SnpTcbFloor | None = None
    min_launch_tcb: SnpTcbFloor | None = None
    min_guest_svn: int | None = Field(default=None, ge=0, le=0xFFFFFFFF)
    min_firmware_version: str | None = None
    allow_provisional_firmware: bool = False

    @field_validator("min_firmware_version")
    @classmethod
    def _fw(cls, value: str | None) -> str | None:
        if value is not None and not _VERSION.fullmatch(value):
            raise ValueError("min_firmware_version is MAJOR.MINOR or MAJOR.MINOR.BUILD, e.g. \"1.55.40\"")
        return value
