"""`veil policy …` end to end: exit codes 0 / 1 / 2, located lint output, real evidence."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from policies import evaluate, load_policy
from policies.replay import AttestationRecord
from tests.policies.conftest import AT, EXAMPLES, REFS
from veil.cli.main import app

runner = CliRunner()
TDX = ["--collateral", "tdx/collateral/dcapqvl_2025-06_b0c06f000000.json", "--at", "2025-07-01T00:00:00Z"]


def veil(*args):
    return runner.invoke(app, [str(a) for a in args])


def tdx_args(e):
    return [e / "tdx/quotes/dcapqvl_tdx_quote_v4.dat", "--collateral", e / TDX[1], "--at", TDX[3]]


def test_lint_examples_and_a_bad_file(tmp_path):
    ok = veil("policy", "lint", *sorted(EXAMPLES.glob("*.yaml")))
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "tdx-production.yaml").read_text().replace("perfmon: forbidden", "perfmon: nope"))
    result = veil("policy", "lint", bad, "--refs", REFS)
    assert result.exit_code == 2
    assert f"{bad}:34:11: error: spec.platforms[0].tdx.td_attributes.perfmon:" in result.output


def test_lint_reads_a_reference_file_given_both_as_argument_and_in_refs_once(tmp_path):
    files = sorted(EXAMPLES.glob("*.yaml"))
    result = veil("policy", "lint", *files, "--refs", str(EXAMPLES) + "/")
    assert result.exit_code == 0, result.output
    assert "defined twice" not in result.output and f"{len(files)} file(s): valid" in result.output
    other_spelling = veil("policy", "lint", EXAMPLES / "tdx-production.yaml", REFS, "--refs",
                          EXAMPLES / ".." / "examples" / REFS.name, "--refs", EXAMPLES)
    assert other_spelling.exit_code == 0, other_spelling.output
    twin = tmp_path / "twin.yaml"   # a different file that defines the same sets is still a problem
    twin.write_text(REFS.read_text())
    clash = veil("policy", "lint", EXAMPLES / "tdx-production.yaml", twin, "--refs", REFS)
    assert clash.exit_code == 2 and "defined twice" in clash.output


def test_policy_test_with_real_evidence_allows_and_prints_every_check(evidence_dir):
    result = veil("policy", "test", EXAMPLES / "tdx-production.yaml", "--refs", REFS, "--evidence",
                  *tdx_args(evidence_dir), "--resource", "models/llama-8b/dek", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["decision"] == "allow" and doc["verified"] is True
    assert [c["code"] for c in doc["checks"]][:3] == ["policy.resource", "policy.tee", "policy.anchor"]
    table = veil("policy", "test", EXAMPLES / "tdx-production.yaml", "--refs", REFS, "--evidence",
                 *tdx_args(evidence_dir))
    assert table.exit_code == 0 and "policy.tdx.mrtd" in table.output and "ALLOW" in table.output


def test_policy_test_denies_and_says_when_evidence_did_not_verify(evidence_dir, tmp_path):
    deny = veil("policy", "test", EXAMPLES / "snp-production.yaml", "--refs", REFS, "--evidence",
                *tdx_args(evidence_dir), "--json")
    assert deny.exit_code == 1 and json.loads(deny.stdout)["reasons"] == ["policy.tee"]
    late = [a if a != TDX[3] else "2026-11-23T00:00:00Z" for a in tdx_args(evidence_dir)]
    unverified = veil("policy", "test", EXAMPLES / "tdx-production.yaml", "--refs", REFS, "--evidence", *late)
    assert unverified.exit_code == 1 and "did not verify" in unverified.output


def test_policy_test_with_claims_json_from_attest_verify(evidence_dir, tmp_path):
    doc = veil("attest", "verify", *tdx_args(evidence_dir), "--json")
    whole = tmp_path / "verify.json"
    whole.write_text(doc.stdout)
    only = tmp_path / "claims.json"
    only.write_text(json.dumps(json.loads(doc.stdout)["claims"]))
    for path in (whole, only):
        result = veil("policy", "test", EXAMPLES / "tdx-production.yaml", "--refs", REFS, "--claims", path,
                      "--at", TDX[3], "--resource", "models/a/dek")
        assert result.exit_code == 0, result.output
    assert veil("policy", "test", EXAMPLES / "tdx-production.yaml", "--claims", only).exit_code == 2  # refs missing
    assert veil("policy", "test", EXAMPLES / "tdx-production.yaml", "--refs", REFS).exit_code == 2


def test_from_evidence_writes_a_policy_that_allows_it_and_refuses_to_overwrite(evidence_dir, tmp_path):
    out = tmp_path / "pinned.yaml"
    args = ["policy", "from-evidence", evidence_dir / "snp/virtee_milan_v2/report_milan.hex", "--certs",
            evidence_dir / "snp/virtee_milan_v2/vcek_milan.der", "--no-revocation", "--at", "2026-01-01T00:00:00Z",
            "--out", out, "--name", "milan", "--resource", "models/m/*"]
    assert veil(*args).exit_code == 0
    text = out.read_text()
    assert "report_milan.hex" in text and "amd-ark-milan" in text and "2026-01-01T00:00:00Z" in text
    assert veil("policy", "lint", out).exit_code == 0
    again = veil(*args)
    assert again.exit_code == 2 and "--force" in again.output and out.read_text() == text
    assert veil(*args, "--force").exit_code == 0
    test = veil("policy", "test", out, "--evidence", *args[2:6], "--at", "2026-01-01T00:00:00Z",
                "--resource", "models/m/dek")
    assert test.exit_code == 0, test.output


def test_diff_replays_a_log(tmp_path, tdx_claims):
    old = load_policy(EXAMPLES / "tdx-production.yaml", [REFS])
    new_path = tmp_path / "new.yaml"
    new_path.write_text((EXAMPLES / "tdx-production.yaml").read_text().replace("min_qe_isvsvn: 6", "min_qe_isvsvn: 7"))
    decision = evaluate(old, tdx_claims, at=AT, resource="models/a/dek")
    record = AttestationRecord.from_decision(decision, tdx_claims, time=AT, resource="models/a/dek",
                                             evidence_sha256="ab" * 32)
    log = tmp_path / "log.jsonl"
    log.write_text(record.model_dump_json() + "\n")
    same = veil("policy", "diff", EXAMPLES / "tdx-production.yaml", EXAMPLES / "tdx-production.yaml",
                "--log", log, "--refs", REFS)
    assert same.exit_code == 0
    changed = veil("policy", "diff", EXAMPLES / "tdx-production.yaml", new_path, "--log", log, "--refs", REFS,
                   "--json")
    assert changed.exit_code == 1
    assert json.loads(changed.stdout)["changes"][0]["new_reasons"] == ["policy.tdx.qe_isvsvn"]
    log.write_text("not json\n")
    assert veil("policy", "diff", EXAMPLES / "tdx-production.yaml", new_path, "--log", log, "--refs", REFS
                ).exit_code == 2


def test_diff_takes_the_exports_entries_and_shows_recorded_old_and_new(tmp_path, tdx_claims):
    from keybroker.audit.checkpoint import NoteSigner
    from keybroker.audit.entry import LogEntry
    from keybroker.audit.export import export_log
    from keybroker.audit.log import AuditLog, InMemoryLogStore

    log = AuditLog(InMemoryLogStore(), NoteSigner.generate("veil-diff-test"), "veil.test/audit")
    log.append(LogEntry.record(time=AT, kind="release", tenant="acme", tee="tdx", session_id="s1",
                               claims=tdx_claims.model_dump(mode="json"), decision="allow",
                               resource="models/a/dek", policy_id="tdx-production"))
    export = export_log(log, tmp_path / "export")
    new_path = tmp_path / "new.yaml"
    new_path.write_text((EXAMPLES / "tdx-production.yaml").read_text().replace("min_qe_isvsvn: 6", "min_qe_isvsvn: 7"))
    for given in (export / "entries.jsonl", export):
        changed = runner.invoke(app, ["policy", "diff", str(EXAMPLES / "tdx-production.yaml"), str(new_path),
                                      "--log", str(given), "--refs", str(REFS)], env={"COLUMNS": "200"})
        assert changed.exit_code == 1, changed.output
        row = next(line for line in changed.stdout.splitlines() if "models/a/dek" in line)
        cells = [c.strip() for c in row.split("│") if c.strip()]
        assert cells[0] == "0" and cells[3:] == ["allow", "allow", "deny", "policy.tdx.qe_isvsvn"], cells
    doc = json.loads(veil("policy", "diff", EXAMPLES / "tdx-production.yaml", new_path, "--log",
                          export / "entries.jsonl", "--refs", REFS, "--json").stdout)
    assert doc["changes"][0] | {"time": None} == {
        "seq": 0, "time": None, "resource": "models/a/dek", "recorded": "allow", "old": "allow", "new": "deny",
        "change": "allow -> deny", "old_reasons": [], "new_reasons": ["policy.tdx.qe_isvsvn"]}
    missing = veil("policy", "diff", EXAMPLES / "tdx-production.yaml", new_path, "--log", tmp_path / "nope",
                   "--refs", REFS)
    assert missing.exit_code == 2 and "entries.jsonl" in missing.output and "Traceback" not in missing.output


def test_policy_test_shows_expected_and_actual_when_the_evidence_does_not_verify(evidence_dir):
    result = veil("policy", "test", EXAMPLES / "tdx-production.yaml", "--refs", REFS, "--evidence",
                  evidence_dir / "tdx/quotes/dcapqvl_tdx_quote_v4.dat", "--collateral", evidence_dir / TDX[1],
                  "--at", "2030-07-01T00:00:00Z", "--offline")
    assert result.exit_code == 1, result.output
    flat = " ".join(result.stdout.split())
    assert "✗ tdx.tcb_info_expired:" in flat and "(expected 2025-06-19T10:16:03+00:00 .. " in flat
    assert "actual 2030-07-01T00:00:00+00:00)" in flat

def _from_evidence(evidence_dir, out, *extra):
    return veil("policy", "from-evidence", evidence_dir / "snp/virtee_milan_v2/report_milan.hex", "--certs",
                evidence_dir / "snp/virtee_milan_v2/vcek_milan.der", "--no-revocation",
                "--at", "2026-01-01T00:00:00Z", "--out", out, *extra)


def test_from_evidence_names_the_policy_after_out_unless_name_is_given(evidence_dir, tmp_path):
    derived = tmp_path / "my-policy.yaml"
    assert _from_evidence(evidence_dir, derived).exit_code == 0
    assert load_policy(derived).name == "my-policy"
    named = tmp_path / "other.yaml"
    assert _from_evidence(evidence_dir, named, "--name", "milan-golden").exit_code == 0
    assert load_policy(named).name == "milan-golden"


def test_from_evidence_refuses_a_name_that_is_not_valid_and_writes_nothing(evidence_dir, tmp_path):
    bad_stem = tmp_path / "My Policy.yaml"
    result = _from_evidence(evidence_dir, bad_stem)
    assert result.exit_code == 2 and "--name" in result.output and "Traceback" not in result.output
    assert not bad_stem.exists()
    bad_name = tmp_path / "fine.yaml"
    result = _from_evidence(evidence_dir, bad_name, "--name", "-nope")
    assert result.exit_code == 2 and "'-nope'" in result.output and not bad_name.exists()
