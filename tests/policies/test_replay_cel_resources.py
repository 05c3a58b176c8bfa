"""Replay records, the CEL sandbox and resource patterns."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from policies import PolicyLoadError, evaluate
from policies.cel import MAX_CHARS, CelCompileError, compile_condition
from policies.replay import AttestationRecord, diff, read_log
from policies.resources import check_pattern, matches
from tests.policies.conftest import AT, example
from tests.policies.mutations import set_path

NOW = datetime(2025, 7, 1, tzinfo=timezone.utc)


def record_line(policy, claims, resource="models/a/dek") -> str:
    decision = evaluate(policy, claims, at=AT, resource=resource)
    record = AttestationRecord.from_decision(decision, claims, time=AT, resource=resource, evidence_sha256="0" * 64)
    return record.model_dump_json()


def test_diff_lists_exactly_the_decisions_that_change(tmp_path, tdx_claims, snp_claims):
    old = example("tdx-production")
    new_path = tmp_path / "new.yaml"
    from tests.policies.conftest import EXAMPLES, REFS
    new_path.write_text((EXAMPLES / "tdx-production.yaml").read_text().replace("perfmon: forbidden", "perfmon: allowed")
                        .replace("min_qe_isvsvn: 6", "min_qe_isvsvn: 7"))
    from policies import load_policy
    new = load_policy(new_path, [REFS])
    perfmon = set_path(tdx_claims, "tdx.td_attributes.value", tdx_claims.tdx.td_attributes.value | 1 << 63)
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join([record_line(old, tdx_claims), record_line(old, snp_claims),
                              record_line(old, set_path(perfmon, "tdx.qe_isvsvn", 7)), ""]) + "\n")
    changes = diff(old, new, read_log(log))
    assert [(c.line, c.summary) for c in changes] == [(1, "allow -> deny"), (3, "deny -> allow")]
    assert changes[0].new.reason.code == "policy.tdx.qe_isvsvn"


def test_a_bad_log_line_is_named(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"version": 1}\n')
    with pytest.raises(PolicyLoadError) as err:
        list(read_log(log))
    assert err.value.problems[0].line == 1 and "not an attestation record" in err.value.problems[0].message


def test_cel_runtime_errors_are_failed_checks_never_exceptions():
    program = compile_condition("claims.tdx.mrtd.startsWith('00') && 1 / claims.zero == 1")
    assert not program.evaluate({"tdx": None}, resource=None, at=NOW).passed
    assert not program.evaluate({"tdx": {"mrtd": "00"}, "zero": 0}, resource=None, at=NOW).passed
    assert "not a boolean" in compile_condition("claims.x").evaluate({"x": 1}, resource=None, at=NOW).message
    assert compile_condition("resource == 'a' && now > timestamp('2025-01-01T00:00:00Z')").evaluate(
        {}, resource="a", at=NOW).passed


@pytest.mark.parametrize("text, fragment", [
    ("1" * (MAX_CHARS + 1), "characters"),
    ("exec('rm')", "unknown function"),
    ("claims.a.map(x, claims.b.map(y, claims.c.map(z, z)))", "comprehensions nest"),
    ("(" * 20 + "1" + ")" * 20, "nests sub-expressions"),
    (" + ".join(["a"] * 300), "too large"),
    ("claims.a ==", "does not parse"),
])
def test_cel_sandbox_limits_are_compile_errors(text, fragment):
    with pytest.raises(CelCompileError) as err:
        compile_condition(text)
    assert fragment in err.value.message


def test_compiled_programs_are_cached_per_text():
    assert compile_condition("true") is compile_condition("true")


def test_u64_claims_reach_cel_as_uint(tdx_claims):
    claims = set_path(tdx_claims, "tdx.td_attributes.value", (1 << 63) | (1 << 28))
    program = compile_condition("claims.tdx.td_attributes.value > 0u")
    assert program.evaluate(claims.model_dump(mode="json"), resource=None, at=NOW).passed


@pytest.mark.parametrize("pattern, resource, expected", [
    ("models/llama-70b/*", "models/llama-70b/dek", True),
    ("models/llama-70b/*", "models/llama-70b/a/dek", False),
    ("models/llama-70b/*", "models/llama-70b", False),
    ("models/**", "models/a/b/c", True),
    ("models/**/dek", "models/dek", True),
    ("models/*-70b/dek", "models/llama-70b/dek", True),
    ("models/*-70b/dek", "models/llama-8b/dek", False),
    ("models/a.b/dek", "models/aXb/dek", False),          # '.' is literal, not a regex wildcard
    ("Models/*", "models/a", False),
])
def test_resource_patterns(pattern, resource, expected):
    assert matches(check_pattern(pattern), resource) is expected


@pytest.mark.parametrize("bad", ["", "models//a", "models/../keys", "models/[ab]", "models/a**", "models/(.*)", "a?"])
def test_bad_patterns_are_rejected(bad):
    with pytest.raises(ValueError):
        check_pattern(bad)


def test_malformed_resource_is_a_failed_check(tdx_claims):
    decision = evaluate(example("tdx-production"), tdx_claims, at=AT, resource="models/../x")
    assert not decision.allowed and decision.reason.code == "policy.resource"


def test_decision_json_round_trip(tdx_claims):
    doc = evaluate(example("tdx-production"), tdx_claims, at=AT, resource="models/a/dek").to_dict()
    assert json.loads(json.dumps(doc))["decision"] == "allow" and doc["reasons"] == []
