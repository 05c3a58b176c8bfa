"""`veil audit …` end to end: exit codes 0 / 1 / 2, proofs, views, re-verification of real evidence."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attestation.anchors import vendor_anchors
from attestation.collateral import StaticCollateral
from attestation.collateral.intel import load_intel_collateral_json
from attestation.evidence import Evidence
from attestation.options import VerifyOptions
from attestation.verify import verify
from keybroker.audit.checkpoint import NoteSigner
from keybroker.audit.entry import LogEntry, Reason
from keybroker.audit.export import export_log, read_lines
from keybroker.audit.log import AuditLog, InMemoryLogStore
from veil.cli.main import app

runner = CliRunner()
AT = datetime(2025, 7, 1, tzinfo=timezone.utc)
QUOTE = "tdx/quotes/dcapqvl_tdx_quote_v4.dat"
COLLATERAL = "tdx/collateral/dcapqvl_2025-06_b0c06f000000.json"


def veil(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def real(evidence_dir: Path) -> tuple[bytes, dict]:
    quote = (evidence_dir / QUOTE).read_bytes()
    tdx = load_intel_collateral_json((evidence_dir / COLLATERAL).read_bytes())
    result = verify(Evidence("tdx", quote), VerifyOptions(anchors=vendor_anchors(),
                                                          collateral=StaticCollateral(tdx_sets=(tdx,)), at=AT))
    return quote, result.claims.model_dump(mode="json")


def build_log(real, *, honest: bool = True) -> AuditLog:
    quote, claims = real
    log = AuditLog(InMemoryLogStore(), NoteSigner.generate("veil-cli-test"), "veil.test/audit")
    common = dict(tenant="acme", tee="tdx", evidence=quote, verification_time=AT, policy_id="tdx-production")
    log.append(LogEntry.record(time=AT, kind="attestation", session_id="s1", claims=claims, decision="allow",
                               **common))
    log.append(LogEntry.record(time=AT, kind="release", session_id="s1", decision="allow",
                               resource="models/llama/dek"))
    log.append(LogEntry.record(time=AT, kind="denial", session_id="s2", decision="deny", resource="models/x/dek",
                               reasons=(Reason(code="kbs.nonce_consumed", message="replay"),), **common))
    log.append(LogEntry(time=AT, kind="admin", actor="alice", action="policy.push", resource="tdx-production"))
    if not honest:   # recorded as allowed a year after the collateral expired
        late = datetime(2026, 11, 23, tzinfo=timezone.utc)
        log.append(LogEntry.record(time=late, kind="attestation", session_id="s3", decision="allow",
                                   **{**common, "verification_time": late}))
    return log


@pytest.fixture
def export(real, tmp_path) -> tuple[Path, str]:
    log = build_log(real)
    return export_log(log, tmp_path / "export"), log.verifier.key_string()


def test_verify_an_untouched_export(export, tmp_path):
    directory, key = export
    key_file = tmp_path / "log.pub"
    key_file.write_text(key + "\n")
    for given in (key, key_file):
        result = veil("audit", "verify", directory, "--key", given)
        assert result.exit_code == 0, result.output
        assert "verified" in result.stdout and "4 entries" in result.stdout
    doc = json.loads(veil("audit", "verify", directory, "--key", key, "--json").stdout)
    assert doc["verified"] is True and doc["size"] == 4 and doc["problems"] == [] and doc["warnings"] == []


def test_verify_without_a_key_warns(export):
    result = veil("audit", "verify", export[0])
    assert result.exit_code == 0 and "pin the log's key" in result.stdout


def test_an_edited_entry_fails_verification_naming_it(export):
    directory, key = export
    lines = read_lines(directory / "entries.jsonl")
    doc = json.loads(lines[1])
    doc["resource"] = "models/other/dek"
    lines[1] = LogEntry.model_validate(doc).canonical_bytes()
    (directory / "entries.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    result = veil("audit", "verify", directory, "--key", key)
    assert result.exit_code == 1 and "edited at seq 1" in result.stdout
    doc = json.loads(veil("audit", "verify", directory, "--key", key, "--json").stdout)
    assert doc["first_bad_seq"] == 1 and doc["problems"][0]["what"] == "edited"


def test_a_deleted_entry_fails_verification(export):
    directory, key = export
    lines = read_lines(directory / "entries.jsonl")
    (directory / "entries.jsonl").write_bytes(b"\n".join(lines[:2] + lines[3:]) + b"\n")
    result = veil("audit", "verify", directory, "--key", key)
    assert result.exit_code == 1 and "deleted at seq 2" in result.stdout


@pytest.mark.parametrize("args, needle", [
    (["--key", "not-a-key"], "--key"),
    (["--previous", "/nonexistent/checkpoint"], "cannot read"),
])
def test_bad_options_exit_2(export, args, needle):
    result = veil("audit", "verify", export[0], *args)
    assert result.exit_code == 2 and needle in result.output


def test_not_an_export_exits_2(tmp_path):
    result = veil("audit", "verify", tmp_path)
    assert result.exit_code == 2 and "not an audit export" in result.output


def test_a_wrong_key_fails_with_1(export):
    other = NoteSigner.generate("veil-cli-test").verifier.key_string()
    result = veil("audit", "verify", export[0], "--key", other)
    assert result.exit_code == 1 and "checkpoint" in result.stdout


def test_prove_inclusion_and_consistency(export):
    directory, key = export
    result = veil("audit", "prove", directory, "--key", key, "--seq", "2", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["type"] == "inclusion" and doc["tree_size"] == 4 and len(doc["proof"]) == 2
    result = veil("audit", "prove", directory, "--key", key, "--consistency", "3")
    assert result.exit_code == 0 and "proof verified" in result.stdout


@pytest.mark.parametrize("args, needle", [
    ([], "exactly one"), (["--seq", "1", "--consistency", "2"], "exactly one"),
    (["--seq", "4"], "outside"), (["--consistency", "5"], "do not grow")])
def test_prove_bad_usage_exits_2(export, args, needle):
    result = veil("audit", "prove", export[0], "--key", export[1], *args)
    assert result.exit_code == 2 and needle in result.output


def test_show_filters_and_prints(export):
    directory, _ = export
    table = runner.invoke(app, ["audit", "show", str(directory)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "models/llama/dek" in table.stdout and "policy.push" in table.stdout
    doc = json.loads(veil("audit", "show", directory, "--decision", "deny", "--json").stdout)
    assert [e["seq"] for e in doc["entries"]] == [2]
    doc = json.loads(veil("audit", "show", directory, "--resource", "models/*", "--kind", "release", "--json").stdout)
    assert [e["seq"] for e in doc["entries"]] == [1]
    assert json.loads(veil("audit", "show", directory, "--since", "2025-08-01", "--json").stdout)["entries"] == []
    assert veil("audit", "show", directory, "--since", "yesterday").exit_code == 2


def test_a_filtered_view_verifies_entry_by_entry(export, tmp_path):
    directory, key = export
    view = tmp_path / "view"
    assert veil("audit", "export", directory, "--out", view, "--decision", "allow").exit_code == 0
    assert len(read_lines(view / "entries.jsonl")) == 2
    assert veil("audit", "verify", view, "--key", key).exit_code == 0
    assert veil("audit", "export", directory, "--out", view).exit_code == 2     # not empty


def test_verify_with_a_previous_checkpoint(real, tmp_path):
    log = build_log(real)
    previous = tmp_path / "previous"
    previous.write_text(log.checkpoint())
    log.append(LogEntry(time=AT, kind="admin", actor="bob", action="key.rotate"))
    directory = export_log(log, tmp_path / "x")
    result = veil("audit", "verify", directory, "--key", log.verifier.key_string(), "--previous", previous)
    assert result.exit_code == 0, result.output
    assert "extends the previous checkpoint (size 4 → 5)" in result.stdout
    doc = json.loads(veil("audit", "verify", directory, "--key", log.verifier.key_string(), "--previous",
                          previous, "--json").stdout)
    assert doc["extends_previous"] == {"previous_size": 4, "size": 5}
    plain = veil("audit", "verify", directory, "--key", log.verifier.key_string())
    assert plain.exit_code == 0 and "extends" not in plain.stdout


def test_show_says_how_many_entries_a_filter_matched(export):
    directory, _ = export
    empty = veil("audit", "show", directory, "--since", "2025-08-01")
    assert empty.exit_code == 0 and empty.stdout.strip() == "0 entries match the filter (of 4 in the export)"
    denials = veil("audit", "show", directory, "--decision", "deny")
    assert denials.exit_code == 0 and "1 entry match the filter (of 4 in the export)" in denials.stdout
    assert "4 entries" in veil("audit", "show", directory).stdout


def test_reverify_reproduces_an_honest_log(export, evidence_dir):
    directory, key = export
    result = veil("audit", "reverify", directory, "--key", key, "--collateral", evidence_dir / COLLATERAL,
                  "--offline")
    assert result.exit_code == 0, result.output
    assert "3 of 3" in result.stdout          # the release is replayed through its session's attestation


def test_reverify_reports_a_decision_the_evidence_does_not_support(real, evidence_dir, tmp_path):
    log = build_log(real, honest=False)
    directory = export_log(log, tmp_path / "x")
    result = veil("audit", "reverify", directory, "--key", log.verifier.key_string(),
                  "--collateral", evidence_dir / COLLATERAL, "--offline", "--json")
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["log_verified"] is True and doc["mismatched"] == 1
    bad = [e for e in doc["entries"] if e["mismatches"]]
    assert bad[0]["seq"] == 4
    assert bad[0]["mismatches"][0] | {"detail": None} == {"what": "decision", "recorded": "allow",
                                                        "recomputed": "deny", "detail": None}


def test_reverify_replays_policies_from_a_directory(export, evidence_dir, tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    repo = Path(__file__).resolve().parents[3] / "policies/examples"
    for name in ("tdx-production.yaml", "reference-values.yaml"):
        (policies / name).write_bytes((repo / name).read_bytes())
    directory, key = export
    result = veil("audit", "reverify", directory, "--key", key, "--collateral", evidence_dir / COLLATERAL,
                  "--offline", "--policies", policies, "--json")
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)["entries"]
    assert entries[0]["checked"] == ["evidence", "claims", "policy", "decision"]
    assert entries[2]["checked"] == ["evidence", "policy", "decision"] and "not replayable" in entries[2]["notes"][0]


def test_reverify_takes_one_policy_file(export, evidence_dir, tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    repo = Path(__file__).resolve().parents[3] / "policies/examples"
    for name in ("tdx-production.yaml", "reference-values.yaml"):
        (policies / name).write_bytes((repo / name).read_bytes())
    directory, key = export
    result = veil("audit", "reverify", directory, "--key", key, "--collateral", evidence_dir / COLLATERAL,
                  "--offline", "--policies", policies / "tdx-production.yaml", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["entries"][0]["checked"] == ["evidence", "claims", "policy", "decision"]


@pytest.mark.parametrize("where", ["missing", "empty-dir", "refs-only"])
def test_reverify_policies_bad_path_exits_2(export, evidence_dir, tmp_path, where):
    target = tmp_path / where
    if where != "missing":
        target.mkdir()
    if where == "refs-only":
        repo = Path(__file__).resolve().parents[3] / "policies/examples"
        (target / "reference-values.yaml").write_bytes((repo / "reference-values.yaml").read_bytes())
    directory, key = export
    result = veil("audit", "reverify", directory, "--key", key, "--collateral", evidence_dir / COLLATERAL,
                  "--offline", "--policies", target)
    assert result.exit_code == 2 and "--policies" in result.output and "Traceback" not in result.output


def test_keygen_prints_only_the_verifier_key(tmp_path):
    out = tmp_path / "log.key"
    result = veil("audit", "keygen", "--name", "veil-log", "--out", out)
    assert result.exit_code == 0
    private = out.read_text().strip()
    assert private.startswith("PRIVATE+KEY+veil-log+") and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert result.stdout.strip() == NoteSigner.from_key_string(private).verifier.key_string()
    assert private.split("+", 4)[4] not in result.output
    assert veil("audit", "keygen", "--name", "veil-log", "--out", out).exit_code == 2
