"""Parse a safetensors file that lies in memory, without copying: tensors are views of the buffer.

Layout (huggingface/safetensors): an 8-byte little-endian header length N, N
bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
{...}}, then the data; offsets are relative to the end of the header. Every
offset, size and dtype is checked before a view is made.
"""

from __future__ import annotations

import json
import math
from typing import Iterator

from .errors import UnsealError

_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
}
_MAX_HEADER = 100 * 1024 * 1024


def read_header(data: memoryview, name: str) -> tuple[dict, int]:
    """The JSON header and the offset where tensor data begins."""
    if len(data) < 8:
        raise UnsealError(name, "is not a safetensors file (shorter than its 8-byte header length)")
    size = int.from_bytes(data[:8], "little")
    if size > _MAX_HEADER or 8 + size > len(data):
        raise UnsealError(name, f"is not a safetensors file (header length {size} exceeds the file)")
    try:
        header = json.loads(bytes(data[8:8 + size]))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UnsealError(name, "is not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise UnsealError(name, "is not a safetensors file (header is not a JSON object)")
    return header, 8 + size


def iter_tensors(data: memoryview, name: str) -> Iterator[tuple[str, "torch.Tensor"]]:  # noqa: F821
    """Yield (tensor name, tensor) for every tensor of the safetensors file in `data`, zero-copy."""
    import torch

    header, base = read_header(data, name)
    limit = len(data) - base
    for tensor_name, info in header.items():
        if tensor_name == "__metadata__":
            continue
        try:
            dtype = getattr(torch, _DTYPES[info["dtype"]])
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):   # OverflowError: int(1e400)
            raise UnsealError(name, f"tensor {tensor_name!r} has an unsupported dtype or malformed entry") from None
        count = math.prod(shape)
        if not 0 <= begin <= end <= limit or end - begin != count * dtype.itemsize:
            raise UnsealError(name, f"tensor {tensor_name!r} has data offsets outside the file or of the "
                              "wrong size")
        if count == 0:
            yield tensor_name, torch.empty(shape, dtype=dtype)
            continue
        flat = torch.frombuffer(data, dtype=dtype, count=count, offset=base + begin)
        yield tensor_name, flat.view(shape)
