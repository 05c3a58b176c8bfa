"""`veil attest verify|inspect|emulate gpu` with NVIDIA GPU and composite evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from veil.cli.main import app

runner = CliRunner()
NONCE_2023 = "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e"
NONCE_2025 = "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
TEE_KEY = {"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW",
           "x": "uGo3n2Gi9NzYsmJGDOYr04e79LFKY4jP_tSnDSETWOg", "y": "Kh8jDg_OQcha40pxZ06sEO_0t4NxJw_I0N-d-TXTzs0"}


def veil(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def nv(evidence_dir: Path) -> Path:
    return evidence_dir / "nvidia"


def real_args(nv: Path, *rims: str):
    sample = nv / "hopper_2023_sample"
    args = ["attest", "verify", "--tee", "nvidia", sample / "attestationReport.txt", "--certs",
            sample / "gpuAkCertChain.txt", "--at", "2024-06-01T00:00:00Z", "--offline", "--no-revocation", "--json"]
    for r in rims:
        args += ["--rim", nv / "rims" / r]
    return args


def test_real_hopper_2023_verifies(nv):
    result = veil(*real_args(nv, "Driver_RIM_test_no_gpu.swidtag", "1010_0200_882_96005E0001_test_no_gpu.swidtag"),
                  "--nonce", NONCE_2023)
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["verified"] and doc["anchor"]["name"] == "nvidia-device-identity-ca"
    assert set(doc) >= {"verified", "tee", "tcb_status", "anchor", "claims", "errors", "warnings"}


def test_prod_rim_mismatch_exits_1(nv):
    result = veil(*real_args(nv, "Driver_RIM_test_no_gpu.swidtag", "1010_0200_882_96005E0001_PROD.swidtag"),
                  "--nonce", NONCE_2023)
    doc = json.loads(result.stdout)
    assert result.exit_code == 1 and doc["claims"]["gpus"][0]["mismatching_indices"] == [1, 2, 3, 9]


def test_wrong_nonce_exits_1(nv):
    result = veil(*real_args(nv, "Driver_RIM_test_no_gpu.swidtag"), "--nonce", "00" * 32)
    assert result.exit_code == 1 and json.loads(result.stdout)["errors"][0]["code"] == "nvidia.nonce"


def test_missing_nonce_or_bad_input_exits_2(nv, tmp_path):
    assert veil(*real_args(nv)).exit_code == 2
    junk = tmp_path / "junk.txt"
    junk.write_text("11e0")
    assert veil("attest", "verify", "--tee", "nvidia", junk, "--certs", junk, "--nonce", "00" * 32).exit_code == 2


def test_inspect_decodes_gpu_evidence(nv):
    result = veil("attest", "inspect", "--tee", "nvidia", nv / "hopper_2025_sample" / "hopperAttestationReport.txt",
                  "--json")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["gpus"][0]["request"]["nonce"] == NONCE_2025


def test_emulated_gpu_and_composite_round_trip(tmp_path):
    vendor, anchors, rims = tmp_path / "vendor", tmp_path / "anchors", tmp_path / "rims"
    out = tmp_path / "gpu.json"
    made = veil("attest", "emulate", "gpu", "--out", out, "--nonce", "11" * 32, "--gpus", "2", "--vendor-dir",
                vendor, "--rims-out", rims, "--anchors-out", anchors)
    assert made.exit_code == 0, made.output
    ok = veil("attest", "verify", "--tee", "nvidia", out, "--nonce", "11" * 32, "--rim", rims, "--offline",
              "--no-revocation", "--emulated-anchors", anchors, "--json")
    assert ok.exit_code == 0, ok.output
    assert veil("attest", "verify", "--tee", "nvidia", out, "--nonce", "11" * 32, "--rim", rims, "--offline",
                "--no-revocation").exit_code == 1                      # not under the real NVIDIA roots
    key = tmp_path / "key.jwk"
    key.write_text(json.dumps(TEE_KEY))
    comp = tmp_path / "composite.json"
    assert veil("attest", "emulate", "gpu", "--out", comp, "--composite", "kbs-nonce", "--tee-pubkey", key,
                "--vendor-dir", vendor).exit_code == 0
    # emulated TDX collateral comes from a bundle written by `emulate tdx --bundle-out`
    bundle = tmp_path / "bundle"
    assert veil("attest", "emulate", "tdx", "--report-data", "00", "--out", tmp_path / "q.bin", "--vendor-dir", vendor,
                "--bundle-out", bundle).exit_code == 0
    args = ["attest", "verify", comp, "--rim", rims, "--collateral", bundle, "--offline", "--no-revocation",
            "--emulated-anchors", anchors, "--tee-pubkey", key, "--json"]
    good = veil(*args, "--nonce", "kbs-nonce")
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["tee"] == "composite" and len(json.loads(good.stdout)["claims"]["gpus"]) == 1
    bad = veil(*args, "--nonce", "another-nonce")
    assert bad.exit_code == 1
    assert {e["code"] for e in json.loads(bad.stdout)["errors"]} == {"composite.report_data", "composite.gpu_nonce"}


def test_text_output_shows_expected_and_actual(nv):
    args = [a for a in real_args(nv, "Driver_RIM_test_no_gpu.swidtag") if a != "--json"]
    result = veil(*args, "--nonce", "00" * 32)
    assert result.exit_code == 1
    assert f"(expected {'00' * 32}, actual {NONCE_2023})" in " ".join(result.stdout.split())


def test_explain_shows_what_passed_before_a_missing_rim(nv):
    args = [a for a in real_args(nv, "Driver_RIM_test_no_gpu.swidtag") if a != "--json"]   # no VBIOS RIM
    result = veil(*args, "--nonce", NONCE_2023, "--explain")
    assert result.exit_code == 1, result.stdout
    lines = {line.split(":")[0].strip(): line for line in result.stdout.splitlines() if "nvidia." in line
             and line.startswith("    ")}
    for check in ("nvidia.nonce", "nvidia.device_chain", "nvidia.report_signature", "nvidia.driver_rim"):
        assert lines[check].split(": ", 1)[1].startswith("pass"), lines[check]
    assert "skipped" in lines["nvidia.revocation"]
    assert "FAIL" in lines["nvidia.vbios_rim"] and "not reached" in lines["nvidia.measurements"]
    doc = json.loads(veil(*real_args(nv, "Driver_RIM_test_no_gpu.swidtag"), "--nonce", NONCE_2023).stdout)
    assert [c["outcome"] for c in doc["checks"][0]] == ["pass", "pass", "pass", "pass", "skipped", "pass", "pass",
                                                        "fail", "not reached"]
