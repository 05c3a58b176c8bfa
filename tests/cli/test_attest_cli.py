"""`veil attest …` end to end: exit codes 0 / 1 / 2, JSON shape, real and emulated evidence."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attestation.collateral.bundle import BundleWriter
from attestation.collateral.intel import load_intel_collateral_json, tdx_collateral_from_pcs
from veil.cli.main import app

runner = CliRunner()


def veil(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def as_json(result) -> dict:
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def e(evidence_dir: Path) -> Path:
    return evidence_dir


def test_tdx_v4_verifies_inside_its_collateral_window(e):
    result = veil("attest", "verify", e / "tdx/quotes/dcapqvl_tdx_quote_v4.dat",
                  "--collateral", e / "tdx/collateral/dcapqvl_2025-06_b0c06f000000.json",
                  "--at", "2025-07-01T00:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    doc = as_json(result)
    assert doc["verified"] is True and doc["tee"] == "tdx" and doc["tcb_status"] == "UpToDate"
    assert doc["anchor"]["name"] == "intel-sgx-root-ca" and doc["anchor"]["kind"] == "vendor"
    assert doc["claims"]["tdx"]["mrtd"].startswith("91eb2b44d141d4ec")
    assert doc["errors"] == []


def test_tdx_v4_fails_after_its_collateral_expired(e):
    result = veil("attest", "verify", e / "tdx/quotes/dcapqvl_tdx_quote_v4.dat",
                  "--collateral", e / "tdx/collateral/dcapqvl_2025-06_b0c06f000000.json",
                  "--at", "2026-11-23T00:00:00Z", "--json")
    assert result.exit_code == 1
    doc = as_json(result)
    assert doc["verified"] is False and doc["claims"] is None
    assert doc["errors"] and doc["errors"][0]["code"].startswith("tdx.")


def test_out_of_date_tcb_is_verified_with_status_and_advisories(e, tmp_path):
    shared = load_intel_collateral_json((e / "tdx/collateral/dcapqvl_2025-09_20a06f000000.json").read_bytes())
    tcb_body = (e / "tdx/collateral/teekit_2025-09/tcb_info_00806f050000.json").read_bytes()
    collateral = tdx_collateral_from_pcs(
        tcb_body, b'{"enclaveIdentity":' + shared.qe_identity + b',"signature":"'
        + shared.qe_identity_signature.hex().encode() + b'"}',
        tcb_info_issuer_chain=shared.tcb_info_issuer_chain,
        qe_identity_issuer_chain=shared.qe_identity_issuer_chain, pck_crl=shared.pck_crl,
        pck_crl_issuer_chain=shared.pck_crl_issuer_chain, root_ca_crl=shared.root_ca_crl)
    with BundleWriter(tmp_path / "bundle") as writer:
        writer.add_tdx(collateral)
    result = veil("attest", "verify", e / "tdx/quotes/teekit_tdx_v4_edgeless.dat", "--collateral",
                  tmp_path / "bundle", "--offline", "--at", "2025-10-01T00:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    doc = as_json(result)
    assert doc["tcb_status"] == "OutOfDate"
    assert set(doc["advisory_ids"]) == {"INTEL-SA-00837", "INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"}


def gotdx_2023_bundle(e: Path, out: Path) -> Path:
    """The go-tdx-guest 2023 PCS responses, packed into an offline bundle."""
    base = e / "tdx/collateral/gotdx_2023-06_50806f000000"
    tcb_chain = (e / "roots/intel/tcb_signing_chain_2018-2025.pem").read_bytes()
    collateral = tdx_collateral_from_pcs(
        (base / "tcb_info.json").read_bytes(), (base / "qe_identity.json").read_bytes(),
        tcb_info_issuer_chain=tcb_chain, qe_identity_issuer_chain=tcb_chain,
        pck_crl=(base / "pck_crl_platform.der").read_bytes(),
        pck_crl_issuer_chain=(e / "roots/intel/pck_platform_ca_chain.pem").read_bytes(),
        root_ca_crl=(base / "root_ca_crl.der").read_bytes())
    with BundleWriter(out) as writer:
        writer.add_tdx(collateral)
    return out


def test_debug_td_is_not_verified_unless_allowed(e, tmp_path):
    bundle = gotdx_2023_bundle(e, tmp_path / "bundle")
    args = ["attest", "verify", e / "tdx/quotes/trustee_tdx_quote_4_debug_v4.dat", "--collateral", bundle,
            "--offline", "--at", "2023-07-01T01:00:00Z", "--json"]
    refused = veil(*args)
    assert refused.exit_code == 1, refused.output
    doc = as_json(refused)
    assert doc["errors"][0]["code"] == "tdx.debug" and doc["claims"]["debug"] is True
    allowed = veil(*args, "--allow-debug")
    assert allowed.exit_code == 0 and as_json(allowed)["tcb_status"] == "UpToDate"


def test_unrecognised_tcb_is_not_verified(e, tmp_path):
    bundle = gotdx_2023_bundle(e, tmp_path / "bundle")
    result = veil("attest", "verify", e / "tdx/quotes/gotdx_spr_e4_v4.dat", "--collateral", bundle,
                  "--offline", "--at", "2023-07-01T01:00:00Z", "--json")
    assert result.exit_code == 1
    assert as_json(result)["errors"][0]["code"] == "tdx.tcb_level"


def test_a_directory_that_is_not_a_bundle_is_bad_input(e):
    result = veil("attest", "verify", e / "tdx/quotes/dcapqvl_tdx_quote_v4.dat", "--collateral",
                  e / "tdx/collateral/gotdx_2023-06_50806f000000")
    assert result.exit_code == 2 and "manifest" in result.output


def test_snp_report_as_hex_text_with_certs(e):
    result = veil("attest", "verify", e / "snp/virtee_milan_v2/report_milan.hex", "--certs",
                  e / "snp/virtee_milan_v2/vcek_milan.der", "--no-revocation", "--json",
                  "--at", "2026-11-23T00:00:00Z")
    assert result.exit_code == 0, result.output
    doc = as_json(result)
    assert doc["tee"] == "snp" and doc["anchor"]["name"] == "amd-ark-milan"
    assert doc["claims"]["snp"]["measurement"].startswith("7a1e5c266c0108db")
    assert any("revocation" in w for w in doc["warnings"])


def test_snp_without_crl_offline_fails_closed_naming_the_item(e):
    result = veil("attest", "verify", e / "snp/virtee_milan_v2/report_milan.hex", "--certs",
                  e / "snp/virtee_milan_v2/vcek_milan.der", "--offline", "--json")
    assert result.exit_code == 1
    error = as_json(result)["errors"][0]
    assert error["code"] == "collateral.crl" and "Milan" in error["message"]


def test_expired_vlek_is_not_verified_now_but_was_then(e):
    base = ["attest", "verify", e / "snp/trustee_aws_vlek_milan_v3/test-vlek-report.bin", "--certs",
            e / "snp/trustee_aws_vlek_milan_v3/test-vlek.der", "--no-revocation", "--json"]
    assert veil(*base, "--at", "2025-06-01T00:00:00Z").exit_code == 0
    later = veil(*base, "--at", "2026-11-23T00:00:00Z")
    assert later.exit_code == 1 and as_json(later)["errors"][0]["code"].startswith("snp.")


def test_debug_snp_guest_needs_allow_debug(e):
    base = ["attest", "verify", e / "snp/gosevguest_milan_v2_debug/attestation.bin", "--certs",
            e / "snp/gosevguest_milan_v2_debug/vcek.der", "--no-revocation", "--json"]
    refused = veil(*base)
    assert refused.exit_code == 1 and as_json(refused)["errors"][0]["code"] == "snp.debug"
    assert as_json(refused)["claims"]["snp"]["policy"]["debug"] is True
    assert veil(*base, "--allow-debug").exit_code == 0


def test_base64_evidence_is_detected(e, tmp_path):
    encoded = tmp_path / "quote.b64"
    encoded.write_bytes(base64.b64encode((e / "tdx/quotes/dcapqvl_tdx_quote_v4.dat").read_bytes()))
    result = veil("attest", "verify", encoded, "--collateral",
                  e / "tdx/collateral/dcapqvl_2025-06_b0c06f000000.json", "--at", "2025-07-01T00:00:00Z")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("cut", [10, 0x30, 0x278, 0x300])
def test_truncated_quote_is_unreadable_input(e, tmp_path, cut):
    short = tmp_path / "short.dat"
    short.write_bytes((e / "tdx/quotes/dcapqvl_tdx_quote_v4.dat").read_bytes()[:cut])
    result = veil("attest", "verify", short, "--tee", "tdx", "--offline")
    assert result.exit_code == 2
    assert "error:" in result.output


@pytest.mark.parametrize("args, needle", [
    (["attest", "verify", "/nonexistent/quote.dat"], "cannot read evidence"),
    (["attest", "verify", "QUOTE", "--at", "yesterday"], "ISO-8601"),
    (["attest", "verify", "QUOTE", "--tee", "sgx"], "sgx"),
    (["attest", "verify", "QUOTE", "--certs", "/nonexistent.pem"], "cannot read certificate"),
])
def test_bad_usage_exits_2(e, args, needle):
    args = [str(e / "tdx/quotes/dcapqvl_tdx_quote_v4.dat") if a == "QUOTE" else a for a in args]
    result = veil(*args)
    assert result.exit_code == 2
    assert needle in result.output


def test_inspect_decodes_without_verifying(e):
    result = veil("attest", "inspect", e / "tdx/quotes/gotdx_v5_td15.dat", "--json")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876" in text
    assert json.loads(text)["verified"] is False


def test_emulated_round_trip_through_the_cli(tmp_path):
    vendor, quote, bundle, anchors = (tmp_path / n for n in ("vendor", "q.bin", "bundle", "anchors"))
    data = "ab" * 64
    assert veil("attest", "emulate", "tdx", "--report-data", data, "--out", quote, "--bundle-out", bundle,
                "--vendor-dir", vendor, "--mrtd", "11" * 48).exit_code == 0
    assert veil("attest", "emulate", "export-anchors", "--out", anchors, "--vendor-dir", vendor).exit_code == 0
    ok = veil("attest", "verify", quote, "--collateral", bundle, "--emulated-anchors", anchors, "--json")
    assert ok.exit_code == 0, ok.output
    doc = as_json(ok)
    assert doc["anchor"]["kind"] == "emulated" and doc["claims"]["report_data"] == data
    assert doc["claims"]["tdx"]["mrtd"] == "11" * 48
    # The same quote under the real Intel root only: not verified.
    assert veil("attest", "verify", quote, "--collateral", bundle, "--offline").exit_code == 1
    assert veil("attest", "collateral", "status", bundle).exit_code == 0


def test_emulated_snp_with_certificate_file(tmp_path):
    vendor, report, certs, bundle, anchors = (tmp_path / n for n in ("v", "r.bin", "c.pem", "b", "a"))
    assert veil("attest", "emulate", "snp", "--report-data", "cd" * 32, "--out", report, "--product", "Genoa",
                "--version", "5", "--certs-out", certs, "--bundle-out", bundle, "--vendor-dir", vendor).exit_code == 0
    assert veil("attest", "emulate", "export-anchors", "--out", anchors, "--vendor-dir", vendor).exit_code == 0
    ok = veil("attest", "verify", report, "--certs", certs, "--collateral", bundle, "--offline",
              "--emulated-anchors", anchors, "--json")
    assert ok.exit_code == 0, ok.output
    doc = as_json(ok)
    assert doc["claims"]["snp"]["product"] == "Genoa" and doc["anchor"]["name"] == "emulated-amd-genoa"
    assert doc["claims"]["report_data"] == "cd" * 32 + "00" * 32
    assert doc["warnings"] == [] or all("revocation" not in w for w in doc["warnings"])


def test_collateral_fetch_names_what_it_cannot_reach(e, tmp_path):
    """No vendor service is reachable here: fetch fails with exit 2 (network) and names the host, writes nothing."""
    out = tmp_path / "bundle"
    result = veil("attest", "collateral", "fetch", "--evidence", e / "tdx/quotes/gotdx_v5_td15.dat",
                  "--out", out, "--pcs-url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "127.0.0.1:9" in result.output and "90c06f000000" in result.output
    assert not out.exists()


def test_collateral_fetch_needs_something_to_fetch(tmp_path):
    result = veil("attest", "collateral", "fetch", "--out", tmp_path / "b")
    assert result.exit_code == 2 and "nothing to fetch" in result.output


def test_collect_outside_a_tee_names_every_interface_it_looked_for(tmp_path):
    result = veil("attest", "collect", "--report-data", "00", "--out", tmp_path / "q.bin")
    assert result.exit_code == 1
    for needle in ("/sys/kernel/config/tsm/report", "/dev/tdx_guest", "/dev/sev-guest"):
        assert needle in result.output
    assert not (tmp_path / "q.bin").exists()


def test_rim_fetch_from_a_local_mirror_lands_in_the_bundle(e, tmp_path):
    """`--rim ID` against a RIM service mirror on 127.0.0.1: the RIM is bundled, keyed by its id."""
    import http.server
    import threading

    from attestation.collateral.bundle import OfflineBundle

    xml = (e / "nvidia/rims/Driver_RIM_test_no_gpu.swidtag").read_bytes()
    rim_id = "NV_GPU_DRIVER_GH100_545.00"
    body = json.dumps({"id": rim_id, "rim": base64.b64encode(xml).decode(), "sha256": "",
                       "rim_format": "SWIDTAG"}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path == f"/v1/rim/{rim_id}"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if ok else b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "bundle"
        result = veil("attest", "collateral", "fetch", "--rim", rim_id, "--out", out,
                      "--rim-url", f"http://127.0.0.1:{server.server_port}")
        assert result.exit_code == 0, result.output
        item = OfflineBundle(out).find("nvidia.rim", {"id": rim_id})
        assert item is not None and OfflineBundle(out).read("nvidia.rim", {"id": rim_id}) == xml
    finally:
        server.shutdown()


def test_inspect_names_td_attributes_and_shows_certificates_not_pem(e):
    text = veil("attest", "inspect", e / "tdx/quotes/gotdx_v5_td15.dat")
    assert text.exit_code == 0, text.output
    assert "BEGIN CERTIFICATE" not in text.stdout
    flat = " ".join(text.stdout.split())
    for shown in ("set: SEPT_VE_DISABLE", "DEBUG: False", "SEPT_VE_DISABLE: True", "PERFMON: False",
                  "reserved_bits_set: none", "CN=Intel SGX Root CA"):
        assert shown in flat, shown
    doc = json.loads(veil("attest", "inspect", e / "tdx/quotes/gotdx_v5_td15.dat", "--json").stdout)
    assert doc["body"]["td_attributes"]["raw"] == "0000001000000000"
    root = doc["signature"]["pck_chain"][2]
    assert root["subject"] == root["issuer"] and root["subject"].endswith("CN=Intel SGX Root CA")
    assert len(root["sha256_fingerprint"].split(":")) == 32 and "pck_chain_pem" not in doc["signature"]


def test_td_attributes_name_every_defined_bit_and_flag_reserved_ones():
    from attestation.tdx.abi import decode_td_attributes

    value = 1 | 1 << 30 | 1 << 63 | 1 << 5
    decoded = decode_td_attributes(value.to_bytes(8, "little"))
    assert decoded["set"] == "DEBUG, PKS, PERFMON" and decoded["DEBUG"] and not decoded["SEPT_VE_DISABLE"]
    assert decoded["reserved_bits_set"] == "0x0000000000000020"
    assert decode_td_attributes(bytes(8))["set"] == "none"


def test_explain_on_cpu_evidence_says_what_it_lists(e):
    result = veil("attest", "verify", e / "tdx/quotes/dcapqvl_tdx_quote_v4.dat", "--offline", "--explain")
    assert result.exit_code == 1
    assert "--explain lists the checks of GPU evidence; TDX verification stops at its first failed check" in \
        " ".join(result.stdout.split())
