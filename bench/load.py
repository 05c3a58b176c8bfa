"""Hold N concurrent clients doing complete key releases against (a) one broker on SQLite and (b) two
broker replicas sharing one PostgreSQL database; report errors, p50/p99, releases/s and broker RSS.

Run: `.venv/bin/python bench/load.py [--seconds 60] [--clients 64] [--configs sqlite,postgresql]`.
Each release is auth → attest (emulated TDX evidence signed per release, client side) → resource →
JWE unwrapped and compared with the key's value: anything else is an error. Clients are asyncio tasks
with their own cookie jar, spread over `--procs` load-generator processes; in (b) half of them talk to
each replica. Broker RSS (each `veil broker serve` process and its children, from /proc) is sampled
every second. PostgreSQL: `--pg` (a server URL with an existing database to connect to, default the
local test server); configuration (b) is skipped with a message where none is reachable. The last line
is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESOURCE = "dev/load/dek"
VALUE = bytes(range(32))
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test,postgresql://root@127.0.0.1:5432/test"


# ----------------------------------------------------------------------------- brokers

def _port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_pg_database(servers: str) -> str | None:
    """A new empty database on the first reachable server of a comma-separated list, or None."""
    from sqlalchemy import create_engine, text
    for server in servers.split(","):
        engine = create_engine(server.replace("postgresql://", "postgresql+psycopg://", 1),
                               isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                name = f"veil_load_{uuid.uuid4().hex[:12]}"
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            return server.rsplit("/", 1)[0] + "/" + name
        except Exception:  # noqa: BLE001 - try the next server
            continue
        finally:
            engine.dispose()
    return None


def trust(work: Path) -> tuple[Path, Path, Path]:
    """(vendor dir, exported anchors, offline bundle) for emulated TDX."""
    from attestation.collateral.bundle import BundleWriter
    from attestation.emulated import EmulatedVendor
    vendor = EmulatedVendor.create(work / "vendor")
    anchors = vendor.export_anchors(work / "anchors")
    with BundleWriter(work / "bundle") as writer:
        writer.add_tdx(vendor.tdx_collateral(at=dt.datetime.now(dt.timezone.utc)))
    return work / "vendor", anchors, work / "bundle"


class Replica:
    """One `veil broker serve` process on loopback."""

    def __init__(self, work: Path, db: str, anchors: Path, bundle: Path, workers: int, name: str) -> None:
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        self.log = work / f"{name}.out"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "veil.cli.main", "broker", "serve", "--db", db, "--port", str(self.port),
             "--workers", str(workers), "--allow-emulated", "--emulated-anchors", str(anchors),
             "--collateral", str(bundle)], cwd=work, env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        import httpx
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"broker exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"broker never became ready: {self.log.read_text()[-2000:]}")

    def rss(self) -> int:
        """Resident bytes of the serve process and all its descendants."""
        return sum(_rss(pid) for pid in _tree(self.proc.pid))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return out


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def start(work: Path, db: str, replicas: int, workers: int, anchors: Path, bundle: Path) -> list[Replica]:
    from keybroker.admin.client import AdminClient
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "veil.cli.main", "broker", "init", "--db", db, "--key-out",
                    str(work / "admin.key")], cwd=work, env=env, check=True, capture_output=True)
    first = Replica(work, db, anchors, bundle, workers, "replica-0")   # creates the KEK and signing keys
    first.wait_ready()
    rest = [Replica(work, db, anchors, bundle, workers, f"replica-{i}") for i in range(1, replicas)]
    for r in rest:
        r.wait_ready()
    admin = AdminClient(first.url, work / "admin.key")
    admin.push_policy("development-emulated", (ROOT / "policies/examples/development-emulated.yaml").read_text())
    admin.create_key(RESOURCE, value=VALUE, policy="development-emulated")
    return [first, *rest]


# ----------------------------------------------------------------------------- load

async def release(http, attester) -> None:
    from attestation.binding import report_data
    from keybroker.client import attestation_body, ephemeral_key, request_body, tee_pubkey
    from keybroker.kbs import jwe

    resp = await http.post("/kbs/v0/auth", json=request_body("tdx"))
    resp.raise_for_status()
    nonce = resp.json()["nonce"]
    key = ephemeral_key()
    pub = tee_pubkey(key)
    resp = await http.post("/kbs/v0/attest", json=attestation_body(nonce, pub, attester.collect(report_data(nonce, pub))))
    resp.raise_for_status()
    resp = await http.get(f"/kbs/v0/resource/{RESOURCE}")
    resp.raise_for_status()
    if jwe.unwrap(resp.json(), key) != VALUE:
        raise ValueError("released value differs")


async def drive(urls: list[str], vendor_dir: str, clients: int, seconds: float) -> dict:
    import httpx

    from attestation.attesters.emulated import EmulatedAttester
    from attestation.emulated import EmulatedVendor

    attester = EmulatedAttester(EmulatedVendor.load(vendor_dir), "tdx")
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds

    async def client(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:        # its own cookie jar
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    await release(http, attester)
                    latencies.append(time.perf_counter() - began)
                except Exception as exc:  # noqa: BLE001 - every failure is counted, by kind
                    what = f"{type(exc).__name__}: {str(exc)[:120]}"
                    errors[what] = errors.get(what, 0) + 1

    await asyncio.gather(*(client(urls[i % len(urls)]) for i in range(clients)))
    return {"latencies": latencies, "errors": errors}


def _proc_main(args) -> dict:
    return asyncio.run(drive(*args))


def measure(replicas: list[Replica], vendor_dir: Path, clients: int, seconds: float, procs: int) -> dict:
    procs = max(1, min(procs, clients))
    urls = [r.url for r in replicas]
    # client i of the whole run talks to replica i % len: give each process a contiguous, balanced slice
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    jobs, offset = [], 0
    for n in shares:
        jobs.append(([urls[(offset + k) % len(urls)] for k in range(len(urls))], str(vendor_dir), n, seconds))
        offset += n
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append(sum(r.rss() for r in replicas))

    rss_start = sum(r.rss() for r in replicas)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with mp.get_context("spawn").Pool(procs) as pool:
        began = time.perf_counter()
        results = pool.map(_proc_main, jobs)
        elapsed = time.perf_counter() - began
    stop.set()
    sampler.join()
    rss_end = sum(r.rss() for r in replicas)
    lat = sorted(x for r in results for x in r["latencies"])
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None  # noqa: E731
    return {"clients": clients, "seconds": seconds, "replicas": len(replicas), "releases": len(lat),
            "errors": sum(errors.values()), "error_kinds": errors,
            "releases_per_s": round(len(lat) / max(elapsed, 1e-9), 1), "p50_ms": pick(0.50), "p99_ms": pick(0.99),
            "rss_start_mb": round(rss_start / 2**20, 1), "rss_end_mb": round(rss_end / 2**20, 1),
            "rss_max_mb": round(max(samples + [rss_end]) / 2**20, 1)}


def run_config(name: str, args, work: Path, vendor_dir: Path, anchors: Path, bundle: Path) -> dict:
    if name == "sqlite":
        db, replicas = f"sqlite:///{work / 'sqlite' / 'broker.db'}", 1
    else:
        db, replicas = fresh_pg_database(args.pg), 2
        if db is None:
            print(f"postgresql: skipped, no server reachable at {args.pg}", file=sys.stderr)
            return {"config": name, "skipped": "no PostgreSQL server reachable"}
    where = work / name
    where.mkdir()
    brokers = start(where, db, replicas, args.workers, anchors, bundle)
    try:
        if args.warmup > 0:
            measure(brokers, vendor_dir, min(args.clients, 8), args.warmup, 1)
        result = measure(brokers, vendor_dir, args.clients, args.seconds, args.procs)
    finally:
        for b in brokers:
            b.stop()
    return {"config": name, "db": "sqlite" if name == "sqlite" else "postgresql", **result}


def main(argv: list[str] | None = None) -> list[dict]:
    from rich.console import Console
    from rich.table import Table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--configs", default="sqlite,postgresql")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers per replica")
    ap.add_argument("--procs", type=int, default=2, help="load-generator processes")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of light load before measuring")
    ap.add_argument("--pg", default=PG_DEFAULT, help="PostgreSQL server URL(s), comma-separated")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        vendor_dir, anchors, bundle = trust(work)
        for name in args.configs.split(","):
            rows.append(run_config(name.strip(), args, work, vendor_dir, anchors, bundle))
    table = Table(title=f"{args.clients} clients doing complete key releases for {args.seconds:g} s (loopback)")
    for col in ("configuration", "releases", "errors", "releases/s", "p50 ms", "p99 ms", "RSS start→end (max) MB"):
        table.add_column(col, justify="right")
    for r in rows:
        if "skipped" in r:
            table.add_row(r["config"], "skipped: " + r["skipped"], "", "", "", "", "")
            continue
        label = "1 broker, SQLite" if r["config"] == "sqlite" else f"{r['replicas']} replicas, PostgreSQL"
        table.add_row(label, str(r["releases"]), str(r["errors"]), f"{r['releases_per_s']:.1f}", str(r["p50_ms"]),
                      str(r["p99_ms"]), f"{r['rss_start_mb']}→{r['rss_end_mb']} ({r['rss_max_mb']})")
    Console(stderr=True).print(table)
    for r in rows:
        for kind, n in r.get("error_kinds", {}).items():
            print(f"  {r['config']}: {n} × {kind}", file=sys.stderr)
    print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
