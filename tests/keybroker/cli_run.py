"""Running the `veil` CLI for tests of its admin commands: with stdin not a terminal, or on a pseudo-terminal
that answers a prompt."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENV = os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "200"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`veil ARGS` with stdin at /dev/null (as from a script or CI job)."""
    return subprocess.run([sys.executable, "-m", "veil.cli.main", *args], cwd=cwd, env=ENV, text=True,
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=120)


@dataclass
class TtyResult:
    returncode: int
    output: str                 # what the terminal showed (prompt, answer echo, stdout and stderr)


def run_on_tty(*args: str, answer: str, cwd: Path, timeout: float = 120) -> TtyResult:
    """`veil ARGS` with its stdin, stdout and stderr on a pseudo-terminal; `answer` is typed once it asks."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "veil.cli.main", *args], cwd=cwd, env=ENV,
                            stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True)
    os.close(secondary)
    seen, answered, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:                  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(primary, answer.encode() + b"\n")
                answered = True
            if not ready and proc.poll() is not None:
                break
        returncode = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    return TtyResult(returncode, seen.decode(errors="replace").replace("\r\n", "\n"))
