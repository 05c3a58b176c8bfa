"""Fuzz every target for a set time: one atheris (libFuzzer) process per target.

    python -m fuzz [--seconds N] [TARGET ...]        # make fuzz FUZZ_SECONDS=N

Each target starts from its committed seeds (fuzz/corpus/<target>/) and the
inputs kept as regressions (fuzz/regressions/<target>/); new coverage goes to
a scratch directory. A crashing input (any exception other than the parser's
own error types, a hang over --timeout, or memory over --rss-mb) is saved as
fuzz/regressions/<target>/crash-<sha1> by libFuzzer. Prints a table, then one
JSON line with the figures per target; exits 1 if anything crashed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
REGRESSIONS = ROOT / "regressions"
DICTS = ROOT / "dicts"
# Targets whose inputs are JSON/YAML/text get a dictionary of the format's tokens.
DICT_OF = {"tdx_collateral": "json", "gpu_evidence": "json", "kbs_json": "json", "jwe": "json",
           "audit_entry": "json", "sealed_manifest": "json", "safetensors": "json", "policy_yaml": "yaml",
           "cel": "cel", "rim_xml": "xml", "ear_jwt": "jwt", "audit_note": "note"}

_STATUS = re.compile(r"#(\d+)\s+\w+.*?cov: (\d+) ft: (\d+)")
_STAT = re.compile(r"stat::(\w+):\s*(\d+)")


@dataclass
class Result:
    target: str
    inputs: int = 0
    exec_per_s: int = 0
    coverage: int = 0           # libFuzzer "cov": instrumented edges (Python branches) reached
    features: int = 0           # libFuzzer "ft"
    corpus_added: int = 0
    crashes: int = 0
    seconds: float = 0.0
    exit_code: int = 0
    unreproduced: int = 0       # artifacts that passed when replayed alone (the process died of something else)


def _crash_files(target: str) -> set[str]:
    d = REGRESSIONS / target
    return {p.name for p in d.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-", "leak-"))} \
        if d.is_dir() else set()


def command(target: str, seconds: int, scratch: Path, *, timeout: int, rss_mb: int, seed: int | None = None) -> list[str]:
    (REGRESSIONS / target).mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "fuzz.worker", target, f"-max_total_time={seconds}", f"-timeout={timeout}",
           f"-rss_limit_mb={rss_mb}", f"-artifact_prefix={REGRESSIONS / target}/", "-print_final_stats=1"]
    if seed is not None:
        cmd.append(f"-seed={seed}")
    if target in DICT_OF:
        cmd.append(f"-dict={DICTS / (DICT_OF[target] + '.dict')}")
    cmd.append(str(scratch))
    cmd += [str(d) for d in (CORPUS / target, REGRESSIONS / target) if d.is_dir()]
    return cmd


def run_target(target: str, seconds: int, *, timeout: int = 10, rss_mb: int = 3072,
               seed: int | None = None) -> tuple[Result, str]:
    """Fuzz one target; (figures, libFuzzer's output). `seed` fixes libFuzzer's mutation sequence (CI: the
    same inputs on every run of the same machine kind); None lets libFuzzer pick one (exploration)."""
    before = _crash_files(target)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"veil-fuzz-{target}-") as scratch:
        proc = subprocess.run(command(target, seconds, Path(scratch), timeout=timeout, rss_mb=rss_mb, seed=seed),
                              cwd=ROOT.parent, capture_output=True, text=True, errors="replace",
                              env={**os.environ, "PYTHONHASHSEED": "0"})
        added = sum(1 for _ in Path(scratch).iterdir())
    out = proc.stdout + proc.stderr
    new = sorted(_crash_files(target) - before)
    unreproduced = [name for name in new if not _reproduces(target, REGRESSIONS / target / name)]
    for name in unreproduced:           # a parser bug is deterministic: keep only inputs that fail again
        (REGRESSIONS / target / name).unlink()
    exit_code = 0 if new and len(unreproduced) == len(new) else proc.returncode
    result = Result(target, seconds=round(time.monotonic() - start, 1), exit_code=exit_code,
                    corpus_added=added, crashes=len(new) - len(unreproduced), unreproduced=len(unreproduced))
    for m in _STATUS.finditer(out):
        result.inputs, result.coverage, result.features = int(m[1]), int(m[2]), int(m[3])
    stats = dict(_STAT.findall(out))
    result.inputs = int(stats.get("number_of_executed_units", result.inputs))
    result.exec_per_s = int(stats.get("average_exec_per_sec", 0)) or int(result.inputs / max(result.seconds, 1))
    if exit_code != 0 and result.crashes == 0:
        result.crashes = 1       # died without an artifact (e.g. the target failed to import)
    return result, out


def _reproduces(target: str, artifact: Path) -> bool:
    """Replay one saved input in a fresh worker: does it fail again?"""
    proc = subprocess.run([sys.executable, "-m", "fuzz.worker", target, str(artifact)], cwd=ROOT.parent,
                          capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    return proc.returncode != 0


def _table(results: list[Result], seconds: int):
    from rich.table import Table

    table = Table(title=f"Veil fuzzing, {seconds} s per target (atheris / libFuzzer)")
    for col in ("target", "inputs", "exec/s", "cov (edges)", "features", "new corpus", "crashes"):
        table.add_column(col, justify="left" if col == "target" else "right", no_wrap=True)
    for r in results:
        table.add_row(r.target, f"{r.inputs:,}", f"{r.exec_per_s:,}", str(r.coverage), str(r.features),
                      str(r.corpus_added), f"[red]{r.crashes}[/]" if r.crashes else "0")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"default: all ({', '.join(TARGETS)})")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "60")))
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-mb", type=int, default=3072)
    parser.add_argument("--verbose", action="store_true", help="print libFuzzer's output of crashed targets")
    args = parser.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; expected some of {', '.join(TARGETS)}")
    try:
        import atheris  # noqa: F401
    except ImportError:
        sys.exit("atheris is not installed: pip install -e '.[dev]' (it ships wheels for Linux x86-64)")
    from rich.console import Console

    console = Console(stderr=True)
    results = []
    for target in args.targets or TARGETS:
        with console.status(f"fuzzing {target} for {args.seconds} s"):
            result, out = run_target(target, args.seconds, timeout=args.timeout, rss_mb=args.rss_mb)
        results.append(result)
        if result.crashes:
            tail = out if args.verbose else "\n".join(out.splitlines()[-25:])
            console.print(f"[red]{target}: crashed[/] (input saved under {REGRESSIONS / target})\n{tail}",
                          markup=True, highlight=False)
    Console(width=max(110, Console().width)).print(_table(results, args.seconds))
    print(json.dumps({"seconds_per_target": args.seconds, "targets": {r.target: asdict(r) for r in results}},
                     separators=(",", ":")))
    sys.exit(1 if any(r.crashes for r in results) else 0)
