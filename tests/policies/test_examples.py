"""Every shipped example lints, allows its passing claims, and fails each check exactly when that rule is broken."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from policies import evaluate, lint
from tests.policies.conftest import AT, EXAMPLES, REFS, example
from tests.policies.mutations import MUTATIONS, gpu_count_mutation

NAMES = ["tdx-production", "snp-production", "tdx-8xh100", "snp-h100", "development-emulated"]


def test_every_example_lints_clean():
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert {f.stem for f in files} >= set(NAMES) | {"reference-values"}
    assert lint(files) == []


@pytest.mark.parametrize("name", NAMES)
def test_example_allows_its_passing_claims(name, bases):
    claims, resource, _ = bases[name]
    decision = evaluate(example(name), claims, at=AT, resource=resource)
    assert decision.allowed, [c for c in decision.checks if not c.passed]
    assert decision.platform == decision.closest == 0 and decision.reason is None


def _mutate(code, claims, policy):
    if code == "policy.gpu.count":
        rule = policy.document.spec.platforms[0].gpus
        return gpu_count_mutation(claims, rule and rule.count, rule and rule.min_count)
    return MUTATIONS[code](claims)


@pytest.mark.parametrize("name", NAMES)
def test_each_check_fails_alone_when_its_rule_is_broken(name, bases):
    policy = example(name)
    claims, resource, _ = bases[name]
    base = evaluate(policy, claims, at=AT, resource=resource)
    enforced = [c.code for c in base.checks if not c.waived and c.code not in ("policy.tee", "policy.resource")]
    assert len(enforced) >= 8
    for code in enforced:
        decision = evaluate(policy, _mutate(code, claims, policy), at=AT, resource=resource)
        assert not decision.allowed, code
        assert [c.code for c in decision.failures] == [code], code


@pytest.mark.parametrize("name", NAMES)
def test_other_tee_and_other_resource_fail_on_exactly_that_check(name, bases):
    policy = example(name)
    claims, resource, other_tee = bases[name]
    wrong_tee = evaluate(policy, other_tee, at=AT, resource=resource)
    if {p.tee for p in policy.document.spec.platforms} == {"tdx", "snp"}:
        assert wrong_tee.allowed and wrong_tee.platform == 1      # the development policy has both
    else:
        assert not wrong_tee.allowed and [c.code for c in wrong_tee.failures] == ["policy.tee"]
    wrong_resource = evaluate(policy, claims, at=AT, resource="secrets/db/password")
    assert not wrong_resource.allowed and [c.code for c in wrong_resource.failures] == ["policy.resource"]


def test_expired_reference_value_is_not_accepted_and_named(tdx_claims):
    later = datetime(2027, 7, 1, tzinfo=timezone.utc)
    claims = tdx_claims.model_copy(update={"collateral_window": None})
    decision = evaluate(example("tdx-production"), claims, at=later, resource="models/x/dek")
    codes = [c.code for c in decision.failures]
    assert codes == ["policy.tdx.mrtd", "policy.tdx.rtmr1", "policy.tdx.mrseam"]
    assert "'tdx-firmware'" in decision.failures[0].message and "expired" in decision.failures[0].message


def test_waived_checks_are_visible(tdx_claims):
    decision = evaluate(example("development-emulated"), tdx_claims.model_copy(
        update={"anchor": tdx_claims.anchor.model_copy(update={"kind": "emulated"})}), at=AT, resource="dev/a")
    mrtd = next(c for c in decision.checks if c.code == "policy.tdx.mrtd")
    assert mrtd.passed and mrtd.waived and mrtd.expected == "any" and "waived" in mrtd.message
    fmspc = next(c for c in decision.checks if c.code == "policy.tdx.fmspc")
    assert fmspc.waived and "default" in fmspc.expected


def test_production_policy_refuses_emulated_anchor(tdx_claims):
    from tests.policies.mutations import set_path
    decision = evaluate(example("tdx-production"), set_path(tdx_claims, "anchor.kind", "emulated"), at=AT)
    assert [c.code for c in decision.failures] == ["policy.anchor"]


def test_reference_file_is_named_in_lint_output():
    problems = lint([EXAMPLES / "tdx-production.yaml"])       # refs not given
    assert problems and all("unknown reference set" in p.message for p in problems)
    assert {p.path for p in problems} == {"spec.platforms[0].tdx.mrtd", "spec.platforms[0].tdx.rtmr1",
                                          "spec.platforms[0].tdx.mrseam"}
    assert lint([EXAMPLES / "tdx-production.yaml"], [REFS]) == []
