"""A REAL broker process (uvicorn subprocess on 127.0.0.1) over SQLite and, when reachable, PostgreSQL,
with emulated TDX evidence: the emulated vendor's exported anchors and an offline collateral bundle."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from attestation.emulated.tdx import DEFAULT_MRSEAM, DEFAULT_MRTD

REPO = Path(__file__).resolve().parents[2]
PG_USERS = ("postgres", "root")

EXAMPLES = REPO / "policies" / "examples"


def development_emulated() -> str:
    return (EXAMPLES / "development-emulated.yaml").read_text()


def pinned(name: str, *, resources: str = "dev/**", anchor: str = "emulated", mrtd: bytes = DEFAULT_MRTD,
           tcb: str = "[UpToDate]") -> str:
    """An emulated-TDX policy pinning MRTD, RTMR0-2 (zero) and MRSEAM to the emulator's defaults."""
    zero = "00" * 48
    return f"""
apiVersion: veil.dev/v1
kind: ReleasePolicy
metadata:
  name: {name}
spec:
  resources: ["{resources}"]
  platforms:
    - tee: tdx
      anchor: {anchor}
      tcb_status: {tcb}
      tdx:
        mrtd: "{mrtd.hex()}"
        rtmr0: "{zero}"
        rtmr1: "{zero}"
        rtmr2: "{zero}"
        mrseam: "{DEFAULT_MRSEAM.hex()}"
"""


@pytest.fixture(scope="session")
def vendor(tmp_path_factory):
    from attestation.emulated import EmulatedVendor
    return EmulatedVendor.create(tmp_path_factory.mktemp("vendor") / "v")


@pytest.fixture(scope="session")
def trust_dirs(vendor, tmp_path_factory):
    """(exported emulated anchors, offline bundle: emulated Intel collateral valid ±15 days, NVIDIA RIMs + OCSP)."""
    from attestation.collateral.bundle import BundleWriter
    base = tmp_path_factory.mktemp("trust")
    anchors = vendor.export_anchors(base / "anchors")
    with BundleWriter(base / "bundle") as writer:
        now = dt.datetime.now(dt.timezone.utc)
        writer.add_tdx(vendor.tdx_collateral(at=now))
        vendor.nvidia.add_collateral(writer, at=now)           # RIMs and OCSP answers for emulated GPUs
    return anchors, base / "bundle"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_url() -> str | None:
    """A fresh database on the local PostgreSQL server, or None when none is reachable."""
    for user in PG_USERS:
        admin = create_engine(f"postgresql+psycopg://{user}@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
        try:
            with admin.connect() as conn:
                name = f"veil_broker_{uuid.uuid4().hex[:12]}"
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            return f"postgresql://{user}@127.0.0.1:5432/{name}"
        except Exception:  # noqa: BLE001 - try the next user, then skip
            continue
        finally:
            admin.dispose()
    return None


def veil(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "veil.cli.main", *args], cwd=cwd, env=env, check=check,
                          capture_output=True, text=True, timeout=120)


class Broker:
    def __init__(self, url: str, db_url: str, workdir: Path, proc: subprocess.Popen, admin_key: Path) -> None:
        self.url, self.db_url, self.workdir, self.proc, self.admin_key = url, db_url, workdir, proc, admin_key
        from keybroker.admin.client import AdminClient
        self.admin = AdminClient(url, admin_key)
        self.http = httpx.Client(base_url=url, timeout=30)
        self._engine = None

    def sql(self, query: str, **params):
        from keybroker.db.engine import make_engine
        if self._engine is None:
            self._engine = make_engine(self.db_url)
        with self._engine.connect() as conn:
            return conn.execute(text(query), params).all()

    def released_count(self) -> int:
        return self.sql("SELECT count(*) FROM releases")[0][0]

    def log(self) -> list[dict]:
        return [json.loads(bytes(row[0])) for row in self.sql("SELECT entry FROM log_entries ORDER BY seq")]

    def last_log(self) -> dict:
        return self.log()[-1]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self._engine is not None:
            self._engine.dispose()


def start_broker(workdir: Path, db_url: str, *extra: str, admin: bool = True) -> Broker:
    workdir.mkdir(parents=True, exist_ok=True)
    key = workdir / "admin.key"
    if admin:
        veil("broker", "init", "--db", db_url, "--key-out", str(key), cwd=workdir)
    port = free_port()
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "veil.cli.main", "broker", "serve", "--db", db_url,
                             "--port", str(port), *extra], cwd=workdir, env=env,
                            stdout=open(workdir / "broker.out", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited: {(workdir / 'broker.out').read_text()[-3000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return Broker(url, db_url, workdir, proc, key)
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"broker did not become ready: {(workdir / 'broker.out').read_text()[-3000:]}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def broker(request, trust_dirs, tmp_path_factory):
    anchors, bundle = trust_dirs
    workdir = tmp_path_factory.mktemp(f"broker-{request.param}")
    if request.param == "sqlite":
        db_url = f"sqlite:///{workdir / 'broker.db'}"
    else:
        db_url = postgres_url()
        if db_url is None:
            pytest.skip("no PostgreSQL server reachable at 127.0.0.1:5432 (trust auth, database `test`, "
                        "user postgres or root); CI provides one")
    b = start_broker(workdir, db_url, "--allow-emulated", "--emulated-anchors", str(anchors),
                     "--collateral", str(bundle))
    yield b
    b.stop()


class Policies:
    development_emulated = staticmethod(development_emulated)
    pinned = staticmethod(pinned)


@pytest.fixture(scope="session")
def policy_docs():
    return Policies


def _sql_exec(self, query: str, **params) -> None:
    from keybroker.db.engine import make_engine
    if self._engine is None:
        self._engine = make_engine(self.db_url)
    with self._engine.begin() as conn:
        conn.execute(text(query), params)


Broker.sql_exec = _sql_exec


@pytest.fixture(scope="session")
def init_tenant():
    """`veil broker init --tenant NAME` against a running broker's database; an AdminClient for it."""
    def make(broker: Broker, tenant: str, where: Path):
        from keybroker.admin.client import AdminClient
        key = where / f"{tenant}.key"
        veil("broker", "init", "--db", broker.db_url, "--key-out", str(key), "--tenant", tenant, cwd=where)
        return AdminClient(broker.url, key)
    return make


@pytest.fixture(scope="session")
def cli():
    return veil


@pytest.fixture(scope="session")
def pg_url():
    return postgres_url
