"""Property: the evaluator never allows claims that violate any listed check.

Claims are generated from a passing base (real evidence, pydantic models) by
applying any combination of rule-breaking mutations and random measurement
values; the expected outcome comes from the mutations applied, not from the
evaluator.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import evaluate
from tests.policies.conftest import AT, example
from tests.policies.mutations import MUTATIONS, set_path, tee_of

EXAMPLES = ["tdx-production", "snp-production", "tdx-8xh100", "snp-h100"]
FIELDS = {"tdx": ["mrtd", "rtmr0", "rtmr1", "rtmr2", "mrseam", "mrconfigid"],
          "snp": ["measurement", "host_data", "id_key_digest", "family_id"]}
_policies: dict = {}


def policy(name):
    if name not in _policies:
        _policies[name] = example(name)
    return _policies[name]


@st.composite
def scenario(draw, bases):
    name = draw(st.sampled_from(EXAMPLES))
    claims, resource, _ = bases[name]
    original = tee_of(claims)
    base = evaluate(policy(name), claims, at=AT, resource=resource)
    enforced = sorted(c.code for c in base.checks if not c.waived and c.code in MUTATIONS)
    broken = draw(st.lists(st.sampled_from(enforced), unique=True, max_size=4))
    for code in broken:
        claims = MUTATIONS[code](claims)
    randomized = []
    for field in draw(st.lists(st.sampled_from(FIELDS[claims.tee]), unique=True, max_size=2)):
        size = len(getattr(tee_of(claims), field)) // 2
        value = draw(st.binary(min_size=size, max_size=size)).hex()
        if value not in (getattr(original, field), "00" * size):      # values the policy may accept
            claims = set_path(claims, f"{claims.tee}.{field}", value)
            randomized.append(f"policy.{claims.tee}.{field}")
    return name, claims, resource, set(broken) | set(randomized)


@settings(max_examples=300, deadline=None, print_blob=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_evaluator_never_allows_claims_that_break_a_listed_check(data, bases):
    name, claims, resource, broken = data.draw(scenario(bases))
    decision = evaluate(policy(name), claims, at=AT, resource=resource)
    failed = {c.code for c in decision.failures}
    if decision.allowed:
        assert decision.checks and not failed and not broken
    else:
        assert failed and broken and failed <= broken | {"policy.cel"}
    assert broken <= failed, broken - failed
    assert decision.allowed == (not broken)
