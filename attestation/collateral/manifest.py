"""The manifest of an offline collateral bundle: format, validation, item names.

A bundle is a directory holding `manifest.json` and the item files it lists.
Each item has a `kind` ("tdx.tcb_info", "snp.vcek", "nvidia.rim", …), `keys`
that say which one it is (FMSPC, PCK CA, product, chip, TCB, RIM id…), a path
relative to the bundle, its SHA-256 and size, and the validity window the item
states about itself. The manifest may come from anywhere, so paths, sizes and
counts are checked before anything is opened.

    {"format": "veil-collateral-bundle", "version": 1, "created_at": "2026-02-20T09:00:00Z",
     "items": [{"kind": "tdx.tcb_info", "keys": {"fmspc": "90c06f000000"},
                "path": "tdx/1cd56245….json", "sha256": "1cd56245…", "size": 4268,
                "not_before": "2026-02-18T10:42:15Z", "not_after": "2026-03-20T10:42:15Z"}]}
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import CollateralError

FORMAT = "veil-collateral-bundle"
VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_ITEM_BYTES = 32 * 1024 * 1024
MAX_ITEMS = 100_000

KINDS = ("tdx.tcb_info", "tdx.qe_identity", "tdx.pck_crl", "tdx.root_ca_crl", "tdx.issuer_chain",
         "snp.vcek", "snp.vlek", "snp.crl", "snp.cert_chain", "nvidia.rim", "nvidia.ocsp")
_KIND = r"^[a-z][a-z0-9]*\.[a-z][a-z0-9_]*$"
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
Short = Annotated[str, Field(min_length=1, max_length=256)]


def check_relative_path(path: str) -> str:
    """A plain relative path inside the bundle: no absolute paths, "..", backslashes or odd names."""
    parts = path.split("/")
    if (len(path) > 512 or not parts or path == MANIFEST
            or any(not _SEGMENT.match(p) or p in (".", "..") for p in parts)):
        raise ValueError(f"path {path!r} is not a plain relative path inside the bundle")
    return path


class Item(BaseModel):
    """One collateral item as the manifest lists it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Annotated[str, Field(pattern=_KIND, max_length=64)]
    keys: dict[Short, Short] = Field(default_factory=dict, max_length=16)
    path: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(ge=0, le=MAX_ITEM_BYTES)]
    not_before: datetime | None = None
    not_after: datetime | None = None

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        return check_relative_path(value)

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return item_key(self.kind, self.keys)

    def describe(self) -> str:
        return describe(self.kind, self.keys)


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    format: Literal["veil-collateral-bundle"]
    version: Literal[1]
    created_at: datetime
    items: list[Item] = Field(default_factory=list, max_length=MAX_ITEMS)

    @model_validator(mode="after")
    def _unique(self) -> "Manifest":
        seen: set = set()
        for item in self.items:
            if item.key in seen:
                raise ValueError(f"{item.describe()} is listed more than once")
            seen.add(item.key)
        return self


def item_key(kind: str, keys: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return kind, tuple(sorted(keys.items()))


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Validate manifest bytes; any problem is a CollateralError naming the bundle."""
    try:
        return Manifest.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "document"
        raise CollateralError(f"offline bundle {where}", f"manifest is invalid at {loc}: {first['msg']}",
                              hint="re-create the bundle with `veil attest collateral fetch`") from None


_NAMES = {
    "tdx.tcb_info": "TDX TCB info for FMSPC {fmspc}",
    "tdx.qe_identity": "TDX QE identity for FMSPC {fmspc}",
    "tdx.pck_crl": "Intel PCK CRL ({ca} CA) for FMSPC {fmspc}",
    "tdx.root_ca_crl": "Intel SGX root CA CRL for FMSPC {fmspc}",
    "snp.vcek": "VCEK for {product} chip {chip_id:.16}… at TCB {tcb}",
    "snp.vlek": "VLEK for {product} at TCB {tcb}",
    "snp.crl": "CRL for the AMD {product} {signer} hierarchy",
    "snp.cert_chain": "AMD {product} {signer} certificate chain",
    "nvidia.rim": "NVIDIA RIM {id}",
}


def describe(kind: str, keys: dict[str, str]) -> str:
    """A human name for an item, e.g. "TDX TCB info for FMSPC 90c06f000000"."""
    if kind == "tdx.issuer_chain":
        of = keys.get("for", "?")
        return f"issuer chain of the {describe(of, {k: v for k, v in keys.items() if k != 'for'})}"
    template = _NAMES.get(kind)
    if template is not None:
        try:
            return template.format(**{k: v.upper() if k == "signer" else v for k, v in keys.items()})
        except (KeyError, ValueError):
            pass
    detail = ", ".join(f"{k}={v}" for k, v in sorted(keys.items()))
    return f"{kind} ({detail})" if detail else kind
