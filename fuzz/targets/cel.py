"""CEL custom conditions of policies: compile (only CelCompileError) and evaluate (never raises)."""

from __future__ import annotations

from datetime import datetime, timezone

from policies.cel import CelCompileError, compile_condition

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
CLAIMS = {"tee": "tdx", "debug": False, "tcb_status": "UpToDate", "advisory_ids": ["INTEL-SA-00837"],
          "tdx": {"mrtd": "00" * 48, "rtmrs": ["11" * 48] * 4, "tee_tcb_svn": "03000500000000000000000000000000",
                  "attributes": 268435456, "xfam": 393447},
          "gpus": [{"arch": "hopper", "cc_mode": "on", "driver_version": "550.90.07"}],
          "report_data": "ab" * 64, "big": 2**64 - 1, "ratio": 0.5}


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        program = compile_condition(text)
    except CelCompileError:
        return
    program.evaluate(CLAIMS, resource="models/llama/dek", at=AT)
