"""vLLM general plugin: registers the `veil-sealed` load format in every vLLM process.

Wired in pyproject.toml:

    [project.entry-points."vllm.general_plugins"]
    veil_sealed = "enclave.plugin:register"

vLLM calls every general plugin in the engine process and in each worker it
spawns, so the loader exists where the weights are loaded.
"""

from __future__ import annotations

_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    from vllm.model_executor.model_loader import register_model_loader

    from .loader import LOAD_FORMAT, SealedModelLoader

    register_model_loader(LOAD_FORMAT)(SealedModelLoader)
    _registered = True
