"""Building blocks shared by every rule: strict models, allow-lists, tri-state flags."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

_HEX = re.compile(r"[0-9a-f]*")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")

Flag = Literal["required", "allowed", "forbidden"]
"""A claim flag's rule: must be set, may be set, or must be clear."""


class Strict(BaseModel):
    """Frozen; unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"{what} must be 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
    return value


def normalize_hex(value: Any, size: int | None) -> str:
    """Lower-case hex of exactly `size` bytes (any even length when size is None)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a quoted hex string, got {type(value).__name__} {value!r} "
                         "(quote hex values in YAML: a value like 1234 or 1e5 is read as a number)")
    text = value.strip().lower()
    if not _HEX.fullmatch(text) or len(text) % 2:
        raise ValueError(f"{value!r} is not hex (an even number of 0-9, a-f)")
    if size is not None and len(text) != 2 * size:
        raise ValueError(f"expected {size} bytes ({2 * size} hex digits), got {len(text) // 2} bytes")
    return text


class AllowList(Strict):
    """Accepted values of one claim: literal values and named reference sets, or `any`.

    Written in a policy as `any`, a single value, `{ref: NAME}`, or a list of
    values and `{ref: NAME}` items. `any` waives the check visibly: the check
    still appears in every decision, marked as waived.
    """

    any: bool = False
    values: tuple[Any, ...] = ()
    refs: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if isinstance(data, AllowList):
            return data
        if isinstance(data, dict) and set(data) <= {"any", "values", "refs", "size"} and data:
            return data                       # the normalized form (model_dump round trip)
        if data == "any":
            return {"any": True}
        items = data if isinstance(data, list) else [data]
        values, refs = [], []
        for item in items:
            if isinstance(item, dict):
                if set(item) != {"ref"}:
                    raise ValueError(f"a list item is a value or {{ref: NAME}}, got keys {sorted(item)}")
                refs.append(check_name(item["ref"], "ref"))
            elif item == "any":
                raise ValueError("`any` stands alone: write `any`, not a list that contains it")
            else:
                values.append(item)
        if not values and not refs:
            raise ValueError("an empty list accepts nothing; name values or refs, or write `any`")
        return {"values": tuple(values), "refs": tuple(refs)}


class HexAllowList(AllowList):
    """An allow-list whose literal values are hex strings of one size (set by the field)."""

    size: int | None = None

    def sized(self, size: int | None) -> "HexAllowList":
        values = tuple(normalize_hex(v, size) for v in self.values)
        return self.model_copy(update={"values": values, "size": size})


def hex_list(size: int):
    """A validator turning a raw allow-list into a HexAllowList of `size`-byte values."""
    def convert(value: Any) -> HexAllowList | None:
        if value is None:
            return None
        parsed = value if isinstance(value, HexAllowList) else HexAllowList.model_validate(value)
        return parsed.sized(size)
    return convert
