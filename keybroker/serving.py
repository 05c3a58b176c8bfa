"""`veil broker serve --workers N`: uvicorn worker processes that are handed connections in turn.

In uvicorn's own multi-process mode every worker accepts from one shared
listening socket. Whichever wakes first takes everything queued at that moment,
so keep-alive connections spread unevenly: in a bench run at 64 clients the two
workers held 26 and 38 connections. Both spent the same CPU, so the clients of
the fuller worker waited about 1.5 times as long.

Here the supervisor process accepts every connection and passes it to the next
worker in turn over a Unix socket pair (SCM_RIGHTS), as Node's cluster module
does by default. Each worker serves the connections it is handed with uvicorn's
own HTTP protocol, lifespan and shutdown, exactly as uvicorn would serve the
connections it accepted itself. A worker that dies is replaced, unless it exited
of itself before its application started (it would again: the broker stops, exit
status 3); one killed by a signal is replaced even then, as the signal, not the
application, ended it. A ready worker that stops answering the supervisor's
pings on its channel (its event loop is stuck, or the process is stopped) is
killed after `timeout_s` and so replaced; meanwhile it is handed nothing.
SIGHUP restarts the workers one at a time: a new worker is started, and once
it is ready it takes an old one's place and the old one finishes its open
requests and exits; if a new worker cannot start the application, the restart
stops there and the running workers keep serving. SIGTTIN starts one more
worker and SIGTTOU retires one (never the last), as with gunicorn. SIGINT or
SIGTERM stops accepting, then stops the workers, each finishing its requests
first.

The workers keep their Prometheus metrics in files of a private directory the
supervisor makes and removes (prometheus_client's multiprocess mode), so that
whichever worker answers /metrics reports all of them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import selectors
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess

import uvicorn
from prometheus_client import multiprocess

from .metrics import MULTIPROCESS_ENV

log = logging.getLogger("uvicorn.error")         # configured by uvicorn.Config, as uvicorn logs its own processes
POLL_S = 0.5                   # how long the supervisor waits on its sockets before it looks at its stop flag
STARTUP_FAILURE = 3            # uvicorn's exit status for an application that failed to start
STOP_TIMEOUT_S = 30.0          # how long a stopping worker may take before it is killed
RESTART_START_S = 120.0        # how long a restart's new worker may take to become ready
MAX_FDS = 64                   # connections taken from the channel in one read
READY = b"r"                   # what a worker says on its channel once its application has started
PING, PONG = b"p", b"o"        # the supervisor's health ping on a ready worker's channel, and the answer
DRAIN = b"q"                   # to a replaced worker: everything handed to you came before this; finish, exit
DRAIN_GRACE_S = 1.0            # how long a drained worker reads what it was handed before it shuts down
TIMEOUT_S = 30.0               # how long a ready worker may leave pings unanswered before it is killed


class Server(uvicorn.Server):
    """uvicorn's server, whose objects built at start-up are kept out of the garbage collector's full passes:
    they live as long as the process, and a full pass over them all took about 120 ms, with every request of
    the process waiting (a tail of the bench's latencies)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        gc.collect()
        gc.freeze()


class HandedServer(Server):
    """A server with no listening socket: it serves the connections that arrive on `channel`."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self._channel = channel

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])        # lifespan and server state; no listener of its own
        if self.should_exit:                      # the application did not start: say nothing
            return
        loop = asyncio.get_running_loop()
        self._channel.sendall(READY)
        self._channel.setblocking(False)
        loop.add_reader(self._channel.fileno(), self._receive, loop)

    def _protocol(self) -> asyncio.Protocol:
        return self.config.http_protocol_class(config=self.config, server_state=self.server_state,
                                               app_state=self.lifespan.state)

    def _receive(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self._channel, MAX_FDS, MAX_FDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            if not data and not fds:             # the supervisor is gone: finish what is open, then stop
                loop.remove_reader(self._channel.fileno())
                self.should_exit = True
                return
            if PING in data:
                try:
                    self._channel.send(PONG)
                except OSError:                   # full or closed: the supervisor hears nothing, as if hung
                    pass
            for fd in fds:
                conn = socket.socket(fileno=fd)
                loop.create_task(self._connect(loop, conn))
            if DRAIN in data:
                # Every connection handed to this worker arrived before DRAIN. uvicorn's shutdown closes a
                # connection it has read no request from yet, so give those a moment to send theirs first.
                loop.remove_reader(self._channel.fileno())
                loop.call_later(DRAIN_GRACE_S, setattr, self, "should_exit", True)
                return

    async def _connect(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        try:
            await loop.connect_accepted_socket(self._protocol, conn, ssl=self.config.ssl)
        except (OSError, asyncio.TimeoutError) as exc:        # e.g. a failed TLS handshake: that client's loss
            log.debug("handed connection dropped: %s", exc)
            conn.close()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            asyncio.get_running_loop().remove_reader(self._channel.fileno())
        except (ValueError, OSError):            # already removed, or the channel is closed
            pass
        await super().shutdown(sockets)


def _worker_main(config: uvicorn.Config, channel: socket.socket) -> None:
    config.configure_logging()
    server = HandedServer(config, channel)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


@dataclass
class _Worker:
    process: BaseProcess
    channel: socket.socket                        # the supervisor's end
    ready: bool = False                           # it has said so: its application started
    answered: float = 0.0                         # when it last answered a ping (monotonic), once ready
    killed: bool = False                          # for not answering: its end of file is on its way
    retired_at: float | None = None               # when it was told to finish and exit (a restart replaced it)
    started_at: float = field(default_factory=time.monotonic)


class Supervisor:
    """Accepts on the listening socket and hands each connection to the next worker (ready ones first)."""

    def __init__(self, config: uvicorn.Config, workers: int, timeout_s: float = TIMEOUT_S) -> None:
        if workers < 2:
            raise ValueError("a supervisor is for two or more workers; run uvicorn.Server itself for one")
        if timeout_s <= 0:
            raise ValueError("the worker timeout must be positive")
        self.config = config
        self.count = workers
        self.timeout_s = timeout_s
        self.workers: list[_Worker] = []          # the workers handed connections
        self.status = 0                           # the exit status `run` ends with
        self._next = 0
        self._stopping = False
        self._restart_asked = False
        self._resize_asked = 0                    # SIGTTIN adds one, SIGTTOU takes one away
        self._to_retire: list[_Worker] = []       # a restart's old workers, not yet replaced
        self._incoming: _Worker | None = None     # a restart's new worker, until it is ready
        self._retiring: list[_Worker] = []        # replaced workers finishing their requests
        self._tick = min(POLL_S, timeout_s / 4)   # how often it looks at its flags and pings the workers
        self._context = multiprocessing.get_context("spawn")
        self._selector = selectors.DefaultSelector()

    def run(self) -> None:
        own_metrics = MULTIPROCESS_ENV not in os.environ       # else the operator's directory, left as it is
        if own_metrics:
            os.environ[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="veil-broker-metrics-")   # 0700
        try:
            self._run()
        finally:
            if own_metrics:
                shutil.rmtree(os.environ.pop(MULTIPROCESS_ENV), ignore_errors=True)

    def _run(self) -> None:
        listener = self.config.bind_socket()
        listener.listen(self.config.backlog)
        listener.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ)
        self.workers = [self._spawn() for _ in range(self.count)]
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._ask_restart)
        previous[signal.SIGTTIN] = signal.signal(signal.SIGTTIN, self._ask_resize)
        previous[signal.SIGTTOU] = signal.signal(signal.SIGTTOU, self._ask_resize)
        log.info("supervisor [%d]: %d workers, each handed connections in turn", os.getpid(), self.count)
        pinged = time.monotonic()
        try:
            while not self._stopping:
                for key, _ in self._selector.select(self._tick):
                    if key.data is None:
                        self._accept(listener)
                    else:
                        self._heard(key.data)
                if time.monotonic() - pinged >= self._tick:
                    pinged = time.monotonic()
                    self._check_health(pinged)
                if self._restart_asked:
                    self._restart_asked = False
                    self._begin_restart()
                if self._resize_asked:
                    self._resize()
                self._advance_restart()
        finally:
            self._selector.close()
            listener.close()
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, *_args) -> None:
        self._stopping = True

    def _ask_restart(self, *_args) -> None:
        self._restart_asked = True

    def _ask_resize(self, signum: int, _frame) -> None:
        self._resize_asked += 1 if signum == signal.SIGTTIN else -1

    def _resize(self) -> None:
        """One more worker, or one fewer (the last one handed connections finishes its requests and exits)."""
        if self._to_retire or self._incoming is not None:
            return                                # after the restart under way
        change, self._resize_asked = self._resize_asked, 0
        if not change:
            return
        for _ in range(change):
            self.workers.append(self._spawn())
        for _ in range(-change):
            if len(self.workers) == 1:
                log.warning("SIGTTOU: one worker left; it stays")
                break
            self._retire(self.workers.pop())
        self._next %= len(self.workers)
        log.info("%s: %d workers", "SIGTTIN" if change > 0 else "SIGTTOU", len(self.workers))

    def _begin_restart(self) -> None:
        if self._to_retire or self._incoming is not None:
            log.warning("SIGHUP: a restart is already under way")
            return
        self._to_retire = list(self.workers)
        log.info("SIGHUP: restarting %d workers one at a time", len(self._to_retire))

    def _advance_restart(self) -> None:
        """Start the next new worker; once it is ready, it takes the next old worker's place."""
        if self._incoming is None:
            if self._to_retire:
                self._incoming = self._spawn()   # handed nothing until it takes a place
            return
        if not self._incoming.ready:
            return
        new, self._incoming = self._incoming, None
        if not self._to_retire:                  # the old ones died meanwhile; their replacements started anew
            self._retire(new)
            return
        old = self._to_retire.pop(0)
        self.workers[self.workers.index(old)] = new
        self._retire(old)
        log.info("worker process [%d] took the place of [%d], which finishes its open requests and exits",
                 new.process.pid, old.process.pid)
        if not self._to_retire:
            log.info("restart complete: %d workers", len(self.workers))

    def _retire(self, worker: _Worker) -> None:
        """Tell `worker` (handed nothing any more) to serve what it was handed, finish its open requests and
        exit. On its channel, behind the last connection handed to it; a signal could overtake those."""
        worker.retired_at = time.monotonic()
        self._retiring.append(worker)
        try:
            worker.channel.send(DRAIN)
        except OSError:                                  # its channel is full or gone: it reads nothing anyway
            os.kill(worker.process.pid, signal.SIGTERM)

    def _spawn(self) -> _Worker:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        process = self._context.Process(target=_worker_main, args=(self.config, theirs), name="veil-broker-worker")
        process.start()
        theirs.close()
        mine.setblocking(False)                   # a worker that reads nothing must not stop the supervisor
        worker = _Worker(process, mine)
        self._selector.register(mine, selectors.EVENT_READ, worker)
        log.info("started worker process [%d]", process.pid)
        return worker

    def _heard(self, worker: _Worker) -> None:
        """A worker's channel is readable: it says it is ready, or it has exited (end of file)."""
        try:
            said = worker.channel.recv(64)
        except OSError:
            said = b""
        if said:
            if READY in said and not worker.ready:
                worker.ready = True
                log.info("worker process [%d] is ready", worker.process.pid)
            if READY in said or PONG in said:
                worker.answered = time.monotonic()
            return
        self._selector.unregister(worker.channel)
        worker.channel.close()
        worker.process.join(STOP_TIMEOUT_S)
        exitcode = worker.process.exitcode
        multiprocess.mark_process_dead(worker.process.pid, os.environ[MULTIPROCESS_ENV])   # its live gauges
        if worker in self._retiring:
            self._retiring.remove(worker)
            log.info("worker process [%d] retired (exit status %s)", worker.process.pid, exitcode)
            return
        if self._stopping:
            return
        if worker is self._incoming:             # a restart's new worker died before it was ready
            log.error("worker process [%d] could not start the application (exit status %s); the restart "
                      "stops here and the running workers keep serving", worker.process.pid, exitcode)
            self._incoming, self._to_retire = None, []
            return
        if worker in self._to_retire:            # its replacement below already has the new start-up
            self._to_retire.remove(worker)
        if not worker.ready and exitcode is not None and exitcode >= 0:
            # it ended of itself before its application started: so would the next one
            log.error("worker process [%d] could not start the application (exit status %s); stopping",
                      worker.process.pid, exitcode)
            self.status, self._stopping = STARTUP_FAILURE, True
            return
        log.warning("worker process [%d] exited with %s; starting another", worker.process.pid, exitcode)
        self.workers[self.workers.index(worker)] = self._spawn()

    def _responsive(self, worker: _Worker, now: float) -> bool:
        return not worker.killed and now - worker.answered < self.timeout_s / 2

    def _check_health(self, now: float) -> None:
        """Ping each ready worker; kill one that has answered nothing for `timeout_s` (_heard replaces it), and
        a retired one still finishing its requests after STOP_TIMEOUT_S."""
        new = self._incoming
        if new is not None and not new.ready and not new.killed and now - new.started_at >= RESTART_START_S:
            self._kill(new, "is not ready after %g s", RESTART_START_S)
        for worker in self._retiring:
            if not worker.killed and now - worker.retired_at >= STOP_TIMEOUT_S:
                self._kill(worker, "is still finishing after %g s", STOP_TIMEOUT_S, level=logging.WARNING)
        for worker in self.workers:
            if not worker.ready or worker.killed:
                continue
            if now - worker.answered >= self.timeout_s:
                self._kill(worker, "answered no ping in %g s", self.timeout_s)
                continue
            try:
                worker.channel.send(PING)
            except OSError:                               # its channel is full: it reads nothing
                pass

    @staticmethod
    def _kill(worker: _Worker, why: str, seconds: float, level: int = logging.ERROR) -> None:
        """SIGKILL `worker`; its end of file then reaches _heard, which replaces or forgets it."""
        log.log(level, "worker process [%d] " + why + "; killing it", worker.process.pid, seconds)
        worker.killed = True
        worker.process.kill()

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(MAX_FDS):
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:                       # e.g. EMFILE: wait a little, then try again
                log.warning("accept failed: %s", exc)
                time.sleep(POLL_S / 5)
                return
            with conn:                                   # the worker holds its own descriptor of it
                self._hand(conn)

    def _hand(self, conn: socket.socket) -> None:
        """Pass `conn` to the next ready worker that answers its pings (to the next one at all while none is)."""
        order = [self.workers[(self._next + i) % len(self.workers)] for i in range(len(self.workers))]
        now = time.monotonic()
        for worker in [w for w in order if w.ready and self._responsive(w, now)] or order:
            try:
                socket.send_fds(worker.channel, [b"c"], [conn.fileno()])
            except OSError:                              # it is exiting: _heard replaces it
                continue
            self._next = (self.workers.index(worker) + 1) % len(self.workers)
            return
        log.warning("no worker took a connection; it is closed")

    def _shutdown(self) -> None:
        """Stop the workers: each finishes its open requests (uvicorn's graceful shutdown), then exits."""
        everyone = self.workers + self._retiring + ([self._incoming] if self._incoming else [])
        for worker in everyone:
            if worker.process.is_alive():
                os.kill(worker.process.pid, signal.SIGTERM)
        for worker in everyone:
            worker.process.join(STOP_TIMEOUT_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.channel.close()


def serve(config: uvicorn.Config, workers: int, timeout_s: float = TIMEOUT_S) -> int:
    """Serve `config`'s application until stopped: in this process for one worker, else under a Supervisor
    (which kills and replaces a worker that answers no ping for `timeout_s`). The exit status: 0, or
    STARTUP_FAILURE when the application could not start."""
    if workers <= 1:
        server = Server(config)
        server.run()
        return 0 if server.started else STARTUP_FAILURE
    config.workers = workers
    supervisor = Supervisor(config, workers, timeout_s)
    supervisor.run()
    return supervisor.status
