"""What a platform alternative requires of the NVIDIA GPUs bound to its CPU evidence."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from .common import AllowList, Strict


def _words(allowed: set[str]):
    def convert(value: Any) -> AllowList:
        if isinstance(value, list):        # YAML 1.1 reads a bare on/off as a boolean
            value = [{True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v for v in value]
        parsed = value if isinstance(value, AllowList) else AllowList.model_validate(value)
        bad = [v for v in parsed.values if v not in allowed]
        if bad or parsed.refs:
            raise ValueError(f"values must be among {sorted(allowed)} (no refs); got {bad or list(parsed.refs)}")
        return parsed
    return convert


class GpuRule(Strict):
    """GPU requirements: how many, in which mode, which firmware and driver.

    Exactly one of `count` (exactly this many) and `min_count` (at least this many).
    """

    count: int | None = Field(default=None, ge=0, le=64)
    min_count: int | None = Field(default=None, ge=1, le=64)
    architectures: Annotated[AllowList, BeforeValidator(_words({"hopper", "blackwell"}))] = \
        AllowList(values=("hopper", "blackwell"))
    cc_mode: Annotated[AllowList, BeforeValidator(_words({"on", "devtools", "off"}))] = AllowList(values=("on",))
    require_rim_match: bool = True
    min_driver_version: str | None = None

    @field_validator("min_driver_version")
    @classmethod
    def _driver(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{1,4}(\.\d{1,4}){0,3}", value):
            raise ValueError("min_driver_version is dotted numbers, e.g. \"550.90.07\"")
        return value

    @model_validator(mode="after")
    def _one_count(self) -> "GpuRule":
        if (self.count is None) == (self.min_count is None):
            raise ValueError("give exactly one of `count` (exact) and `min_count` (at least)")
        return self
