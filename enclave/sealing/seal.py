"""Seal a model directory: stream every file through chunked AES-256-GCM on every core."""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Callable

from ..errors import SealingError
from ..secrets import DataKey
from .format import CHUNK_SIZE, MANIFEST_NAME, FileHeader, chunk_aad, chunk_count, chunk_nonce, file_cipher
from .manifest import Manifest, SealedFile, seal_manifest

Progress = Callable[[int], None]


def model_files(model_dir: Path) -> list[Path]:
    """Every regular file below `model_dir`, sorted; symlinks leaving the directory are refused."""
    root = model_dir.resolve()
    if not root.is_dir():
        raise SealingError(f"{model_dir} is not a directory")
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() and root not in path.resolve().parents:
            raise SealingError(f"{path} is a symlink that leaves the model directory")
        if path.is_file():
            files.append(path)
    if not files:
        raise SealingError(f"{model_dir} holds no files to seal")
    return files


def seal_model(model_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], key: DataKey, *,
               model_name: str | None = None, chunk_size: int = CHUNK_SIZE, workers: int | None = None,
               progress: Progress | None = None) -> Manifest:
    """Seal every file of `model_dir` into the new directory `out_dir` (written atomically)."""
    source, target = Path(model_dir), Path(out_dir)
    if target.exists() and any(target.iterdir()):
        raise SealingError(f"{target} exists and is not empty; choose a new output directory")
    files = model_files(source)
    workers = workers or os.cpu_count() or 1
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with ThreadPoolExecutor(workers) as pool:
            entries = [_seal_file(p, p.relative_to(source.resolve()).as_posix(), staging, key, chunk_size,
                                  pool, workers, progress) for p in files]
        manifest = Manifest(model_name=model_name or source.resolve().name,
                            created_at=datetime.now(timezone.utc), chunk_size=chunk_size, files=tuple(entries))
        (staging / MANIFEST_NAME).write_bytes(seal_manifest(manifest, key))
        if target.exists():
            target.rmdir()
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _seal_file(path: Path, name: str, staging: Path, key: DataKey, chunk_size: int,
               pool: ThreadPoolExecutor, workers: int, progress: Progress | None) -> SealedFile:
    size = path.stat().st_size
    header = FileHeader(file_id=os.urandom(16), chunk_size=chunk_size, plaintext_size=size,
                        chunk_count=chunk_count(size, chunk_size))
    packed = header.pack()
    cipher = file_cipher(key, header.file_id)
    blob = f"{header.file_id.hex()}.vsf"

    def encrypt(item: tuple[int, bytes]) -> bytes:
        index, plaintext = item
        final = index == header.chunk_count - 1
        return cipher.encrypt(chunk_nonce(index), plaintext, chunk_aad(packed, index, final))

    with path.open("rb") as src, (staging / blob).open("wb") as out:
        out.write(packed)
        index = 0
        for batch in _batches(src, header, workers * 2):
            for sealed in pool.map(encrypt, zip(range(index, index + len(batch)), batch)):
                out.write(sealed)
            index += len(batch)
            if progress:
                progress(sum(len(b) for b in batch))
        if index != header.chunk_count or src.read(1):
            raise SealingError(f"{path} changed while it was being sealed")
    return SealedFile(name=name, blob=blob, size=size, chunks=header.chunk_count)


def _batches(src: BinaryIO, header: FileHeader, per_batch: int):
    remaining = header.chunk_count
    while remaining:
        batch = []
        for _ in range(min(per_batch, remaining)):
            index = header.chunk_count - remaining
            _, length, _ = header.chunk_span(index)
            data = src.read(length)
            if len(data) != length:
                raise SealingError("a file shrank while it was being sealed")
            batch.append(data)
            remaining -= 1
        yield batch
