"""Console output and the one place where errors become exit codes.

Exit codes: 0 success / verified, 1 verification failed or denied,
2 unreadable input or bad usage.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, NoReturn

import typer
from rich.console import Console

from attestation.errors import AttestationError, CollateralError, ParseError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

console = Console()
err_console = Console(stderr=True)


def exit_code_for(exc: BaseException) -> int:
    """Map an error to the CLI's exit code."""
    if isinstance(exc, (ParseError, OSError, ValueError)):
        return EXIT_BAD_INPUT
    if isinstance(exc, (CollateralError, AttestationError)):
        return EXIT_FAILED
    return EXIT_BAD_INPUT


def fail(message: str, *, code: int = EXIT_BAD_INPUT, hint: str = "") -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    if hint:
        err_console.print(f"[dim]hint:[/] {hint}", highlight=False)
    raise typer.Exit(code)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=_default, sort_keys=False) + "\n")
