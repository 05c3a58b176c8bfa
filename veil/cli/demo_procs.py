"""Processes of `veil demo`: each in its own process group, its output teed to a log file.

A process is stopped with SIGTERM to its whole group and, only if it is still
there after a grace period, SIGKILL; `Proc.stop` says which of the two ended it.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console

# The demo is narration for a person: it wraps at the terminal's width (COLUMNS, 80 when piped),
# unlike the commands that print values, which never cut or wrap them when piped.
console = Console()


class FlowFailed(Exception):
    pass


def examples_dir(stack: ExitStack) -> Path:
    """policies/examples from the installed package (a real path, extracted if needed)."""
    return stack.enter_context(importlib.resources.as_file(importlib.resources.files("policies") / "examples"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def veil_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "veil.cli.main", *args]


class Proc:
    """A subprocess in its own process group, its output teed to a log file and kept for matching."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name, self.log = name, log
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     text=True, bufsize=1, env=env, cwd=cwd, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log, "w") as out:
            for line in self.proc.stdout:
                out.write(line)
                out.flush()
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if m := regex.search(line):
                        return m
                seen = len(self.lines)
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise FlowFailed(f"{self.name} exited ({self.proc.returncode}) before /{pattern}/:\n"
                                     + self.tail())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FlowFailed(f"{self.name} did not print /{pattern}/ within {timeout:.0f}s:\n" + self.tail())
                self._cond.wait(min(left, 0.5))

    def tail(self, n: int = 25) -> str:
        return "\n".join("    | " + line for line in self.lines[-n:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 15.0) -> str:
        """SIGTERM the process group, then SIGKILL whatever is left of it after `grace` seconds.

        Returns how it ended: "exited" (before any signal), "stopped" (on SIGTERM) or "killed"."""
        pgid = self.proc.pid                     # start_new_session: the group id is the child's pid
        ended = "exited" if self.proc.poll() is not None else "stopped"
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                ended = "killed"
                continue
            # the leader is gone; make sure no member of its group outlives it
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        self._reader.join(2)
        return ended
