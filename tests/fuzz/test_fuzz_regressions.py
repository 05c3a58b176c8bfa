"""Every committed seed and regression input goes through its fuzz target, and each target fuzzes briefly.

A target lets only its parser's own error types pass (fuzz/targets/), so a
replayed input that raises anything else here is a parser bug coming back.
The short atheris runs check that each target still starts, finds no crash
from its seeds within a couple of seconds (libFuzzer seed 1, so a run is
repeatable), and executes inputs.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from fuzz.run import CORPUS, REGRESSIONS, run_target
from fuzz.targets import TARGETS, load

SHORT_SECONDS = int(os.environ.get("VEIL_FUZZ_CI_SECONDS", "2"))


def _inputs(target: str) -> list[Path]:
    return sorted(p for d in (CORPUS / target, REGRESSIONS / target) if d.is_dir()
                  for p in d.iterdir() if p.is_file())


def test_every_target_has_seeds_and_the_corpus_stays_small():
    for target in TARGETS:
        assert (CORPUS / target).is_dir() and any((CORPUS / target).iterdir()), f"{target} has no seeds"
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 2_000_000


@pytest.mark.parametrize("target", TARGETS)
def test_replay_seeds_and_regressions(target):
    module = load(target)
    inputs = _inputs(target)
    assert inputs
    for path in inputs:
        module.test_one_input(path.read_bytes())      # raises on a parser bug


def test_found_bugs_stay_fixed():
    """The inputs the fuzzer found (fuzz/regressions/*/crash-*) are kept and replayed above."""
    found = {p.parent.name for p in REGRESSIONS.glob("*/*") if p.name.startswith(("crash-", "timeout-"))}
    assert found >= {"kbs_json", "certificates", "crl", "ear_jwt", "jwe", "safetensors", "snp_verify", "rim_xml",
                     "cel", "policy_yaml", "tdx_collateral"}      # docs/fuzzing.md lists the bugs


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                    reason="atheris is not installed (pip install -e '.[dev]'); coverage-guided runs skipped, "
                           "seed and regression replay still ran")
@pytest.mark.parametrize("target", TARGETS)
def test_short_atheris_run(target):
    # A fixed seed: the test gate replays the same mutation sequence each time (exploration is `make fuzz`'s
    # job, with libFuzzer's own seed); a crash is saved under fuzz/regressions/<target>/.
    result, output = run_target(target, SHORT_SECONDS, seed=1)
    assert result.crashes == 0 and result.exit_code == 0, output[-4000:]
    assert result.inputs > 0
