"""The small non-weight files of a sealed model (config, tokenizer) in a private tmpfs directory.

vLLM and transformers read the model's config.json and tokenizer files from
a directory path; nothing in their APIs takes them from memory. So the
enclave decrypts those files — and only those — into a fresh directory under
/dev/shm (tmpfs: RAM, never a disk; inside a TDX/SNP guest that RAM is
encrypted by the CPU), created 0700 and removed when serving ends. Weight
files (safetensors, .bin, .pt, .gguf …) are never written anywhere: the
`veil-sealed` loader decrypts them straight into the worker's memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator

from .errors import UnsealError
from .sealing import SealedModel

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack", ".npz")
TMPFS = Path("/dev/shm")


def is_weight_file(name: str) -> bool:
    return name.lower().endswith(WEIGHT_SUFFIXES)


def weight_files(model: SealedModel) -> tuple[str, ...]:
    return tuple(n for n in model.names if n.endswith(".safetensors"))


def _safe_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UnsealError(name, "has a path that leaves the model directory")
    return rel


@contextmanager
def staged_config(model: SealedModel, *, root: Path = TMPFS) -> Iterator[Path]:
    """Decrypt the non-weight files of `model` into a new 0700 tmpfs directory; remove it on exit."""
    if not weight_files(model):
        raise UnsealError("manifest", "lists no .safetensors weight file; the veil-sealed loader reads "
                          "safetensors only")
    if not root.is_dir():
        raise UnsealError("manifest", f"{root} (tmpfs) is missing; non-weight files are staged only in memory")
    directory = Path(tempfile.mkdtemp(prefix="veil-model-", dir=root))   # mode 0700
    try:
        for name in model.names:
            if is_weight_file(name):
                continue
            target = directory / _safe_relative(name)
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with model.read(name) as buf:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(buf.view)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
