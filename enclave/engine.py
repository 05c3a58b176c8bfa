"""Start vLLM's AsyncLLM on a sealed model: key agent, tmpfs config, the `veil-sealed` load format.

    async with sealed_engine(sealed_dir, key, EngineSettings(dtype="float32")) as engine:
        ...   # an AsyncLLM; the key is wiped once the weights are loaded

A wrong key fails here, before any engine starts (the manifest does not
authenticate). A tampered chunk fails in the worker; its UnsealError comes
back through the key agent and is raised here as LoadError with the same
file-and-chunk message.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from .errors import LoadError
from .keyagent import KeyAgent
from .secrets import DataKey
from .sealing import open_sealed
from .staging import staged_config


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    """The vLLM engine arguments Veil sets; `extra` passes any other AsyncEngineArgs field."""

    dtype: str = "auto"
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    enforce_eager: bool = False
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def small_cpu(cls) -> EngineSettings:
        """Settings for a tiny model on a small CPU machine (tests, the demo)."""
        return cls(dtype="float32", max_model_len=256, gpu_memory_utilization=0.1, enforce_eager=True)

    @property
    def loading_workers(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


def engine_args(config_dir: str, sealed_dir: str, agent_name: str, model_name: str, settings: EngineSettings):
    from vllm.engine.arg_utils import AsyncEngineArgs

    from .loader import LOAD_FORMAT
    from .plugin import register

    register()  # the entry point does this in workers; here it also works without an installed entry point
    return AsyncEngineArgs(
        model=config_dir, served_model_name=[model_name], load_format=LOAD_FORMAT,
        model_loader_extra_config={"sealed_dir": os.fspath(sealed_dir), "key_agent": agent_name},
        dtype=settings.dtype, max_model_len=settings.max_model_len,
        gpu_memory_utilization=settings.gpu_memory_utilization, enforce_eager=settings.enforce_eager,
        tensor_parallel_size=settings.tensor_parallel_size,
        pipeline_parallel_size=settings.pipeline_parallel_size, seed=settings.seed, **settings.extra)


@contextlib.asynccontextmanager
async def sealed_engine(sealed_dir: str | os.PathLike[str], key: DataKey,
                        settings: EngineSettings = EngineSettings(), *,
                        on_unsealed: Callable[[int, float], None] | None = None) -> AsyncIterator[Any]:
    """An AsyncLLM serving the sealed model; shut down (and the tmpfs config removed) on exit.

    `on_unsealed(plaintext bytes, seconds)`: called once the workers have decrypted the weights (the
    slowest worker's time)."""
    from vllm.usage.usage_lib import UsageContext
    from vllm.v1.engine.async_llm import AsyncLLM

    model = open_sealed(sealed_dir, key)          # wrong key → UnsealError("manifest.veil", …) here
    with staged_config(model) as config_dir:
        agent = KeyAgent(key, uses=settings.loading_workers)
        try:
            args = engine_args(str(config_dir), os.fspath(sealed_dir), agent.name, model.manifest.model_name,
                               settings)
            vllm_config = args.create_engine_config(usage_context=UsageContext.OPENAI_API_SERVER)
            engine = AsyncLLM.from_vllm_config(vllm_config=vllm_config,
                                               usage_context=UsageContext.OPENAI_API_SERVER,
                                               disable_log_stats=True)
        except Exception as exc:
            reasons = agent.errors()
            if reasons:
                raise LoadError(f"the sealed model failed to load in the vLLM worker: {reasons[0]}") from None
            raise LoadError(f"vLLM could not start on the sealed model: {type(exc).__name__}: {exc}") from exc
        finally:
            agent.close()                             # key served (or not needed any more): wiped
        loads = agent.unsealed()
        if on_unsealed is not None and loads:
            on_unsealed(loads[0][0], max(seconds for _, seconds in loads))
        try:
            yield engine
        finally:
            shut_down(engine)


def shut_down(engine: Any) -> None:
    """Shut the engine down now, and only now.

    vLLM's AsyncLLM.__del__ calls shutdown() once more whenever the object goes; if that is at
    interpreter exit, the module globals it calls are already None and Python prints an
    "Exception ignored in: AsyncLLM.__del__" traceback. So once shut down, the instance's class
    becomes a subclass whose __del__ does nothing."""
    engine.shutdown()
    engine.__class__ = _already_shut_down(type(engine))


@functools.cache
def _already_shut_down(cls: type) -> type:
    return type(f"{cls.__name__}ShutDown", (cls,), {"__del__": lambda self: None,
                                                      "__module__": __name__})
