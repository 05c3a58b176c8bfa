"""Calls to the broker's admin API from the CLI: one client per command, and its errors as one line each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from .output import EXIT_BAD_INPUT, EXIT_FAILED, fail

Broker = Annotated[str, typer.Option("--broker", help="Broker admin URL.")]
Key = Annotated[Path, typer.Option("--key", help="Your admin private key file.")]
URL, KEY = "http://127.0.0.1:8080", Path("admin.key")
DENIED = (401, 403)            # the broker looked at the caller and said no: exit 1; anything else is exit 2


@contextmanager
def admin_errors(broker: str) -> Iterator[None]:
    """Turn the admin client's failures into `error: …` and the CLI's exit codes."""
    import httpx

    from keybroker.client import KbsError

    try:
        yield
    except KbsError as exc:
        fail(f"{exc.detail} ({exc.code})", code=EXIT_FAILED if exc.status in DENIED else EXIT_BAD_INPUT)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the broker at {broker} ({type(exc).__name__}: {exc})",
             hint="check --broker and that the broker is running")
    except (OSError, ValueError) as exc:
        fail(str(exc), code=EXIT_BAD_INPUT)


def client(broker: str, key: Path):
    """An admin client signing with `key` (call inside `admin_errors`)."""
    from keybroker.admin.client import AdminClient
    return AdminClient(broker, key)
