"""A sealed weights file (header + AES-GCM chunks) read through enclave.sealing.unseal: only UnsealError.

The seed model (fuzz/data/sealed_model, made by `python -m fuzz.seeds`) is
copied to a scratch directory once; each input replaces the blob of one file
and is read back under the fixed fuzzing key.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from enclave.errors import UnsealError
from enclave.secrets import DataKey
from enclave.sealing.unseal import open_sealed

from ._fixed import DATA, SEAL_KEY, SEALED_FILE

KEY = DataKey(SEAL_KEY)
_DIR = Path(tempfile.mkdtemp(prefix="veil-fuzz-sealed-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
shutil.copytree(DATA / "sealed_model", _DIR, dirs_exist_ok=True)
MODEL = open_sealed(_DIR, KEY, workers=1)
_BLOB = _DIR / MODEL.manifest.file(SEALED_FILE).blob


def test_one_input(data: bytes) -> None:
    _BLOB.write_bytes(data)
    try:
        MODEL.read(SEALED_FILE).close()
    except UnsealError:
        pass
