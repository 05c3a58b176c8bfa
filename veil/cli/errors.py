"""The one place where errors become an `error: <what> (<why>); <what to do>` line and an exit code.

Exit codes: 0 success / verified, 1 verified or evaluated and the answer is no,
2 anything else that stopped the command (bad input, file, network, TLS, a bug).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import dataclass

from attestation.errors import AttestationError, VerificationError
from enclave.errors import EnclaveError
from keybroker.audit.errors import AuditError, LogTamperedError, ProofError
from keybroker.client import KbsError
from keybroker.errors import BrokerError, BrokerUnreachable
from policies.errors import PolicyError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

BUG_HINT = "this is a bug; please report it (VEIL_DEBUG=1 shows the traceback)"


class CliError(Exception):
    """A failure the CLI reports as one line; `exit_code` 1 only for "verified, and the answer is no"."""

    def __init__(self, what: str, *, why: str = "", hint: str = "", exit_code: int = EXIT_BAD_INPUT,
                 code: str = "cli.error") -> None:
        super().__init__(what)
        self.what, self.why, self.hint = what, why, hint
        self.exit_code, self.code = exit_code, code


@dataclass(frozen=True)
class Mapping:
    kind: type[BaseException]
    exit_code: int
    hint: str


# First match wins: subclasses before their bases.
TABLE: tuple[Mapping, ...] = (
    Mapping(VerificationError, EXIT_FAILED, ""),
    Mapping(ProofError, EXIT_FAILED, ""),
    Mapping(LogTamperedError, EXIT_FAILED, ""),
    Mapping(AttestationError, EXIT_BAD_INPUT, ""),
    Mapping(AuditError, EXIT_BAD_INPUT, ""),
    Mapping(PolicyError, EXIT_BAD_INPUT, "fix the policy document"),
    Mapping(BrokerUnreachable, EXIT_BAD_INPUT, ""),
    Mapping(KbsError, EXIT_BAD_INPUT, ""),
    Mapping(BrokerError, EXIT_BAD_INPUT, ""),
    Mapping(EnclaveError, EXIT_BAD_INPUT, ""),
    Mapping(FileNotFoundError, EXIT_BAD_INPUT, "check the path"),
    Mapping(IsADirectoryError, EXIT_BAD_INPUT, "give a file, not a directory"),
    Mapping(PermissionError, EXIT_BAD_INPUT, "check the file's permissions"),
    Mapping(OSError, EXIT_BAD_INPUT, ""),
    Mapping(UnicodeDecodeError, EXIT_BAD_INPUT, "give a text file in UTF-8"),
    Mapping(ValueError, EXIT_BAD_INPUT, "check the input"),
)


def _code(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    if isinstance(exc, OSError):
        return "io.error"
    return "error." + type(exc).__name__.lower()


def as_cli_error(exc: BaseException) -> CliError:
    """The CliError an exception stands for: its line, exit code and stable code."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, BrokerUnreachable):
        return CliError(exc.what, why=exc.why, hint=exc.hint, code=exc.code)
    if isinstance(exc, KbsError):
        denied = exc.status in (401, 403) and bool(exc.reasons)
        return CliError(f"the broker refused (HTTP {exc.status} {exc.code})", why=exc.detail,
                        hint="" if denied else "check the request, credentials and broker logs",
                        exit_code=EXIT_FAILED if denied else EXIT_BAD_INPUT, code=exc.code or "kbs.error")
    for row in TABLE:
        if isinstance(exc, row.kind):
            hint = "" if getattr(exc, "hint", "") else row.hint   # a CollateralError's hint is in its message
            return CliError(_what(exc), hint=hint, exit_code=row.exit_code, code=_code(exc))
    return CliError(f"unexpected {type(exc).__name__}", why=str(exc) or "no message", hint=BUG_HINT,
                    code="internal." + type(exc).__name__.lower())


def _what(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        name = exc.filename if exc.filename is not None else ""
        return f"{name}: {exc.strerror}" if name else exc.strerror
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


def line(err: CliError) -> str:
    text = f"error: {err.what}"
    if err.why:
        text += f" ({err.why})"
    if err.hint:
        text += f"; {err.hint}"
    return " ".join(text.split())


def report(exc: BaseException, *, json_mode: bool = False, verify_like: bool = False) -> int:
    """Print the error (one line on stderr, and one JSON object on stdout with --json); its exit code."""
    err = as_cli_error(exc)
    if os.environ.get("VEIL_DEBUG") == "1":
        traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(line(err) + "\n")
    if json_mode:
        body: dict = {"error": {"code": err.code, "message": line(err)[len("error: "):]}}
        if verify_like:
            body = {"verified": False} | body
        sys.stdout.write(json.dumps(body) + "\n")
    sys.stderr.flush()
    sys.stdout.flush()
    return err.exit_code
