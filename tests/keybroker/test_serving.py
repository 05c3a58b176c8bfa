"""`veil broker serve --workers N` (keybroker/serving.py): the supervisor hands connections to its workers in
turn, replaces a worker that dies, stops cleanly, and stops when the application cannot start."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from keybroker.serving import POLL_S

from .conftest import REPO, free_port, start_broker


def _workers(broker) -> list[psutil.Process]:
    return [p for p in psutil.Process(broker.proc.pid).children() if _is_live_worker(p)]


def _is_live_worker(p: psutil.Process) -> bool:
    """A running worker; one that exits while it is looked at (a zombie, or gone) is not one."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(p.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return False


def _ready(out: Path) -> set[int]:
    """The workers the supervisor has logged (in its output `out`) as ready: their application started."""
    return {int(pid) for pid in re.findall(r"worker process \[(\d+)\] is ready", out.read_text())}


def _two_workers(broker, gone: int | None = None) -> list[psutil.Process] | None:
    """Both workers, once there are two, both ready (and neither is the process `gone`)."""
    workers, ready = _workers(broker), _ready(broker.workdir / "broker.out")
    pids = {w.pid for w in workers}
    return workers if len(workers) == 2 and gone not in pids and pids <= ready else None


def _established(worker: psutil.Process, port: int) -> int:
    return sum(1 for c in worker.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED
               and c.laddr.port == port)


def _until(predicate, seconds: float = 120.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not so within {seconds} s")


@pytest.fixture(scope="module")
def supervised(trust_dirs, tmp_path_factory):
    anchors, bundle = trust_dirs
    workdir = tmp_path_factory.mktemp("supervised")
    broker = start_broker(workdir, f"sqlite:///{workdir / 'broker.db'}", "--workers", "2", "--allow-emulated",
                          "--emulated-anchors", str(anchors), "--collateral", str(bundle))
    yield broker
    broker.stop()


def test_keep_alive_connections_are_spread_evenly_over_the_workers(supervised):
    _until(lambda: _two_workers(supervised))
    port = int(supervised.url.rsplit(":", 1)[1])
    clients = [httpx.Client(base_url=supervised.url, timeout=30) for _ in range(8)]
    try:
        for client in clients:                       # each opens one connection and keeps it
            assert client.get("/readyz").status_code == 200
        counts = lambda: sorted(_established(w, port) for w in _workers(supervised))     # noqa: E731
        _until(lambda: sum(counts()) == 8)
        assert counts() == [4, 4]
        assert all(client.get("/healthz").status_code == 200 for client in clients)     # served where handed
    finally:
        for client in clients:
            client.close()


def test_a_worker_that_dies_is_replaced_and_the_broker_keeps_serving(supervised):
    before = _until(lambda: _two_workers(supervised))
    victim = before[0]
    os.kill(victim.pid, signal.SIGKILL)
    after = _until(lambda: _two_workers(supervised, gone=victim.pid))
    assert before[1].pid in {p.pid for p in after}                 # the other worker was left alone
    for _ in range(4):                                              # new connections reach both, answered
        _until(lambda: httpx.get(supervised.url + "/readyz", timeout=30).status_code == 200)
    assert "starting another" in (supervised.workdir / "broker.out").read_text()


def test_sigterm_stops_the_supervisor_and_every_worker(trust_dirs, tmp_path):
    anchors, bundle = trust_dirs
    broker = start_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}", "--workers", "2", "--allow-emulated",
                          "--emulated-anchors", str(anchors), "--collateral", str(bundle))
    workers = _until(lambda: _two_workers(broker))
    broker.proc.send_signal(signal.SIGTERM)
    assert broker.proc.wait(60) == 0
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    out = (tmp_path / "broker.out").read_text()
    assert out.count("Application shutdown complete") == 2         # each worker shut its application down


def test_workers_that_cannot_start_the_application_stop_the_broker(tmp_path):
    """An offline bundle with no manifest (read by the workers only) fails each worker's start-up: the
    supervisor exits with uvicorn's start-up failure status instead of starting workers forever."""
    (tmp_path / "empty-bundle").mkdir()
    env = os.environ | {"PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "veil.cli.main", "broker", "serve", "--db",
                             f"sqlite:///{tmp_path / 'broker.db'}", "--port", str(free_port()), "--workers", "2",
                             "--collateral", str(tmp_path / "empty-bundle")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "could not start the application" in result.stderr
    assert "could not start" in " ".join(result.stderr.split()[-30:])


SUPERVISE_NEVER_READY = """
import sys, uvicorn
from keybroker import serving
from keybroker.logs import log_config
config = uvicorn.Config("never_ready_app:app", factory=True, host="127.0.0.1", port=int(sys.argv[1]),
                        log_config=log_config("text"))
sys.exit(serving.serve(config, 2))
"""


def test_a_worker_killed_before_it_was_ready_is_replaced(tmp_path):
    """A signal, not the application, ended it: the supervisor starts another instead of stopping. The
    application factory never returns, so every worker waits in its start-up and none can become ready."""
    out = tmp_path / "broker.out"
    path = os.pathsep.join([str(REPO), str(Path(__file__).parent)])
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISE_NEVER_READY, str(free_port())], cwd=tmp_path,
                            env=os.environ | {"PYTHONPATH": path}, stdout=open(out, "w"), stderr=subprocess.STDOUT)
    started = lambda: [int(p) for p in re.findall(r"started worker process \[(\d+)\]", out.read_text())]  # noqa: E731
    try:
        first = _until(lambda: started()[:1], seconds=60)[0]
        os.kill(first, signal.SIGKILL)
        _until(lambda: len(started()) == 3)
        time.sleep(POLL_S * 2)
        assert proc.poll() is None, out.read_text()[-3000:]
        assert f"worker process [{first}] exited with -9; starting another" in out.read_text()
        assert not _ready(out)
    finally:
        for child in psutil.Process(proc.pid).children():
            child.kill()
        proc.kill()
        proc.wait(60)


def test_a_worker_that_stops_answering_is_killed_and_replaced(trust_dirs, tmp_path):
    """A stopped worker (SIGSTOP: alive, answering nothing) is handed no new connections once its pings go
    unanswered, then is killed after --worker-timeout and replaced; the broker answers throughout."""
    anchors, bundle = trust_dirs
    broker = start_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}", "--workers", "2", "--worker-timeout",
                          "3", "--allow-emulated", "--emulated-anchors", str(anchors), "--collateral", str(bundle))
    try:
        hung, other = _until(lambda: _two_workers(broker))
        os.kill(hung.pid, signal.SIGSTOP)
        time.sleep(2)                                 # past half the timeout: it is no longer handed anything
        for _ in range(6):                            # new connections, each answered by the other worker
            assert httpx.get(broker.url + "/readyz", timeout=10).status_code == 200
        replaced = _until(lambda: _two_workers(broker, gone=hung.pid), seconds=60)
        assert other.pid in {w.pid for w in replaced}
        out = (tmp_path / "broker.out").read_text()
        assert f"worker process [{hung.pid}] answered no ping in 3 s; killing it" in out
        assert f"worker process [{hung.pid}] exited with -9; starting another" in out
    finally:
        broker.stop()


def test_the_worker_timeout_must_be_at_least_a_second(tmp_path):
    env = os.environ | {"PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "veil.cli.main", "broker", "serve", "--db",
                             f"sqlite:///{tmp_path / 'broker.db'}", "--workers", "2", "--worker-timeout", "0"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--worker-timeout" in result.stderr
    assert not (tmp_path / "broker.db").exists()


def _hammer(url: str, stop: threading.Event, answered: list[int], failures: list[str]) -> None:
    """New connections, one request each, until `stop`: what a restart must not interrupt."""
    while not stop.is_set():
        try:
            status = httpx.get(url + "/readyz", timeout=30).status_code
            (answered if status == 200 else failures).append(status)
        except httpx.HTTPError as exc:
            failures.append(repr(exc))


def test_sighup_restarts_the_workers_one_at_a_time_while_serving(trust_dirs, tmp_path):
    anchors, bundle = trust_dirs
    broker = start_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}", "--workers", "2", "--allow-emulated",
                          "--emulated-anchors", str(anchors), "--collateral", str(bundle))
    stop, answered, failures = threading.Event(), [], []
    client = threading.Thread(target=_hammer, args=(broker.url, stop, answered, failures))
    try:
        old = {w.pid for w in _until(lambda: _two_workers(broker))}
        client.start()
        broker.proc.send_signal(signal.SIGHUP)
        new = _until(lambda: (w := _two_workers(broker)) and not old & {p.pid for p in w} and w)
        out = tmp_path / "broker.out"
        _until(lambda: out.read_text().count("retired (exit status") == 2)
        stop.set()
        client.join(60)
        assert not failures and len(answered) > 20           # every request answered, during and after
        text = out.read_text()
        assert "restart complete: 2 workers" in text
        assert text.count("Application shutdown complete") == 2      # each old worker shut down gracefully
        for worker in new:
            assert f"worker process [{worker.pid}] took the place of" in text
        assert broker.proc.poll() is None
    finally:
        stop.set()
        broker.stop()


def test_a_restart_whose_new_worker_cannot_start_leaves_the_old_workers_serving(trust_dirs, tmp_path):
    anchors, bundle = trust_dirs
    broker = start_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}", "--workers", "2", "--allow-emulated",
                          "--emulated-anchors", str(anchors), "--collateral", str(bundle))
    try:
        old = {w.pid for w in _until(lambda: _two_workers(broker))}
        kek = tmp_path / "broker-kek.key"                   # the default --kek-file, read by each new worker
        kek.rename(tmp_path / "kek.moved")
        kek.mkdir()
        broker.proc.send_signal(signal.SIGHUP)
        out = tmp_path / "broker.out"
        _until(lambda: "the restart stops here and the running workers keep serving" in out.read_text())
        assert {w.pid for w in _workers(broker)} == old
        assert httpx.get(broker.url + "/readyz", timeout=30).status_code == 200
        assert broker.proc.poll() is None
    finally:
        broker.stop()


def _denied_without_session(url: str) -> float:
    """Scrape /metrics on a fresh connection: the count of resource requests denied for want of a session."""
    families = text_string_to_metric_families(httpx.get(url + "/metrics", timeout=30).text)
    return sum(sample.value for family in families if family.name == "veil_broker_denials"
               for sample in family.samples if sample.name == "veil_broker_denials_total"
               and sample.labels == {"stage": "release", "reason": "kbs.no_session"})


def test_metrics_count_every_workers_requests_whichever_worker_answers(trust_dirs, tmp_path):
    """Fresh connections go to the workers in turn; each scrape reports all of them, a killed worker's counts
    included, and the supervisor removes its metrics directory when it stops."""
    anchors, bundle = trust_dirs
    broker = start_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}", "--workers", "2", "--allow-emulated",
                          "--emulated-anchors", str(anchors), "--collateral", str(bundle))
    try:
        workers = _until(lambda: _two_workers(broker))
        directory = Path(workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
        assert directory.is_dir() and directory.stat().st_mode & 0o077 == 0
        for _ in range(6):                                 # each on its own connection: three per worker
            assert httpx.get(broker.url + "/kbs/v0/resource/dev/model/dek", timeout=30).status_code == 401
        assert [_denied_without_session(broker.url) for _ in range(4)] == [6.0] * 4
        os.kill(workers[0].pid, signal.SIGKILL)
        _until(lambda: _two_workers(broker, gone=workers[0].pid))
        assert [_denied_without_session(broker.url) for _ in range(4)] == [6.0] * 4
    finally:
        broker.stop()
    assert not directory.exists()


def test_sigttin_adds_a_worker_and_sigttou_retires_one(trust_dirs, tmp_path):
    anchors, bundle = trust_dirs
    broker = start_broker(tmp_path, f"sqlite:///{tmp_path / 'broker.db'}", "--workers", "2", "--allow-emulated",
                          "--emulated-anchors", str(anchors), "--collateral", str(bundle))
    out = tmp_path / "broker.out"

    def ready_workers(n: int) -> list[psutil.Process] | None:
        workers = _workers(broker)
        return workers if len(workers) == n and {w.pid for w in workers} <= _ready(out) else None
    try:
        first = {w.pid for w in _until(lambda: ready_workers(2))}
        broker.proc.send_signal(signal.SIGTTIN)
        three = {w.pid for w in _until(lambda: ready_workers(3))}
        assert first < three and "SIGTTIN: 3 workers" in out.read_text()
        broker.proc.send_signal(signal.SIGTTOU)
        two = {w.pid for w in _until(lambda: ready_workers(2))}
        assert two < three and "SIGTTOU: 2 workers" in out.read_text()
        retired = (three - two).pop()                  # gone as a process before the supervisor logs it
        _until(lambda: f"worker process [{retired}] retired" in out.read_text())
        assert all(httpx.get(broker.url + "/readyz", timeout=30).status_code == 200 for _ in range(4))
    finally:
        broker.stop()
