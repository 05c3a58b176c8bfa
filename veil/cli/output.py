"""Console output and the one place where errors become exit codes.

Exit codes: 0 success / verified, 1 verification failed or denied,
2 unreadable input or bad usage.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any, NoReturn

from rich.console import Console

from .errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, CliError, as_cli_error

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "console", "err_console", "exit_code_for", "fail",
           "print_json"]

# Not a terminal: never wrap or cut values (a pipe or file gets them whole).
console = Console(soft_wrap=not sys.stdout.isatty())
err_console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())


def exit_code_for(exc: BaseException) -> int:
    """The CLI's exit code for an error (veil.cli.errors.TABLE decides)."""
    return as_cli_error(exc).exit_code


def fail(message: str, *, code: int = EXIT_BAD_INPUT, hint: str = "", why: str = "",
         error_code: str = "cli.error") -> NoReturn:
    """Stop the command: the handler in veil.cli.main prints the one `error:` line and exits `code`."""
    raise CliError(message, why=why, hint=hint, exit_code=code, code=error_code)


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
