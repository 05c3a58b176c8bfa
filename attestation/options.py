"""Verification options: frozen, keyword-only, safe by default; time and I/O passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .anchors import TrustAnchors
from .collateral import CollateralSource


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyOptions:
    anchors: TrustAnchors          # the only roots trusted; never the evidence's own root
    collateral: CollateralSource   # online and cached, or an offline bundle
    at: datetime                   # the caller decides "now"; auditors replay the past
    check_revocation: bool = True  # offline sites pass a bundle that carries CRLs
    allow_debug: bool = False      # a debug TD / SNP guest has host-readable memory
