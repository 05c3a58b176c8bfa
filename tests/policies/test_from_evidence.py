"""A policy generated from one real sample allows it, denies every other sample, and each pinned value matters."""

from __future__ import annotations

import pytest

from attestation.claims import Claims
from policies import evaluate, load_policy
from policies.checks.snp import VALUES as SNP_VALUES
from policies.checks.tdx import MEASUREMENTS as TDX_MEASUREMENTS
from policies.generate import policy_from_claims
from tests.policies.mutations import MUTATIONS, tee_of
from tests.policies.samples import SAMPLES, sample_claims

SOURCES = ["dcapqvl_tdx_quote_v4", "virtee_milan_v2", "gotdx_v5_td15", "azure_genoa_v3"]


def generated(tmp_path, evidence_dir, name):
    claims = sample_claims(evidence_dir, name)
    text = policy_from_claims(claims, name=f"from-{name.replace('_', '-')}", resources=["models/*/dek"],
                              evidence=SAMPLES[name].report, at=SAMPLES[name].at)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_policy(path), claims, text


def first_differing_measurement(a: Claims, b: Claims) -> str | None:
    fields = TDX_MEASUREMENTS if a.tee == "tdx" else [v for v in SNP_VALUES if v != "chip_id"]
    for field in fields:
        if getattr(tee_of(a), field) != getattr(tee_of(b), field):
            return f"policy.{a.tee}.{field}"
    return None


@pytest.mark.parametrize("source", SOURCES)
def test_generated_policy_allows_its_sample_and_denies_every_other(source, tmp_path, evidence_dir):
    policy, claims, text = generated(tmp_path, evidence_dir, source)
    assert "# Evidence: " in text and SAMPLES[source].report in text and claims.anchor.name in text
    assert evaluate(policy, claims, at=SAMPLES[source].at, resource="models/m/dek").allowed
    for other in SAMPLES:
        if other == source:
            continue
        other_claims = sample_claims(evidence_dir, other)
        decision = evaluate(policy, other_claims, at=SAMPLES[other].at, resource="models/m/dek")
        assert not decision.allowed, other
        codes = [c.code for c in decision.failures]
        if other_claims.tee != claims.tee:
            assert codes == ["policy.tee"]
            continue
        expected = first_differing_measurement(claims, other_claims)
        assert expected is not None, other
        assert [c for c in codes if c in {f"policy.{claims.tee}.{f}" for f in TDX_MEASUREMENTS + SNP_VALUES}][0] \
            == expected, (other, codes)


@pytest.mark.parametrize("source", SOURCES)
def test_changing_any_pinned_value_denies_with_that_check(source, tmp_path, evidence_dir):
    policy, claims, _ = generated(tmp_path, evidence_dir, source)
    at = SAMPLES[source].at
    base = evaluate(policy, claims, at=at)
    pinned = [c.code for c in base.checks if not c.waived and c.code in MUTATIONS]
    assert len(pinned) >= 15
    for code in pinned:
        decision = evaluate(policy, MUTATIONS[code](claims), at=at)
        assert not decision.allowed and [c.code for c in decision.failures] == [code], code
