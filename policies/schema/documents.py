"""The two document kinds: `ReleasePolicy` and `ReferenceValues` (apiVersion veil.dev/v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from ..resources import check_pattern
from .common import Strict, check_name, normalize_hex
from .platform import Platform

API_VERSION = "veil.dev/v1"


class Metadata(Strict):
    name: str
    description: str | None = Field(default=None, max_length=4000)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "metadata.name")


class PolicySpec(Strict):
    """`resources` the policy governs; `platforms`, alternatives of which one must pass.

    An absent or empty `platforms` list denies everything.
    """

    resources: tuple[str, ...] = Field(min_length=1, max_length=256)
    platforms: tuple[Platform, ...] = Field(default=(), max_length=64)

    @field_validator("resources")
    @classmethod
    def _patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_pattern(p) for p in value)

    @model_validator(mode="after")
    def _one_anchor_kind(self) -> "PolicySpec":
        kinds = {p.anchor for p in self.platforms}
        if len(kinds) > 1:
            raise ValueError("a policy accepts either vendor or emulated anchors, never both: "
                             "write a separate development policy for emulated hardware")
        return self


class ReleasePolicy(Strict):
    api_version: Literal["veil.dev/v1"] = Field(alias="apiVersion")
    kind: Literal["ReleasePolicy"]
    metadata: Metadata
    spec: PolicySpec


class ReferenceValue(Strict):
    """One accepted value and where it came from. Not accepted at or after `expires`."""

    value: str
    source: str = Field(min_length=1, max_length=1000)
    build_id: str | None = Field(default=None, max_length=200)
    added_by: str = Field(min_length=1, max_length=200)
    added_at: AwareDatetime
    expires: AwareDatetime
    note: str | None = Field(default=None, max_length=1000)

    @field_validator("value", mode="before")
    @classmethod
    def _hex(cls, value: object) -> str:
        return normalize_hex(value, None)

    @model_validator(mode="after")
    def _dates(self) -> "ReferenceValue":
        if self.expires <= self.added_at:
            raise ValueError("expires must be after added_at")
        return self

    def expired(self, at: datetime) -> bool:
        return at >= self.expires


class ReferenceSet(Strict):
    name: str
    description: str | None = Field(default=None, max_length=4000)
    values: tuple[ReferenceValue, ...] = Field(min_length=1, max_length=4096)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "name")


class ReferenceSpec(Strict):
    sets: tuple[ReferenceSet, ...] = Field(min_length=1)


class ReferenceValues(Strict):
    api_version: Literal["veil.dev/v1"] = Field(alias="apiVersion")
    kind: Literal["ReferenceValues"]
    metadata: Metadata
    spec: ReferenceSpec
