"""Policy evaluations per second, beside a hand-written Python check of the same conditions.

Run: `.venv/bin/python bench/policy_eval.py [--seconds S]`. Evaluates the shipped
`tdx-production` example (reference values resolved, its CEL condition
compiled once and cached) against the claims of the real dcap-qvl TDX sample,
verified once at 2025-07-01. The baseline is a plain-Python function that
tests the same rules directly; the ratio says what the generality (one
CheckResult per rule, reference-value provenance, CEL) costs. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from policies import evaluate, load_policy  # noqa: E402
from tests.policies.samples import SAMPLES, sample_claims  # noqa: E402

EVIDENCE = Path(os.environ.get("VEIL_CORPUS") or ROOT / "corpus") / "evidence"
EXAMPLES = ROOT / "policies" / "examples"
SAMPLE = "dcapqvl_tdx_quote_v4"


def hand_written(policy, claims, at, resource) -> bool:
    """The tdx-production rules, written out by hand (values taken from the compiled policy)."""
    refs = policy.references
    rule = policy.document.spec.platforms[0].tdx
    t = claims.tdx

    def ok(allow, value):
        return value in allow.values or any(v.value == value and at < v.expires
                                             for r in allow.refs for v in refs[r].values)
    return (resource.startswith("models/") and resource.endswith("/dek") and resource.count("/") == 2
            and claims.tee == "tdx" and claims.anchor.kind == "vendor" and claims.tcb_status.value == "UpToDate"
            and not claims.advisory_ids and not claims.debug and not t.td_attributes.debug
            and all(ok(getattr(rule, f), getattr(t, f)) for f in ("mrtd", "rtmr0", "rtmr1", "rtmr2", "mrseam"))
            and all(getattr(t, f) == "00" * 48 for f in ("mrsignerseam", "mrconfigid", "mrowner", "mrownerconfig"))
            and (t.mrservicetd or "00" * 48) == "00" * 48
            and t.td_attributes.sept_ve_disable and not t.td_attributes.perfmon
            and t.td_attributes.value & 0x7FFFFFFF2FFFFFFE == 0
            and int.from_bytes(bytes.fromhex(t.xfam), "little") & ~0x6DBE7 == 0
            and all(a >= b for a, b in zip(bytes.fromhex(t.tee_tcb_svn), bytes.fromhex(rule.min_tee_tcb_svn)))
            and t.qe_isvsvn >= rule.min_qe_isvsvn and not claims.gpus and len(claims.warnings) == 0)


def rate(call, seconds: float) -> float:
    call()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            call()
        count += 50
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    policy = load_policy(EXAMPLES / "tdx-production.yaml", [EXAMPLES / "reference-values.yaml"])
    claims, at, resource = sample_claims(EVIDENCE, SAMPLE), SAMPLES[SAMPLE].at, "models/llama-8b/dek"
    decision = evaluate(policy, claims, at=at, resource=resource)
    assert decision.allowed and hand_written(policy, claims, at, resource)
    veil = rate(lambda: evaluate(policy, claims, at=at, resource=resource), args.seconds)
    base = rate(lambda: hand_written(policy, claims, at, resource), args.seconds)
    table = Table(title=f"tdx-production on {SAMPLE} ({len(decision.checks)} checks, CEL cached)")
    for column in ("evaluator", "evaluations/s", "µs each"):
        table.add_column(column, justify="right")
    table.add_row("policies.evaluate", f"{veil:,.0f}", f"{1e6 / veil:.1f}")
    table.add_row("hand-written Python", f"{base:,.0f}", f"{1e6 / base:.1f}")
    Console().print(table)
    print(json.dumps({"bench": "policy_eval", "policy": "tdx-production", "checks": len(decision.checks),
                      "evaluate_per_s": round(veil), "hand_written_per_s": round(base),
                      "slowdown_vs_hand_written": round(base / veil, 1)}))


if __name__ == "__main__":
    main()
