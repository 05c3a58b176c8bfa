"""Ship the per-call audit to the key broker's log: every interval while serving, once more at shutdown."""

from __future__ import annotations

import asyncio

from .events import Event, Progress, ignore


async def ship_periodically(shipper, interval: float, stop: asyncio.Event, progress: Progress = ignore) -> None:
    """Ship every `interval` seconds until `stop` is set (and once when it is)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
        await ship_once(shipper, progress)


async def ship_once(shipper, progress: Progress = ignore) -> None:
    """One shipment; a broker that refuses or is away is reported and retried next time, never raised."""
    import httpx

    from keybroker.client import KbsError
    from keybroker.errors import BrokerUnreachable

    from ..callship import ShipError

    try:
        done = await asyncio.to_thread(shipper.ship)
    except ShipError as exc:                    # records lost before the broker had them: say so loudly
        progress(Event("audit_lost", f"call audit incomplete: {exc}", level="error"))
        return
    except (KbsError, BrokerUnreachable, httpx.HTTPError, OSError) as exc:   # the broker refused or is away: try again next time
        progress(Event("ship_failed", f"call audit not shipped to the broker: {exc}", level="warning"))
        return
    if done.records:
        progress(Event("shipped", f"call audit: shipped {done.records} record(s) to the broker's log "
                                  f"(next seq {shipper.next_seq})", data={"records": done.records}))
