"""Complete key releases per second (auth → attest → resource) against a real broker, beside the
pure-HTTP floor of a trivial FastAPI endpoint under the same server (keybroker.serving: the supervisor
hands each connection to the next worker) and uvicorn settings.

Run: `.venv/bin/python bench/broker.py [--seconds S] [--workers N] [--clients 1,16,64] [--db URL]`.
The broker runs as `veil broker serve --workers N` on loopback with SQLite (or the empty
database `--db` names, e.g. PostgreSQL), emulated TDX
anchors and an offline bundle; load comes from `--procs` generator processes, each
client an aiohttp session on one keep-alive connection (evidence is signed by the emulated vendor per release,
client side). The floor's requests/s ÷ 3 is the release floor (a release is three
requests). Beside the wall-clock figures it reports CPU milliseconds per release of the
broker (all its processes) and of the load generator: on a small shared machine those
move much less than releases/s. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def floor_app():
    """The pure-HTTP floor: one trivial JSON endpoint."""
    from fastapi import FastAPI
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict:
        return {"ok": True}
    return app


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen) -> None:
    import httpx
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def prepare(work: Path, db: str | None = None) -> tuple[Path, Path, str]:
    """An emulated vendor, its exported anchors, an offline TDX bundle (`work/bundle`) and an initialised
    database with an admin key (`work/admin.key`): (vendor dir, anchors dir, database URL)."""
    from attestation.collateral.bundle import BundleWriter
    from attestation.emulated import EmulatedVendor

    vendor = EmulatedVendor.create(work / "vendor")
    anchors = vendor.export_anchors(work / "anchors")
    with BundleWriter(work / "bundle") as writer:
        writer.add_tdx(vendor.tdx_collateral(at=dt.datetime.now(dt.timezone.utc)))
    db = db or f"sqlite:///{work / 'broker.db'}"
    subprocess.run([sys.executable, "-m", "veil.cli.main", "broker", "init", "--db", db, "--key-out",
                    str(work / "admin.key")], cwd=work, env=os.environ | {"PYTHONPATH": str(ROOT)}, check=True,
                   capture_output=True)
    return work / "vendor", anchors, db


def provision(admin) -> None:
    """The development policy and the key every release asks for (`dev/bench/dek`)."""
    admin.push_policy("development-emulated", (ROOT / "policies/examples/development-emulated.yaml").read_text())
    admin.create_key("dev/bench/dek", policy="development-emulated")


def start_broker(work: Path, workers: int, threads: int = 4, db: str | None = None):
    from keybroker.admin.client import AdminClient

    vendor_dir, anchors, db = prepare(work, db)
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "veil.cli.main", "broker", "serve", "--db", db, "--port",
                             str(port), "--workers", str(workers), "--threads", str(threads),
                             "--allow-emulated", "--emulated-anchors", str(anchors), "--collateral",
                             str(work / "bundle")], cwd=work, env=os.environ | {"PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    _wait(url + "/healthz", proc)
    provision(AdminClient(url, work / "admin.key"))
    return proc, url, str(vendor_dir)


def start_floor(workers: int):
    """The floor under the broker's own server (`keybroker.serving`: the supervisor hands connections to the
    workers in turn) with the broker's uvicorn settings."""
    port = _port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-floor", str(port),
                             "--workers", str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)])})
    url = f"http://127.0.0.1:{port}"
    _wait(url + "/ping", proc)
    return proc, url


def serve_floor(port: int, workers: int) -> None:
    import uvicorn

    from keybroker import serving
    config = uvicorn.Config("broker:floor_app", factory=True, port=port, access_log=False, log_level="warning",
                            proxy_headers=True)        # the workers import `broker` from PYTHONPATH (start_floor)
    raise SystemExit(serving.serve(config, workers))


JSON = {"Content-Type": "application/json"}


def _session_cookie(set_cookies) -> str:
    """`kbs-session-id=…` from the Set-Cookie headers: all a guest sends back. (aiohttp's `resp.cookies` parses
    every attribute of every cookie, some 6 % of the generator's time in aiohttp per release.)"""
    for header in set_cookies:
        pair = header.split(";", 1)[0].strip()
        if pair.startswith("kbs-session-id="):
            return pair
    raise AssertionError("the broker set no kbs-session-id cookie")


async def _release(http, url: str, attester) -> None:
    """One release as a guest does it (keybroker.client's bodies), JSON by orjson on both ways."""
    from attestation.binding import report_data
    from keybroker.client import attestation_body, ephemeral_key, request_body, tee_pubkey
    from keybroker.kbs import jwe

    async with http.post(url + "/kbs/v0/auth", data=orjson.dumps(request_body("tdx")), headers=JSON) as resp:
        resp.raise_for_status()
        challenge = orjson.loads(await resp.read())
        cookie = {"Cookie": _session_cookie(resp.headers.getall("Set-Cookie", ()))}
    key = ephemeral_key()
    pub = tee_pubkey(key)
    evidence = attester.collect(report_data(challenge["nonce"], pub))
    async with http.post(url + "/kbs/v0/attest", data=orjson.dumps(attestation_body(challenge["nonce"], pub, evidence)),
                         headers=JSON | cookie) as resp:
        resp.raise_for_status()
        await resp.read()
    async with http.get(url + "/kbs/v0/resource/dev/bench/dek", headers=cookie) as resp:
        resp.raise_for_status()
        assert len(jwe.unwrap(orjson.loads(await resp.read()), key)) == 32


async def _ping(http, url: str, _attester) -> None:
    async with http.get(url + "/ping") as resp:
        resp.raise_for_status()
        await resp.read()


async def _drive(kind: str, url: str, vendor_dir: str, clients: int, seconds: float) -> tuple[list[float], float]:
    """Latencies of the operations this process completed, and the CPU seconds it spent on them."""
    import aiohttp

    from attestation.attesters.emulated import EmulatedAttester
    from attestation.emulated import EmulatedVendor

    attester = EmulatedAttester(EmulatedVendor.load(vendor_dir), "tdx") if kind == "release" else None
    op = _release if kind == "release" else _ping
    import attestation.binding, keybroker.client, keybroker.kbs.jwe  # noqa: E401, F401 - _release's, not timed
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        # one keep-alive connection per client; the session cookie is carried by hand (no cookie jar)
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                         timeout=aiohttp.ClientTimeout(total=30)) as http:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                await op(http, url, attester)
                latencies.append(time.perf_counter() - start)

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, time.process_time() - cpu


def _proc_main(args) -> tuple[list[float], float]:
    return asyncio.run(_drive(*args))


def _usage(server) -> tuple[float, int]:
    """User + system CPU seconds, and bytes handed to write(2), of a server process and all its children (the
    workers): SQLite's WAL and checkpoint writes are most of the latter."""
    import psutil

    cpu, written = 0.0, 0
    for proc in (server, *server.children(recursive=True)):
        try:
            times, io = proc.cpu_times(), proc.io_counters()
        except psutil.NoSuchProcess:
            continue
        cpu += times.user + times.system
        written += io.write_chars
    return cpu, written


def measure(kind: str, url: str, vendor_dir: str, clients: int, seconds: float, procs: int, server) -> dict:
    """Operations/s, latency percentiles, and CPU per operation of the server and of the load generator:
    wall-clock figures move with whatever else the machine runs, CPU per operation much less."""
    procs = max(1, min(procs, clients))
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    with mp.get_context("spawn").Pool(procs) as pool:
        cpu_before, written_before = _usage(server)
        start = time.perf_counter()
        results = pool.map(_proc_main, [(kind, url, vendor_dir, n, seconds) for n in shares])
        elapsed = time.perf_counter() - start
        cpu_after, written_after = _usage(server)
    lat = sorted(x for r, _ in results for x in r)
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")  # noqa: E731
    per_op = lambda total, unit=1000: total / len(lat) * unit if lat else float("nan")  # noqa: E731
    return {"rate": len(lat) / min(elapsed, seconds + 1e-9) if lat else 0.0, "p50_ms": pick(0.50),
            "p99_ms": pick(0.99), "n": len(lat), "server_cpu_ms": per_op(cpu_after - cpu_before),
            "server_kib": per_op(written_after - written_before, 1 / 1024),
            "client_cpu_ms": per_op(sum(cpu for _, cpu in results))}


def main() -> None:
    import psutil
    from rich.console import Console
    from rich.table import Table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4, help="broker threads per worker")
    ap.add_argument("--procs", type=int, default=1, help="load-generator processes (1: see docs/broker.md)")
    ap.add_argument("--db", help="an empty database for the broker (default: a fresh SQLite file), e.g. "
                                 "postgresql://postgres@127.0.0.1:5432/veil_bench")
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)   # start_floor's server
    args = ap.parse_args()
    if args.serve_floor:
        return serve_floor(args.serve_floor, args.workers)
    levels = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        broker, url, vendor_dir = start_broker(Path(tmp), args.workers, args.threads, args.db)
        floor, floor_url = start_floor(args.workers)
        try:
            server, floor_server = psutil.Process(broker.pid), psutil.Process(floor.pid)
            rows = {c: (measure("release", url, vendor_dir, c, args.seconds, args.procs, server),
                        measure("ping", floor_url, vendor_dir, c, args.seconds, args.procs, floor_server))
                    for c in levels}
        finally:
            for p in (broker, floor):
                p.terminate()
                p.wait(10)
    backend = "PostgreSQL" if args.db and args.db.startswith("postgres") else "SQLite"
    table = Table(title=f"Key releases (auth→attest→resource), veil broker serve --workers {args.workers}, {backend}, "
                        "loopback")
    for col in ("clients", "releases/s", "p50 ms", "p99 ms", "HTTP floor req/s", "floor ÷ 3", "fraction",
                "floor p50 / p99 ms", "broker CPU ms/release", "load CPU ms/release", "broker KiB written/release"):
        table.add_column(col, justify="right")
    for c, (rel, flo) in rows.items():
        table.add_row(str(c), f"{rel['rate']:.0f}", f"{rel['p50_ms']:.1f}", f"{rel['p99_ms']:.1f}",
                      f"{flo['rate']:.0f}", f"{flo['rate'] / 3:.0f}", f"{rel['rate'] / (flo['rate'] / 3):.2f}",
                      f"{flo['p50_ms']:.1f} / {flo['p99_ms']:.1f}", f"{rel['server_cpu_ms']:.2f}", f"{rel['client_cpu_ms']:.2f}",
                      f"{rel['server_kib']:.1f}")
    Console(width=160).print(table)
    top = max(levels)
    rel, flo = rows[top]
    print(json.dumps({"releases_per_s_64": round(rel["rate"], 1), "p99_ms_64": round(rel["p99_ms"], 1),
                      "fraction_of_http_floor": round(rel["rate"] / (flo["rate"] / 3), 3),
                      "broker_cpu_ms_per_release": round(rel["server_cpu_ms"], 3),
                      "load_cpu_ms_per_release": round(rel["client_cpu_ms"], 3),
                      "broker_kib_written_per_release": round(rel["server_kib"], 1),
                      "floor_server_cpu_ms_per_request": round(flo["server_cpu_ms"], 3),
                      "floor_load_cpu_ms_per_request": round(flo["client_cpu_ms"], 3),
                      "floor_p50_ms_64": round(flo["p50_ms"], 2), "floor_p99_ms_64": round(flo["p99_ms"], 2)}))


if __name__ == "__main__":
    main()
