"""The `veil-sealed` vLLM load format: weights decrypted into the worker's memory, never onto a disk.

Registered with vLLM's `register_model_loader` by enclave.plugin (through the
`vllm.general_plugins` entry point, so every worker process has it). Its
config, in vLLM's `model_loader_extra_config`:

    {"sealed_dir": "/models/llama-sealed", "key_agent": "veil-key-…"}

`key_agent` names the enclave process's KeyAgent (enclave.keyagent), which
hands the data key to this worker over an abstract UNIX socket. `model` (the
path vLLM reads config.json and the tokenizer from) is the tmpfs directory of
enclave.staging.

Loading: fetch the key → authenticate the manifest → decrypt each safetensors
file into a SecureBuffer (anonymous, unswappable where allowed, not dumped) →
tensors are zero-copy views of it → the model's own `load_weights` copies
them into its parameters → any parameter still sharing a buffer is cloned →
every buffer is wiped and unmapped, the key is wiped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from torch import nn
from vllm.config import ModelConfig
from vllm.config.load import LoadConfig
from vllm.logger import init_logger
from vllm.model_executor.model_loader.base_loader import BaseModelLoader

from . import keyagent
from .errors import EnclaveError, UnsealError
from .secrets import DataKey, SecureBuffer
from .sealing import SealedModel, open_sealed
from .staging import weight_files
from .tensors import iter_tensors

LOAD_FORMAT = "veil-sealed"
logger = init_logger(__name__)


@dataclass(frozen=True, slots=True)
class SealedSource:
    sealed_dir: str
    key_agent: str

    @classmethod
    def from_extra_config(cls, extra: object) -> SealedSource:
        if not isinstance(extra, dict) or set(extra) != {"sealed_dir", "key_agent"}:
            keys = sorted(extra) if isinstance(extra, dict) else type(extra).__name__
            raise ValueError(f"load format {LOAD_FORMAT} needs model_loader_extra_config with exactly "
                             f"'sealed_dir' and 'key_agent'; got {keys}")
        return cls(str(extra["sealed_dir"]), str(extra["key_agent"]))


class SealedWeights:
    """Decrypted weight files of one sealed model, alive until close() wipes them."""

    def __init__(self, model: SealedModel) -> None:
        self._model = model
        self._buffers: list[SecureBuffer] = []
        self.plaintext_bytes = 0                  # decrypted so far

    def __iter__(self) -> Iterator[tuple[str, "torch.Tensor"]]:  # noqa: F821
        for name in weight_files(self._model):
            buffer = self._model.read(name)
            self._buffers.append(buffer)
            self.plaintext_bytes += buffer.size
            yield from iter_tensors(buffer.view, name)

    def owns(self, tensor) -> bool:
        """True when `tensor`'s storage lies inside one of our plaintext buffers."""
        if tensor.device.type != "cpu" or tensor.numel() == 0:
            return False
        ptr = tensor.untyped_storage().data_ptr()
        for buffer in self._buffers:
            start = _address(buffer)
            if start <= ptr < start + buffer.size:
                return True
        return False

    def detach_from(self, module: nn.Module) -> int:
        """Clone every parameter or buffer of `module` that still views our memory; return how many."""
        moved = 0
        for tensors in (module.parameters(), module.buffers()):
            for t in tensors:
                if self.owns(t):
                    t.data = t.data.clone()
                    moved += 1
        return moved

    def close(self) -> None:
        for buffer in self._buffers:
            buffer.close()
        self._buffers.clear()


def _address(buffer: SecureBuffer) -> int:
    import ctypes

    view = buffer.view
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(view))
    finally:
        view.release()


def load_sealed_into(module: nn.Module, sealed_dir: str, key: DataKey,
                     decrypted: list[int] | None = None) -> set[str] | None:
    """Decrypt the sealed weights in memory and load them into `module` (a vLLM model); the plaintext
    byte count is appended to `decrypted` where given."""
    weights = SealedWeights(open_sealed(sealed_dir, key))
    try:
        loaded = module.load_weights(iter(weights))
        weights.detach_from(module)
        return loaded
    finally:
        if decrypted is not None:
            decrypted.append(weights.plaintext_bytes)
        weights.close()


class SealedModelLoader(BaseModelLoader):
    """vLLM model loader for Veil's sealed-weights format (enclave.sealing)."""

    def __init__(self, load_config: LoadConfig) -> None:
        super().__init__(load_config)
        self.source = SealedSource.from_extra_config(load_config.model_loader_extra_config)

    def download_model(self, model_config: ModelConfig) -> None:
        """Nothing to download: the sealed directory is local."""

    def load_weights(self, model: nn.Module, model_config: ModelConfig) -> None:
        name, decrypted = self.source.key_agent, []
        try:
            key = keyagent.fetch_key(name)
            started = time.monotonic()
            try:
                loaded = load_sealed_into(model, self.source.sealed_dir, key, decrypted)
            finally:
                key.wipe()
            _check_complete(model, loaded)
        except EnclaveError as exc:
            keyagent.report(name, f"{exc.code}: {exc}")
            raise
        keyagent.report(name, keyagent.unsealed_report(decrypted[0], time.monotonic() - started))
        keyagent.report(name, "ok")
        logger.info("Loaded sealed weights from %s (decrypted in memory)", self.source.sealed_dir)


def _check_complete(model: nn.Module, loaded: set[str] | None) -> None:
    if loaded is None:
        return
    missing = sorted({n for n, _ in model.named_parameters()} - set(loaded))
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise UnsealError("weights", f"the sealed model lacks {len(missing)} parameter(s) the model needs: {shown}")
