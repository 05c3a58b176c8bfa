"""Fixtures: a small fake configfs-tsm kernel behind a temporary directory.

Implements the kernel semantics of Linux Documentation/ABI/testing/configfs-tsm-report that the
attester relies on: mkdir populates an entry; writes to inblob/privlevel bump
`generation`; reading outblob/auxblob needs an inblob; rmdir removes the entry.
`interfere` simulates another writer bumping the generation during a read.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from attestation.attesters import TsmFilesystem


class FakeTsm(TsmFilesystem):
    def __init__(self, root: Path, *, provider: str = "tdx_guest", auxblob: bytes = b"",
                 interfere: int = 0) -> None:
        self.root = root
        self.provider = provider
        self.auxblob = auxblob
        self.interfere = interfere
        self.created: list[Path] = []
        self.removed: list[Path] = []
        self.inblob_sizes: list[int] = []
        root.mkdir(parents=True, exist_ok=True)

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)
        self.created.append(path)
        files = {"generation": b"0\n", "provider": self.provider.encode() + b"\n",
                 "inblob": b"", "outblob": b""}
        if self.provider == "sev_guest":
            files |= {"auxblob": b"", "privlevel": b"", "privlevel_floor": b"0\n"}
        for name, data in files.items():
            (path / name).write_bytes(data)

    def _bump(self, entry: Path) -> None:
        generation = int((entry / "generation").read_bytes()) + 1
        (entry / "generation").write_bytes(f"{generation}\n".encode())

    def write(self, path: Path, data: bytes) -> None:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "no such attribute", str(path))
        if path.name == "inblob":
            self.inblob_sizes.append(len(data))
            if len(data) != 64:
                raise OSError(errno.EINVAL, "inblob must be 64 bytes")
        path.write_bytes(data)
        self._bump(path.parent)

    def read(self, path: Path) -> bytes:
        entry = path.parent
        if path.name in ("outblob", "auxblob"):
            inblob = (entry / "inblob").read_bytes()
            if not inblob:
                raise OSError(errno.EINVAL, "no inblob written")
            if self.interfere:
                self.interfere -= 1
                self._bump(entry)
            if path.name == "auxblob":
                return self.auxblob
            return b"REPORT:" + self.provider.encode() + b":" + inblob
        return path.read_bytes()

    def rmdir(self, path: Path) -> None:
        for child in path.iterdir():
            child.unlink()
        os.rmdir(path)
        self.removed.append(path)


@pytest.fixture
def fake_kernel():
    """Factory: fake_kernel(root, provider=..., auxblob=..., interfere=...) -> FakeTsm."""
    return FakeTsm
