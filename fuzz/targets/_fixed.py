"""Fixed, public test keys and paths shared by targets and the seed script (fuzzing only, never real)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

DATA = Path(__file__).resolve().parents[1] / "data"
AT_TDX = datetime(2025, 7, 1, tzinfo=timezone.utc)      # inside the window of data/tdx_collateral.json
AT_SNP = datetime(2026, 1, 1, tzinfo=timezone.utc)      # inside the VCEK validity of all three SNP seeds
SEAL_KEY = bytes(range(1, 33))
SEALED_FILE = "config.json"                             # the file of the seed model that sealed_blob reads


def ec_key(n: int, curve: ec.EllipticCurve = ec.SECP256R1()) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(0xF0220000 + n, curve)


def ed_key(n: int) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes([n]) * 32)
