"""`veil measure`: values printed and written as ReferenceValues that policies load, pin and enforce."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from attestation.measure import SnpLaunch, snp_measurement, tdx_measurements
from policies import evaluate, load_policy
from policies.loader import load_references
from tests.measure.images import Section, pe_image, sev_ovmf_image, tdvf_image
from tests.policies.mutations import set_path
from tests.policies.samples import sample_claims
from veil.cli.main import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
AT = datetime(2025, 7, 1, tzinfo=timezone.utc)


@pytest.fixture
def build(tmp_path: Path) -> dict[str, Path]:
    paths = {"tdvf": tmp_path / "OVMF.tdx.fd", "ovmf": tmp_path / "OVMF.fd", "kernel": tmp_path / "vmlinuz",
             "initrd": tmp_path / "initrd.img", "elf": tmp_path / "vmlinux"}
    paths["tdvf"].write_bytes(tdvf_image([Section(b"\x90" * 0x2000, 0xFFFFE000, 0x2000, 0, 1),
                                          Section(b"", 0x809000, 0x1000, 2, 0)]))
    paths["ovmf"].write_bytes(sev_ovmf_image())
    paths["kernel"].write_bytes(pe_image([b"\xcc" * 0x400, b"\x00" * 0x200]))
    paths["initrd"].write_bytes(b"070701" * 100)
    paths["elf"].write_bytes(b"\x7fELF" + bytes(4092))
    paths["tdvf4k"] = tmp_path / "padded.fd"          # a TDVF padded to whole pages: no SEV metadata
    paths["tdvf4k"].write_bytes(tdvf_image([Section(b"\x90" * 0x1000, 0xFFFFF000, 0x1000, 0, 1)], pad_to=0x1000))
    return paths


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def tdx_cli(build, out: Path, *extra: str):
    return invoke("measure", "tdx", "--firmware", str(build["tdvf"]), "--kernel", str(build["kernel"]),
                  "--initrd", str(build["initrd"]), "--cmdline", "console=hvc0 quiet", "--name", "img",
                  "--build-id", "img-2026.11.1", "--out", str(out), *extra)


def test_tdx_writes_reference_values_that_policies_load(build, tmp_path):
    out = tmp_path / "refs" / "img.yaml"
    result = tdx_cli(build, out)
    assert result.exit_code == 0, result.output
    expected = tdx_measurements(build["tdvf"].read_bytes(), kernel=build["kernel"].read_bytes(),
                                initrd=build["initrd"].read_bytes(), cmdline="console=hvc0 quiet")
    sets, problems = load_references([out])
    assert problems == []
    assert {name: s.values[0].value for name, s in sets.items()} == {
        "img-mrtd": expected.mrtd.hex(), "img-rtmr1": expected.rtmr1.hex(), "img-rtmr2": expected.rtmr2.hex()}
    value = sets["img-mrtd"].values[0]
    assert value.build_id == "img-2026.11.1"
    for name in ("OVMF.tdx.fd", "vmlinuz", "initrd.img"):
        assert name in value.source
    assert __import__("hashlib").sha256(build["tdvf"].read_bytes()).hexdigest() in value.source
    assert "page_add_order=single-pass" in value.note
    assert "# Provenance" in out.read_text() and "console=hvc0 quiet" not in value.source
    assert invoke("policy", "lint", str(out)).exit_code == 0


def test_policy_pinning_measured_tdx_values_allows_them_and_denies_others(build, tmp_path, evidence_dir):
    refs = tmp_path / "img.yaml"
    assert tdx_cli(build, refs).exit_code == 0
    document = yaml.safe_load((EXAMPLES / "tdx-production.yaml").read_text())
    rule = document["spec"]["platforms"][0]["tdx"]
    rule |= {"mrtd": {"ref": "img-mrtd"}, "rtmr1": {"ref": "img-rtmr1"}, "rtmr2": {"ref": "img-rtmr2"}}
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(document))
    policy = load_policy(policy_file, references=[refs, EXAMPLES / "reference-values.yaml"])
    sets, _ = load_references([refs])
    claims = sample_claims(evidence_dir, "dcapqvl_tdx_quote_v4")
    for field in ("mrtd", "rtmr1", "rtmr2"):
        claims = set_path(claims, f"tdx.{field}", sets[f"img-{field}"].values[0].value)
    assert evaluate(policy, claims, at=AT, resource="models/m/dek").allowed
    for field in ("mrtd", "rtmr1", "rtmr2"):
        other = set_path(claims, f"tdx.{field}", "ab" * 48)
        decision = evaluate(policy, other, at=AT, resource="models/m/dek")
        assert not decision.allowed
        assert [c.code for c in decision.checks if not c.passed] == [f"policy.tdx.{field}"]


def test_policy_pinning_measured_snp_value(build, tmp_path, evidence_dir):
    refs = tmp_path / "snp.yaml"
    result = invoke("measure", "snp", "--ovmf", str(build["ovmf"]), "--vcpus", "4", "--vcpu-type", "EPYC-Genoa",
                    "--guest-features", "0x21", "--name", "genoa", "--out", str(refs))
    assert result.exit_code == 0, result.output
    measured = snp_measurement(SnpLaunch(ovmf=build["ovmf"], vcpus=4, vcpu_type="EPYC-Genoa", guest_features=0x21))
    document = yaml.safe_load((EXAMPLES / "snp-production.yaml").read_text())
    document["spec"]["platforms"][0]["snp"]["measurement"] = {"ref": "genoa-measurement"}
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(document))
    policy = load_policy(policy_file, references=[refs, EXAMPLES / "reference-values.yaml"])
    claims = sample_claims(evidence_dir, "azure_genoa_v3")
    assert evaluate(policy, set_path(claims, "snp.measurement", measured.hex()), at=AT,
                    resource="models/m/dek").allowed
    denied = evaluate(policy, claims, at=AT, resource="models/m/dek")
    assert [c.code for c in denied.checks if not c.passed] == ["policy.snp.measurement"]


def test_json_output_lists_values_sections_and_events(build):
    result = invoke("measure", "tdx", "--firmware", str(build["tdvf"]), "--kernel", str(build["kernel"]), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc["values"]) == {"measured-mrtd", "measured-rtmr1", "measured-rtmr2"}
    assert [s["type"] for s in doc["sections"]] == ["BFV", "TD_HOB"]
    # No --cmdline and no --initrd: OVMF passes no load options, so nothing extends RTMR[2].
    assert [e["rtmr"] for e in doc["events"]] == [1, 1, 1, 1, 1]
    assert doc["values"]["measured-rtmr2"] == "00" * 48
    assert doc["written"] is None


@pytest.mark.parametrize("argv, words", [
    (["tdx", "--firmware", "/nonexistent/OVMF.fd"], "cannot read firmware"),
    (["tdx", "--firmware", "{ovmf}"], "not a TDX (TDVF) firmware image"),
    (["tdx", "--firmware", "{tdvf}", "--kernel", "{elf}"], "not a PE/COFF image"),
    (["tdx", "--firmware", "{tdvf}", "--cmdline", "quiet"], "only with a kernel"),
    (["tdx", "--firmware", "{tdvf}", "--name", "Bad Name"], "--name must be"),
    (["snp", "--ovmf", "{ovmf}", "--vcpus", "1", "--vcpu-type", "Pentium"], "unknown vCPU type"),
    (["snp", "--ovmf", "{ovmf}", "--vcpus", "1"], "exactly one of a vCPU type and a vCPU signature"),
    (["snp", "--ovmf", "{ovmf}", "--vcpus", "1", "--vcpu-sig", "zz"], "is not an integer"),
    (["snp", "--ovmf", "{ovmf}", "--vcpus", "1", "--vcpu-type", "EPYC", "--ovmf-hash", "00"], "48 bytes"),
    (["snp", "--ovmf", "{tdvf}", "--vcpus", "1", "--vcpu-type", "EPYC"], "not a whole number of 4 KiB pages"),
    (["snp", "--ovmf", "{tdvf4k}", "--vcpus", "1", "--vcpu-type", "EPYC"], "SEV metadata"),
])
def test_bad_input_exits_2_with_a_specific_message_and_writes_nothing(build, tmp_path, argv, words):
    out = tmp_path / "never.yaml"
    args = [a.format(**{k: str(v) for k, v in build.items()}) for a in argv]
    result = runner.invoke(app, ["measure", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())
    assert not out.exists()
