"""Where Veil keeps per-user state: $VEIL_HOME, else the XDG data and cache folders."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    if os.environ.get("VEIL_HOME"):
        return Path(os.environ["VEIL_HOME"])
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "veil"


def cache() -> Path:
    if os.environ.get("VEIL_HOME"):
        return Path(os.environ["VEIL_HOME"]) / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "veil"


def emulated_vendor() -> Path:
    return home() / "emulated-vendor"
