"""Boot: vLLM's logging level, the data key, the event loop running the serve sequence."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from .config import BootConfig
from .events import Progress, ignore
from .key import data_key
from .serve import serve

LOG_LEVELS = ("debug", "info", "warning", "error")


def boot(config: BootConfig, progress: Progress = ignore) -> None:
    """Fetch the key, serve until a signal, shut down. Raises enclave.errors.EnclaveError subclasses."""
    if config.log_level is not None:
        configure_vllm_logging(config.log_level)
    with data_key(config.key, config.platform.attester, progress) as key:
        run_loop(serve(config, key, progress))


def configure_vllm_logging(level: str) -> None:
    """vLLM's own log level, in this process and the workers it starts (they read the environment)."""
    if level not in LOG_LEVELS:
        raise ValueError(f"log level {level!r}: expected one of {', '.join(LOG_LEVELS)}")
    os.environ["VLLM_LOGGING_LEVEL"] = level.upper()
    if "vllm" in sys.modules:                 # already imported: its logger read the variable before we set it
        logging.getLogger("vllm").setLevel(level.upper())


def run_loop(main) -> None:
    """Run the event loop on uvloop where installed, as vLLM's own gRPC launcher does."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)
