"""One platform alternative: a TEE, its anchor and TCB rules, its measurements, its GPUs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from attestation.claims import TcbStatus

from .common import Strict, check_name
from .gpu import GpuRule
from .snp import SnpRule
from .tdx import TdxRule

CEL_MAX_CHARS = 2000


class Platform(Strict):
    """Claims satisfy a platform alternative when every one of its checks passes.

    `tdx` must be given when `tee: tdx` and `snp` when `tee: snp` (and not the other).
    No `gpus` section means the evidence must carry no GPUs.
    """

    name: str | None = None
    tee: Literal["tdx", "snp"]
    anchor: Literal["vendor", "emulated"] = "vendor"
    tcb_status: tuple[TcbStatus, ...] = (TcbStatus.UP_TO_DATE,)
    advisory_ids: tuple[str, ...] | Literal["any"] = ()
    insecure_allow_debug: bool = False
    tdx: TdxRule | None = None
    snp: SnpRule | None = None
    gpus: GpuRule | None = None
    condition: str | None = Field(default=None, max_length=CEL_MAX_CHARS)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "name")

    @field_validator("tcb_status")
    @classmethod
    def _statuses(cls, value: tuple[TcbStatus, ...]) -> tuple[TcbStatus, ...]:
        if not value:
            raise ValueError("an empty list accepts no TCB status; the default is [UpToDate]")
        if TcbStatus.REVOKED in value:
            raise ValueError("Revoked is always denied and cannot be allowed")
        return value

    @model_validator(mode="after")
    def _section_matches_tee(self) -> "Platform":
        own, other = (self.tdx, self.snp) if self.tee == "tdx" else (self.snp, self.tdx)
        if own is None:
            raise ValueError(f"tee is {self.tee}: give a `{self.tee}` section with its measurements")
        if other is not None:
            raise ValueError(f"tee is {self.tee}: remove the `{'snp' if self.tee == 'tdx' else 'tdx'}` section")
        return self
