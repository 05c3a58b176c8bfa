"""On-disk storage of the emulated vendor: a private directory of PEM files.

The directory is created 0700; private keys are written 0600 and only here.
Every write goes to a temporary file in the same directory, is fsynced and then
renamed over the target, so a crash never leaves a half-written key or
certificate behind.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..fsutil import atomic_write

DIR_MODE = 0o700
KEY_MODE = 0o600
CERT_MODE = 0o644


def make_private_dir(path: Path) -> None:
    """Create `path` (and parents) and force its mode to 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)


def write_key(path: Path, key: PrivateKeyTypes) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    atomic_write(path, pem, KEY_MODE)


def read_key(path: Path) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    atomic_write(path, cert.public_bytes(serialization.Encoding.PEM), CERT_MODE)


def read_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())
