"""The serve sequence: engine up (key wiped), TLS identity, front ends, signals, drain, engine down."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import AsyncIterator

from ..secrets import DataKey
from .config import BootConfig
from .events import Event, Progress, ignore, unsealed
from .frontends import FrontEnd, Serving
from .ship import ship_once, ship_periodically


async def serve(config: BootConfig, key: DataKey, progress: Progress = ignore,
                stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or `stop` is set), then drain and shut everything down."""
    from ..engine import sealed_engine
    from ..server import TlsIdentity

    started = time.monotonic()
    stop = stop or asyncio.Event()
    progress(Event("engine", f"vLLM starting on {config.sealed.name} (dtype {config.settings.dtype}, "
                             f"{config.settings.loading_workers} loading worker(s))"))
    async with sealed_engine(config.sealed, key, config.settings,
                             on_unsealed=lambda n, s: progress(unsealed(n, s))) as engine:
        key.wipe()                                   # the workers have the weights: no copy of the key is left
        identity = TlsIdentity()
        client = _broker_client(config, identity)
        if config.broker_certificate:
            await asyncio.to_thread(_broker_certificate, client, identity, config.broker.resource, progress)
        serving = Serving(engine, identity, config.platform, _call_chain(identity, engine), config.sealed.name)
        async with _shipping(config, serving, client, stop, progress), _front_ends(config, serving, progress):
            seconds = time.monotonic() - started
            progress(Event("ready", f"ready in {seconds:.1f} s: {config.sealed.name} on {len(config.front_ends)} "
                                    "front end(s); SIGTERM or Ctrl-C stops", data={"seconds": seconds}))
            _stop_on_signals(stop)
            try:
                await stop.wait()
            finally:
                progress(Event("stopping", "shutting down: NOT_SERVING, draining, stopping the engine"))
    progress(Event("stopped", "stopped: engine shut down"))


def _broker_client(config: BootConfig, identity):
    """A broker client attesting with the TLS key (for the call audit and the broker certificate), or None."""
    if config.broker is None:
        return None
    from ..callship import for_identity
    return for_identity(config.broker.url, config.platform.attester, identity.jwk())


def _call_chain(identity, engine):
    from ..callaudit import CallAuditChain
    from ..server.app import _model_name
    return CallAuditChain(identity, model=_model_name(engine))


def _broker_certificate(client, identity, resource: str, progress: Progress) -> None:
    from keybroker.client import KbsError

    from ..errors import KeyReleaseError

    try:
        issued = client.request_certificate(resource)
    except KbsError as exc:
        raise KeyReleaseError(f"the key broker refused a certificate for this enclave: {exc}") from None
    identity.use_issued(issued["certificate"])
    progress(Event("certificate", f"TLS certificate issued by the broker's enclave CA for the attested key (until "
                                  f"{issued['not_after']})", data={"not_after": issued["not_after"]}))


@contextlib.asynccontextmanager
async def _front_ends(config: BootConfig, serving: Serving, progress: Progress) -> AsyncIterator[list[FrontEnd]]:
    """Start every front end in turn; stop those started, last first, however the block ends."""
    running: list[FrontEnd] = []
    try:
        for factory in config.front_ends:
            front_end = factory(serving)
            progress(await front_end.start())
            running.append(front_end)
        yield running
    finally:
        for front_end in reversed(running):
            await front_end.stop()


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


@contextlib.asynccontextmanager
async def _shipping(config: BootConfig, serving: Serving, client, stop: asyncio.Event,
                    progress: Progress) -> AsyncIterator[None]:
    """Ship the call audit while the block runs (with a broker); once more after it, for the calls drained."""
    if client is None:
        yield
        return
    from ..callship import CallAuditShipper

    shipper = CallAuditShipper(serving.calls, client)
    task = asyncio.create_task(ship_periodically(shipper, config.audit_interval, stop, progress))
    try:
        yield
    finally:
        stop.set()
        await task
        await ship_once(shipper, progress)
