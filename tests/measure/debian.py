"""Files out of Debian packages, for tests that need real firmware and kernels.

`package_file` downloads a package with `apt-get download` (the mirror CI uses,
deb.debian.org), takes one file out of its data archive (`dpkg-deb`), and keeps that file in
a cache directory, so later runs read it from disk with no network at all. When
apt-get or dpkg-deb is missing or the mirror cannot be reached, the test that asked skips
and says why.

Cache: $VEIL_TEST_CACHE, else ~/.cache/veil-test-vectors.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("VEIL_TEST_CACHE") or Path.home() / ".cache" / "veil-test-vectors")
APT_TIMEOUT = 300


def package_file(package: str, member: str, *, depends: bool = False) -> tuple[bytes, str]:
    """(bytes, provenance) of the file matching `member` (a glob, no leading ./) in `package`.

    With depends=True, `package` is a metapackage (linux-image-cloud-amd64) and
    the file comes from the versioned package it depends on. Provenance names
    the .deb the file came from. Skips the calling test when it cannot be had.
    """
    slot = CACHE / package / member.replace("/", "_").replace("*", "@")
    note = slot.parent / (slot.name + ".source")
    if slot.is_file() and note.is_file():
        return slot.read_bytes(), note.read_text()
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip(f"{package}: apt-get or dpkg-deb is not available and {slot} is not cached")
    name = _dependency(package) if depends else package
    with tempfile.TemporaryDirectory() as tmp:
        done = _run(["apt-get", "download", name], cwd=tmp)
        debs = sorted(Path(tmp).glob("*.deb"))
        if done.returncode != 0 or not debs:
            pytest.skip(f"apt-get download {name} failed (mirror unreachable or apt lists missing: "
                        f"run apt-get update): {done.stderr.strip()[-300:]}")
        data, path = _data_member(debs[0], member)
    source = f"{debs[0].name}:/{path}"
    _store(slot, data)
    _store(note, source.encode("utf-8"))            # written last: its presence means the slot is whole
    return data, source


def _store(path: Path, data: bytes) -> None:
    """Write atomically (pytest-xdist workers may fetch the same package at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as out:
        out.write(data)
    os.replace(out.name, path)


def _run(argv: list[str], cwd: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=APT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.skip(f"{' '.join(argv)} took over {APT_TIMEOUT} s")


def _dependency(package: str) -> str:
    """The package a metapackage depends on (its first Depends entry)."""
    shown = _run(["apt-cache", "show", "--no-all-versions", package])
    found = re.search(r"^Depends: ([a-z0-9.+-]+)", shown.stdout, re.MULTILINE)
    if shown.returncode != 0 or found is None:
        pytest.skip(f"apt-cache show {package} gave no Depends (apt lists missing? run apt-get update)")
    return found.group(1)


def _data_member(deb: Path, member: str) -> tuple[bytes, str]:
    """The first file matching `member` in a .deb's data archive (read through `dpkg-deb --fsys-tarfile`)."""
    tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True,
                               timeout=APT_TIMEOUT).stdout
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for info in tar:
            path = info.name.removeprefix("./")
            if info.isfile() and fnmatch.fnmatchcase(path, member):
                return tar.extractfile(info).read(), path
    raise AssertionError(f"no file matching {member} in {deb.name}")
