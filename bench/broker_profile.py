"""The broker's server logic per release, without HTTP: auth, attest and resource called in-process
on one thread (SQLite, emulated TDX, offline bundle), optionally under cProfile.

Run: `.venv/bin/python bench/broker_profile.py [--releases N] [--profile] [--sort cumulative|tottime]`.
Evidence is made and the JWE unwrapped outside the timed part. It reports wall-clock and CPU time (all
threads) per release; the last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(work: Path):
    """A broker state (in this process) with the development policy and one key, set up through the admin API
    as bench/broker.py sets up its broker."""
    from starlette.testclient import TestClient

    from attestation.emulated import EmulatedVendor
    from broker import prepare, provision
    from keybroker.admin.client import AdminClient
    from keybroker.app import create_app
    from keybroker.settings import BrokerSettings, KekSettings

    vendor_dir, anchors, db = prepare(work)
    settings = BrokerSettings(db_url=db, allow_emulated=True, emulated_anchors=anchors, collateral=work / "bundle",
                              kek=KekSettings(file=work / "broker-kek.key"))
    app = create_app(settings)
    provision(AdminClient("http://testserver", work / "admin.key", http=TestClient(app)))
    return app.state.broker, EmulatedVendor.load(vendor_dir)


def main() -> None:
    from attestation.attesters.emulated import EmulatedAttester
    from attestation.binding import report_data
    from keybroker.client import attestation_body, ephemeral_key, request_body, tee_pubkey
    from keybroker.db.engine import utcnow
    from keybroker.db.models import KbsSession
    from keybroker.kbs import jwe
    from keybroker.kbs.attest import attest
    from keybroker.kbs.messages import KbsAttestation, KbsRequest
    from keybroker.kbs.release import Caller, release
    from keybroker.kbs.sessions import new_session

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--releases", type=int, default=300)
    ap.add_argument("--profile", action="store_true", help="run under cProfile and print the top functions")
    ap.add_argument("--sort", default="cumulative")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        state, vendor = build(Path(tmp))
        attester = EmulatedAttester(vendor, "tdx")
        profiler = cProfile.Profile()
        spent = cpu = 0.0

        def timed(fn, *a):
            nonlocal spent, cpu
            start, start_cpu = time.perf_counter(), time.process_time()
            if args.profile:
                profiler.enable()
            try:
                return fn(*a)
            finally:
                if args.profile:
                    profiler.disable()
                spent += time.perf_counter() - start
                cpu += time.process_time() - start_cpu

        def auth():
            row, challenge = new_session(KbsRequest.model_validate(request_body("tdx")), utcnow(),
                                         dt.timedelta(seconds=state.settings.session_ttl_s))
            state.group.run(lambda batch: batch.insert(KbsSession.__table__, **row))
            return row["id"], challenge.nonce

        async def both(sid: str, raw: bytes):
            await attest(state, sid, KbsAttestation.model_validate(json.loads(raw)), raw)
            return await release(state, Caller(sid, None), "dev", "bench", "dek")

        loop = asyncio.new_event_loop()

        def attest_and_release(sid: str, raw: bytes):
            return loop.run_until_complete(both(sid, raw))

        def one():
            sid, nonce = timed(auth)
            key = ephemeral_key()
            evidence = attester.collect(report_data(nonce, tee_pubkey(key)))
            raw = json.dumps(attestation_body(nonce, tee_pubkey(key), evidence)).encode()
            assert len(jwe.unwrap(timed(attest_and_release, sid, raw), key)) == 32

        for _ in range(30):                        # warm caches (compiled policy, statements)
            one()
        spent = cpu = 0.0
        for _ in range(args.releases):
            one()
        state.group.close()
        loop.close()
    per_release_ms = spent / args.releases * 1000
    cpu_ms = cpu / args.releases * 1000
    if args.profile:
        stats = pstats.Stats(profiler)
        stats.sort_stats(args.sort).print_stats(args.top)
        print(f"Python calls per release: {stats.total_calls / args.releases:.0f}")
    print(f"server logic per release: {per_release_ms:.2f} ms, {cpu_ms:.2f} ms of CPU (all threads; a shared VM's "
          f"steal counts in the first, not the second) ({'profiled' if args.profile else 'not profiled'})")
    print(json.dumps({"server_ms_per_release": round(per_release_ms, 3), "server_cpu_ms_per_release": round(cpu_ms, 3),
                      "profiled": args.profile}))


if __name__ == "__main__":
    main()
