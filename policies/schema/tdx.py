"""What a platform alternative requires of TDX claims (Intel TDX DCAP quote fields)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator

from .common import Flag, HexAllowList, Strict, hex_list, normalize_hex

M48 = Annotated[HexAllowList, BeforeValidator(hex_list(48))]
M8 = Annotated[HexAllowList, BeforeValidator(hex_list(8))]
M6 = Annotated[HexAllowList, BeforeValidator(hex_list(6))]

ZERO48 = HexAllowList(values=("00" * 48,), size=48)


class TdAttributesRule(Strict):
    """TD_ATTRIBUTES flags. DEBUG is governed by the platform's `insecure_allow_debug`;
    reserved bits must always be zero."""

    sept_ve_disable: Flag = "required"
    pks: Flag = "allowed"
    kl: Flag = "allowed"
    perfmon: Flag = "allowed"


class TdxRule(Strict):
    """Measurements, attributes and TCB floors of a TD.

    Required (no default: pin them, or write `any`): mrtd, rtmr0, rtmr1, rtmr2, mrseam.
    Defaulting to all-zero: rtmr3, mrsignerseam (Intel's module signer),
    mrconfigid, mrowner, mrownerconfig, mrservicetd.
    """

    mrtd: M48
    rtmr0: M48
    rtmr1: M48
    rtmr2: M48
    rtmr3: M48 = ZERO48
    mrseam: M48
    mrsignerseam: M48 = ZERO48
    mrconfigid: M48 = ZERO48
    mrowner: M48 = ZERO48
    mrownerconfig: M48 = ZERO48
    mrservicetd: M48 = ZERO48
    xfam: Annotated[HexAllowList | None, BeforeValidator(hex_list(8))] = None
    td_attributes: TdAttributesRule = TdAttributesRule()
    fmspc: M6 = HexAllowList(any=True, size=6)
    min_tee_tcb_svn: str | None = None
    min_qe_isvsvn: int | None = Field(default=None, ge=0, le=65535)

    @field_validator("min_tee_tcb_svn", mode="before")
    @classmethod
    def _svn(cls, value: object) -> str | None:
        return None if value is None else normalize_hex(value, 16)
