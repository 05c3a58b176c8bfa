"""Emulated TEE hardware: a locally generated "emulated vendor" trust anchor.

Evidence it produces is structurally real (byte-exact TDX quotes, SNP reports,
X.509 chains, Intel/AMD collateral) and goes through the production verifier;
only the trust anchor differs, and claims name it (kind="emulated").
"""

from __future__ import annotations

from .collateral import EmulatedCollateral
from .export import load_anchors, write_anchors
from .nvidia import EmulatedNvidia, EmulatedRims, load_nvidia_anchors, write_nvidia_anchors
from .pck import TdxPlatform
from .tdx import TdBody
from .vendor import EmulatedVendor

__all__ = ["EmulatedCollateral", "EmulatedNvidia", "EmulatedRims", "EmulatedVendor", "TdBody", "TdxPlatform",
           "load_anchors", "load_nvidia_anchors", "write_anchors", "write_nvidia_anchors"]
