"""ConfigfsTsmAttester: TDX quotes and SNP reports through Linux configfs-tsm (kernel ≥ 6.7).

The safe procedure for Linux Documentation/ABI/testing/configfs-tsm-report (as go-configfs-tsm does it):

1. mkdir a uniquely named entry under the report root; read `generation` → g0;
2. write the 64-byte `inblob` (expect g0+1);
3. optionally write `privlevel` (SNP; expect g0+2);
4. read `auxblob` (SNP) and `outblob`, re-reading `generation` after each: if it moved,
   another writer interfered — discard and retry (bounded);
5. read `provider` and check it;
6. rmdir the entry, always.

File access goes through a small `TsmFilesystem`, so tests can put a fake
kernel behind a temporary directory.
"""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

from ..errors import AttesterError
from ..evidence import Evidence, Tee
from .base import check_report_data
from .certtable import certificates_from_auxblob

DEFAULT_ROOT = "/sys/kernel/config/tsm/report"
PROVIDERS: dict[str, Tee] = {"tdx_guest": "tdx", "sev_guest": "snp"}
BUSY_ERRNOS = {errno.EBUSY, errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT}


class GenerationRace(Exception):
    """The entry's generation moved under us: another writer used the same entry."""


class TsmFilesystem:
    """The handful of file operations the attester needs (real files by default)."""

    def mkdir(self, path: Path) -> None:
        os.mkdir(path, 0o700)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)

    def read(self, path: Path) -> bytes:
        with open(path, "rb", buffering=0) as handle:
            return handle.read()

    def write(self, path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(errno.EIO, f"short write to {path}")
        finally:
            os.close(fd)

    def exists(self, path: Path) -> bool:
        return os.path.exists(path)


class ConfigfsTsmAttester:
    """Collect evidence through configfs-tsm. `tee` (optional) is the provider you expect."""

    def __init__(self, root: str | Path = DEFAULT_ROOT, *, tee: Tee | None = None,
                 privlevel: int | None = None, max_attempts: int = 3,
                 fs: TsmFilesystem | None = None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.root = Path(root)
        self.privlevel = privlevel
        self.max_attempts = max_attempts
        self.fs = fs or TsmFilesystem()
        self._tee = tee

    def __repr__(self) -> str:
        return f"ConfigfsTsmAttester({str(self.root)!r})"

    @property
    def tee(self) -> Tee:
        """The TEE behind this interface (probes the provider once if not given)."""
        if self._tee is None:
            self._tee = self._probe()
        return self._tee

    def collect(self, report_data: bytes) -> Evidence:
        report_data = check_report_data(report_data)
        self._require_root()
        for _ in range(self.max_attempts):
            try:
                return self._attempt(report_data)
            except GenerationRace:
                continue
        raise AttesterError(str(self.root), f"generation changed during each of {self.max_attempts} "
                            "attempts: another process is writing to the same report entry")

    # ------------------------------------------------------------------ steps

    def _require_root(self) -> None:
        if not self.fs.exists(self.root):
            raise AttesterError(str(self.root), "absent (mount configfs with `mount -t configfs none "
                                "/sys/kernel/config`, or use kernel ≥ 6.7 with a TDX/SNP guest driver)")

    def _mkdir(self) -> Path:
        entry = self.root / f"veil-{uuid.uuid4().hex}"
        try:
            self.fs.mkdir(entry)
        except OSError as exc:
            raise AttesterError(str(self.root), f"cannot create a report entry: {_describe(exc)}") from None
        return entry

    def _probe(self) -> Tee:
        self._require_root()
        entry = self._mkdir()
        try:
            return self._provider(entry, expected=None)
        finally:
            self._rmdir(entry)

    def _attempt(self, report_data: bytes) -> Evidence:
        entry = self._mkdir()                                                  # (1)
        try:
            expected = self._generation(entry) + 1
            self._write(entry / "inblob", report_data)                         # (2)
            if self.privlevel is not None:                                     # (3)
                self._write(entry / "privlevel", str(self.privlevel).encode())
                expected += 1
            auxblob = b""
            if self.fs.exists(entry / "auxblob"):                              # (4)
                auxblob = self._read_checked(entry, "auxblob", expected)
            outblob = self._read_checked(entry, "outblob", expected)
            tee = self._provider(entry, expected=self._tee)                    # (5)
        finally:
            self._rmdir(entry)                                                 # (6)
        certificates = certificates_from_auxblob(auxblob) if tee == "snp" else ()
        return Evidence(tee, outblob, certificates)

    def _generation(self, entry: Path) -> int:
        raw = self._read(entry / "generation").strip()
        try:
            return int(raw)
        except ValueError:
            raise AttesterError(str(entry / "generation"), f"not a decimal counter: {raw[:32]!r}") from None

    def _read_checked(self, entry: Path, name: str, expected: int) -> bytes:
        blob = self._read(entry / name)
        actual = self._generation(entry)
        if actual != expected:
            raise GenerationRace(f"{name}: generation {actual}, expected {expected}")
        return blob

    def _provider(self, entry: Path, *, expected: Tee | None) -> Tee:
        name = self._read(entry / "provider").decode("ascii", "replace").strip()
        tee = PROVIDERS.get(name)
        if tee is None:
            raise AttesterError(f"{self.root} provider", f"unsupported TSM provider {name!r}; "
                                f"expected one of {sorted(PROVIDERS)}")
        if expected is not None and tee != expected:
            raise AttesterError(f"{self.root} provider", f"provider is {name!r} ({tee}), "
                                f"but {expected} evidence was requested")
        return tee

    # ------------------------------------------------------------------ I/O

    def _read(self, path: Path) -> bytes:
        try:
            return self.fs.read(path)
        except OSError as exc:
            if exc.errno in BUSY_ERRNOS:
                raise GenerationRace(f"{path.name}: {_describe(exc)}") from None
            raise AttesterError(str(path), f"read failed: {_describe(exc)}") from None

    def _write(self, path: Path, data: bytes) -> None:
        try:
            self.fs.write(path, data)
        except OSError as exc:
            if exc.errno in BUSY_ERRNOS:
                raise GenerationRace(f"{path.name}: {_describe(exc)}") from None
            raise AttesterError(str(path), f"write failed: {_describe(exc)}") from None

    def _rmdir(self, entry: Path) -> None:
        try:
            self.fs.rmdir(entry)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise AttesterError(str(entry), f"could not remove the report entry: {_describe(exc)}") from None


def _describe(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "error")
    return f"{name} ({os.strerror(exc.errno)})" if exc.errno else str(exc)
