"""Bad documents: every problem, with file:line:column and the field path; nothing half-loaded."""

from __future__ import annotations

import textwrap

import pytest

from policies import PolicyLoadError, evaluate, lint, load_policy

GOOD = """\
apiVersion: veil.dev/v1
kind: ReleasePolicy
metadata:
  name: p
spec:
  resources: ["models/*"]
  platforms:
    - tee: tdx
      tdx:
        mrtd: any
        rtmr0: any
        rtmr1: any
        rtmr2: any
        mrseam: any
"""


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path, text, refs=()):
    return [(p.line, p.column, p.path, p.message) for p in lint([write(tmp_path, text)], refs)
            if p.severity == "error"]


def test_good_policy_has_no_problems(tmp_path):
    assert problems(tmp_path, GOOD) == []


def test_unknown_field_points_at_its_key(tmp_path):
    found = problems(tmp_path, GOOD.replace("        mrseam: any\n", "        mrseam: any\n        mrsam: any\n"))
    assert found == [(15, 9, "spec.platforms[0].tdx.mrsam", "unknown field (not part of veil.dev/v1)")]


def test_missing_required_measurement_points_at_the_section(tmp_path):
    found = problems(tmp_path, GOOD.replace("        mrtd: any\n", ""))
    assert found == [(9, 7, "spec.platforms[0].tdx.mrtd", "Field required")]


def test_unquoted_hex_read_as_a_number_is_explained(tmp_path):
    found = problems(tmp_path, GOOD.replace("mrtd: any", "mrtd: [1234]"))
    assert found[0][:3] == (10, 9, "spec.platforms[0].tdx.mrtd") and "quote hex values" in found[0][3]


def test_wrong_length_and_every_problem_reported(tmp_path):
    text = GOOD.replace("mrtd: any", 'mrtd: ["abcd"]').replace("tee: tdx", "tee: tdx\n      anchor: hardware")
    found = problems(tmp_path, text)
    assert [f[2] for f in found] == ["spec.platforms[0].anchor", "spec.platforms[0].tdx.mrtd"]
    assert "48 bytes" in found[1][3]


def test_duplicate_key_and_bad_yaml(tmp_path):
    assert problems(tmp_path, GOOD + "spec: {}\n")[0][:2] == (15, 1)
    assert "duplicate key" in problems(tmp_path, GOOD + "spec: {}\n")[0][3]
    assert "not valid YAML" in problems(tmp_path, "a: [1, 2\n")[0][3]


def test_bad_cel_is_a_lint_error_with_position(tmp_path):
    found = problems(tmp_path, GOOD + "      condition: claims.tdx.mrtd ==\n")
    assert found[0][0] == 15 and found[0][2] == "spec.platforms[0].condition" and "parse" in found[0][3]
    found = problems(tmp_path, GOOD + "      condition: |\n        true &&\n          system('ls')\n")
    assert found[0][:2] == (17, 11) and "unknown function 'system'" in found[0][3]


def test_unknown_ref_and_mixed_anchors(tmp_path):
    found = problems(tmp_path, GOOD.replace("mrtd: any", "mrtd: {ref: nope}"))
    assert found == [(10, 9, "spec.platforms[0].tdx.mrtd", "unknown reference set 'nope'")]
    two = GOOD + GOOD.split("platforms:\n")[1].replace("tee: tdx", "tee: tdx\n      anchor: emulated")
    assert "never both" in problems(tmp_path, two)[0][3]


def test_tee_section_must_match(tmp_path):
    found = problems(tmp_path, GOOD.replace("tee: tdx", "tee: snp"))
    assert found[0][2] == "spec.platforms[0]" and "give a `snp` section" in found[0][3]


def test_revoked_cannot_be_allowed_and_debug_is_loud(tmp_path):
    text = GOOD.replace("tee: tdx", "tee: tdx\n      tcb_status: [UpToDate, Revoked]\n      insecure_allow_debug: true")
    found = lint([write(tmp_path, text)])
    assert [(p.severity, p.path) for p in found] == [("error", "spec.platforms[0].tcb_status")]
    found = lint([write(tmp_path, text.replace(", Revoked", ""))])
    assert [(p.severity, p.line) for p in found] == [("warning", 10)]


def test_empty_platforms_denies_everything(tmp_path, tdx_claims):
    path = write(tmp_path, GOOD.split("  platforms:")[0])
    policy = load_policy(path)
    decision = evaluate(policy, tdx_claims, at=tdx_claims.verified_at, resource="models/a")
    assert not decision.allowed and [c.code for c in decision.failures] == ["policy.platforms"]


def test_load_raises_with_every_problem(tmp_path):
    path = write(tmp_path, GOOD.replace("mrtd: any", "mrtd: nope").replace("kind: ReleasePolicy", "kind: Policy"))
    with pytest.raises(PolicyLoadError) as err:
        load_policy(path)
    assert {p.path for p in err.value.problems} == {"kind", "spec.platforms[0].tdx.mrtd"}
    assert str(err.value.problems[0]).startswith(f"{path}:2:1: error: kind:")


def test_json_documents_are_accepted(tmp_path):
    import json
    import yaml
    path = write(tmp_path, json.dumps(yaml.safe_load(GOOD)), "p.json")
    assert load_policy(path).name == "p"


def test_digest_covers_resolved_reference_values(tmp_path):
    from tests.policies.conftest import REFS
    text = GOOD.replace("mrtd: any", "mrtd: {ref: tdx-firmware}")
    first = load_policy(write(tmp_path, text), [REFS]).digest
    changed = tmp_path / "refs.yaml"
    changed.write_text(REFS.read_text().replace("2027-06-30T00:00:00Z", "2027-06-29T00:00:00Z", 1))
    assert load_policy(write(tmp_path, text), [changed]).digest != first
    assert load_policy(write(tmp_path, text), [REFS]).digest == first
