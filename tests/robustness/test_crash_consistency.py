"""Crash consistency (issue #8 item 3): SIGKILL the broker at a random moment while keys are created and
released under load, restart it, and check that nothing acknowledged was lost and nothing half-written shows.

Each round: creator threads import keys of known value through the admin API and releaser threads run the
whole KBS flow; after a random 0.3–2.5 s the broker process gets SIGKILL. After the restart on the same
database and KEK: every acknowledged key exists and releases its exact value; every key the broker lists
(acknowledged or not) releases a 32-byte value and has a version; every acknowledged release is in the
attestation log; the export of the whole log passes `veil audit verify`. VEIL_CRASH_ROUNDS sets the number of
rounds (default 5); the count survived is printed.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time

import httpx
import pytest

from attestation.attesters.emulated import EmulatedAttester
from keybroker.audit.export import write_broker_export
from keybroker.client import KbsClient, KbsError
from tests.keybroker.conftest import development_emulated, postgres_url, start_broker, veil

ROUNDS = int(os.environ.get("VEIL_CRASH_ROUNDS", "5"))
CREATORS, RELEASERS = 2, 3
BASE = "dev/crash-base/dek"


class Load:
    """Concurrent creates and releases; records only what the broker acknowledged."""

    def __init__(self, broker, vendor, tag: str) -> None:
        self.broker, self.vendor, self.tag = broker, vendor, tag
        self.stop = threading.Event()
        self.created: dict[str, bytes] = {}          # path → value, acknowledged (201)
        self.released: list[tuple[str, str]] = []   # (session id, resource), acknowledged and decrypted
        self.lock = threading.Lock()

    def creator(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            path, value = f"dev/crash-{self.tag}-{n}-{i}/dek", os.urandom(32)
            i += 1
            try:
                self.broker.admin.create_key(path, value=value, policy="development-emulated")
            except (httpx.HTTPError, KbsError):
                return
            with self.lock:
                self.created[path] = value

    def releaser(self) -> None:
        while not self.stop.is_set():
            c = KbsClient(self.broker.url, EmulatedAttester(self.vendor, "tdx"))
            try:
                value = c.get_resource(BASE)
            except (httpx.HTTPError, KbsError):
                return
            assert len(value) == 32
            with self.lock:
                self.released.append((c.http.cookies["kbs-session-id"], BASE))

    def run_until_killed(self, delay: float) -> None:
        threads = [threading.Thread(target=self.creator, args=(n,)) for n in range(CREATORS)]
        threads += [threading.Thread(target=self.releaser) for _ in range(RELEASERS)]
        for t in threads:
            t.start()
        time.sleep(delay)
        self.broker.proc.kill()                     # SIGKILL: no shutdown handlers, no flush
        self.broker.proc.wait(10)
        self.stop.set()
        for t in threads:
            t.join(60)


def write_export(broker, directory) -> None:
    """The admin API's audit export as the directory `veil audit verify` reads (entries are the whole log)."""
    _, full = write_broker_export(broker.admin.export(), directory)
    assert full, "the default tenant sees every entry of this log"


def check_after_restart(broker, vendor, load: Load, where) -> dict:
    reader = KbsClient(broker.url, EmulatedAttester(vendor, "tdx"))
    listed = {k["path"]: k for k in broker.admin.list_keys()}
    for path, value in load.created.items():                  # acknowledged → present, exact value
        assert path in listed, f"acknowledged key {path} lost"
        assert reader.get_resource(path) == value, f"{path} does not release its value"
    for path, info in listed.items():                         # nothing half-written (this round's keys)
        if not path.startswith(f"dev/crash-{load.tag}-"):
            continue
        assert info["versions"], f"{path} is listed without a version"
        assert len(reader.get_resource(path)) == 32, path
    assert broker.sql("SELECT count(*) FROM resources r WHERE NOT EXISTS "
                      "(SELECT 1 FROM resource_versions v WHERE v.resource_id = r.id)")[0][0] == 0
    log = [json.loads(e["entry"]) for e in broker.admin.export()["entries"]]
    logged = {(e["session_id"], e["resource"]) for e in log if e["kind"] == "release"}
    lost = [r for r in load.released if r not in logged]
    assert not lost, f"acknowledged releases missing from the log: {lost}"
    write_export(broker, where)
    verified = veil("audit", "verify", str(where), "--json", cwd=where.parent, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return json.loads(verified.stdout)


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_broker_survives_sigkill_under_load(db, vendor, trust_dirs, tmp_path):
    anchors, bundle = trust_dirs
    db_url = f"sqlite:///{tmp_path / 'broker.db'}" if db == "sqlite" else postgres_url()
    if db_url is None:
        pytest.skip("no PostgreSQL server reachable at 127.0.0.1:5432 (trust auth, database `test`, "
                    "user postgres or root); CI provides one")
    args = ("--allow-emulated", "--emulated-anchors", str(anchors), "--collateral", str(bundle))
    broker = start_broker(tmp_path / "broker", db_url, *args)
    broker.admin.push_policy("development-emulated", development_emulated())
    broker.admin.create_key(BASE, policy="development-emulated")
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    survived, acked = 0, {"creates": 0, "releases": 0}
    try:
        for n in range(ROUNDS):
            load = Load(broker, vendor, f"r{n}")
            load.run_until_killed(rng.uniform(0.3, 2.5))
            broker = start_broker(tmp_path / "broker", db_url, *args, admin=False)
            report = check_after_restart(broker, vendor, load, tmp_path / f"export-{n}")
            survived += 1
            acked["creates"] += len(load.created)
            acked["releases"] += len(load.released)
            print(f"round {n + 1}: killed with {len(load.created)} creates and {len(load.released)} releases "
                  f"acknowledged; log of {report['size']} entries verified")
    finally:
        broker.stop()
    print(f"crash consistency ({db}): {survived} of {ROUNDS} rounds survived; {acked['creates']} acknowledged "
          f"creates and {acked['releases']} acknowledged releases all present")
    assert survived == ROUNDS

