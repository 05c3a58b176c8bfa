"""The zero-copy safetensors parser behind the sealed loader (enclave.tensors.iter_tensors): only UnsealError."""

from __future__ import annotations

from enclave.errors import UnsealError
from enclave.tensors import iter_tensors


def test_one_input(data: bytes) -> None:
    try:
        for _ in iter_tensors(memoryview(bytearray(data)), "fuzz.safetensors"):
            pass
    except UnsealError:
        pass
