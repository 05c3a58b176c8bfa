"""In-memory hand-off of the data key from the enclave process to the vLLM worker that loads weights.

vLLM loads weights in a worker process it spawns (EngineCore, and under it
one worker per tensor/pipeline rank). The data key must reach that worker
without touching disk, the environment, argv or logs (the secret-hygiene invariant),
and vLLM passes nothing but its own picklable config to a worker. So:

- the enclave process runs a KeyAgent: a thread serving a Linux
  abstract-namespace UNIX socket (no file anywhere, gone when closed) under a
  random name;
- the name is not secret: it travels in the loader's config
  (`model_loader_extra_config["key_agent"]`);
- every connection is checked with SO_PEERCRED: the peer must run as our uid
  and be a descendant of this process (the /proc parent chain) — another
  local user, or a process of ours that we did not start, gets nothing;
- the key is served a bounded number of times (one per loading worker), then
  the socket closes and the agent's copy is wiped.

The loader reports back over the same socket whether loading succeeded, so a
failure inside the worker (a tampered chunk) reaches the enclave process as
the loader's UnsealError message — which names a file and chunk, never the key.
"""

from __future__ import annotations

import os
import secrets
import socket
import struct
import threading

from .errors import KeyAgentError
from .secrets import KEY_SIZE, DataKey

REQUEST_KEY = b"VEIL-KEY/1"
REPORT = b"VEIL-RPT/1"
UNSEALED = "unsealed"                 # a loader's report "unsealed <bytes> <seconds>": how much, how fast
_UCRED = struct.Struct("3i")  # pid, uid, gid
_MAX_REPORT = 4096


def parent_pid(pid: int) -> int:
    """The parent of `pid` from /proc/<pid>/stat (the field after the parenthesised command)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def is_descendant(pid: int, ancestor: int) -> bool:
    """True when `ancestor` is on the parent chain of `pid` (and pid != ancestor)."""
    try:
        while pid > 1:
            pid = parent_pid(pid)
            if pid == ancestor:
                return True
    except (OSError, ValueError, IndexError):
        return False
    return False


def _peer(conn: socket.socket) -> tuple[int, int]:
    pid, uid, _gid = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return pid, uid


def _recv_exact(conn: socket.socket, size: int) -> bytearray:
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        n = conn.recv_into(view[got:])
        if n == 0:
            break
        got += n
    del view
    return buf[:got] if got < size else buf


class KeyAgent:
    """Serve `key` to at most `uses` descendant processes of ours, on an abstract UNIX socket."""

    def __init__(self, key: DataKey, *, uses: int = 1) -> None:
        if uses < 1:
            raise ValueError("a key agent serves the key at least once")
        self.name = f"veil-key-{secrets.token_hex(16)}"
        self._key = DataKey(key.bytes())      # our own copy, wiped on close
        self._uses = uses
        self._served = 0
        self.refused: list[tuple[int, int]] = []   # (pid, uid) of peers turned away
        self.reports: list[str] = []               # what loaders said: "ok" or an error message
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind("\0" + self.name)
        self._sock.listen(8)
        self._thread = threading.Thread(target=self._serve, name="veil-key-agent", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"KeyAgent({self.name!r}, served {self._served}/{self._uses})"

    @property
    def served(self) -> int:
        return self._served

    def errors(self) -> list[str]:
        with self._lock:
            return [r for r in self.reports if r != "ok" and not r.startswith(UNSEALED + " ")]

    def unsealed(self) -> list[tuple[int, float]]:
        """(plaintext bytes, seconds) of each worker that decrypted the model, as the loaders reported."""
        with self._lock:
            reports = [r.split() for r in self.reports if r.startswith(UNSEALED + " ")]
        loads = []
        for fields in reports:
            try:
                loads.append((int(fields[1]), float(fields[2])))
            except (IndexError, ValueError):
                continue                      # a malformed report: no figure rather than a wrong one
        return loads

    def _serve(self) -> None:
        me = os.getpid()
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(10)
                try:
                    self._handle(conn, me)
                except OSError:
                    continue

    def _handle(self, conn: socket.socket, me: int) -> None:
        pid, uid = _peer(conn)
        if uid != os.getuid() or not is_descendant(pid, me):
            self.refused.append((pid, uid))
            return
        kind = bytes(_recv_exact(conn, len(REQUEST_KEY)))
        if kind == REPORT:
            text = bytes(_recv_exact(conn, _MAX_REPORT)).rstrip(b"\0").decode("utf-8", "replace")
            with self._lock:
                self.reports.append(text)
            return
        if kind != REQUEST_KEY:
            return
        with self._lock:
            if self._served >= self._uses:
                return
            self._served += 1
            last = self._served >= self._uses
        conn.sendall(self._key.bytes())
        if last:
            self._key.wipe()

    def close(self) -> None:
        """Stop serving and wipe the agent's copy of the key."""
        self._key.wipe()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> KeyAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect(name: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    try:
        sock.connect("\0" + name)
    except OSError as exc:
        sock.close()
        raise KeyAgentError(f"key agent {name} cannot be reached ({exc.strerror or exc}); "
                            "the enclave process serves it only while the model loads") from None
    return sock


def fetch_key(name: str) -> DataKey:
    """Ask the agent `name` for the data key (from a process the agent's process started)."""
    with _connect(name) as sock:
        try:
            sock.sendall(REQUEST_KEY)
            buf = _recv_exact(sock, KEY_SIZE)
        except OSError:                     # the agent hung up on us: refused
            buf = bytearray()
    try:
        if len(buf) != KEY_SIZE:
            raise KeyAgentError(f"key agent {name} refused the key: this process is not a descendant of "
                                "the enclave process, runs as another user, or the key was already served")
        return DataKey(buf)
    finally:
        for i in range(len(buf)):
            buf[i] = 0


def unsealed_report(nbytes: int, seconds: float) -> str:
    return f"{UNSEALED} {nbytes} {seconds:.6f}"


def report(name: str, outcome: str) -> None:
    """Tell the agent how loading went ("ok" or an error message without secrets). Best effort."""
    try:
        with _connect(name) as sock:
            sock.sendall(REPORT + outcome.encode()[:_MAX_REPORT])
    except (KeyAgentError, OSError):
        pass
