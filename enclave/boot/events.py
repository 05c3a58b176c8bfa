"""Progress of the boot sequence, as events for a caller to show (the CLI prints them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

Level = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Event:
    """One step of the boot sequence: `kind` for programs, `message` for people (never a secret)."""

    kind: str            # attested, key, engine, unsealed, certificate, serving, ready, stopping, stopped,
    message: str         # shipped, ship_failed, audit_lost
    level: Level = "info"
    data: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The progress callback that shows nothing."""


def unsealed(nbytes: int, seconds: float) -> Event:
    gb = nbytes / 1e9
    rate = gb / seconds if seconds > 0 else float("inf")
    return Event("unsealed", f"unsealed {gb:.3g} GB in {seconds:.2f} s at {rate:.3g} GB/s (decrypted in memory)",
                 data={"bytes": nbytes, "seconds": seconds})
