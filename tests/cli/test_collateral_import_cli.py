"""`veil attest collateral import|status|fetch` and repeated `--collateral`, on the real corpus files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

from attestation.collateral.bundle import OfflineBundle
from attestation.collateral.intel import load_intel_collateral_json, tdx_collateral_from_pcs
from attestation.x509util import load_crl
from veil.cli.main import app

runner = CliRunner()
C = "tdx/collateral/"
GOTDX = C + "gotdx_2023-06_50806f000000/"
TCB_CHAIN_2018 = "roots/intel/tcb_signing_chain_2018-2025.pem"
PCK_CHAIN = "roots/intel/pck_platform_ca_chain.pem"
JSON_2025_09 = C + "dcapqvl_2025-09_20a06f000000.json"
JSON_2026_02 = C + "dcapqvl_2026-02_90c06f000000.json"
GOTDX_2026_TCB = C + "gotdx_2026-02_90c06f000000/tcb_info.json"


def veil(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def e(evidence_dir: Path) -> Path:
    return evidence_dir


def gotdx_2023_collateral(e: Path):
    return tdx_collateral_from_pcs(
        (e / GOTDX / "tcb_info.json").read_bytes(), (e / GOTDX / "qe_identity.json").read_bytes(),
        tcb_info_issuer_chain=(e / TCB_CHAIN_2018).read_bytes(),
        qe_identity_issuer_chain=(e / TCB_CHAIN_2018).read_bytes(),
        pck_crl=(e / GOTDX / "pck_crl_platform.der").read_bytes(),
        pck_crl_issuer_chain=(e / PCK_CHAIN).read_bytes(), root_ca_crl=(e / GOTDX / "root_ca_crl.der").read_bytes())


def imported(*args: str | Path) -> dict:
    result = veil("attest", "collateral", "import", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- import: each form

def test_import_pcs_bodies_der_crls_and_pem_chains(e, tmp_path):
    out = tmp_path / "bundle"
    doc = imported(*(e / GOTDX / n for n in ("tcb_info.json", "qe_identity.json", "pck_crl_platform.der",
                                             "root_ca_crl.der")), e / TCB_CHAIN_2018, e / PCK_CHAIN, "--out", out)
    kinds = [f["kind"] for f in doc["files"]]
    assert kinds == ["tcb_info", "qe_identity", "pck_crl", "root_ca_crl", "tcb_signing_chain", "pck_ca_chain"]
    assert doc["sets"] == [{"fmspc": "50806f000000", "pck_ca": "platform", "files": doc["sets"][0]["files"],
                            "not_before": "2023-06-18T08:42:58Z", "not_after": "2023-07-08T07:24:59Z"}]
    assert OfflineBundle(out).tdx("50806f000000", "platform") == gotdx_2023_collateral(e)


def test_import_recognises_files_by_content_pem_crls_and_header_encoded_chains(e, tmp_path):
    """Misleading names, CRLs converted to PEM, the TCB chain as the URL-encoded PCS header."""
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(e / GOTDX / "tcb_info.json", loose / "a.crl")
    shutil.copy(e / GOTDX / "qe_identity.json", loose / "b.pem")
    for name, target in (("pck_crl_platform.der", "c.json"), ("root_ca_crl.der", "d.txt")):
        crl = load_crl((e / GOTDX / name).read_bytes())
        (loose / target).write_bytes(crl.public_bytes(Encoding.PEM))
    (loose / "e.der").write_text(quote((e / TCB_CHAIN_2018).read_text()))
    shutil.copy(e / PCK_CHAIN, loose / "f.bin")
    out = tmp_path / "bundle"
    doc = imported(loose, "--out", out)          # a directory stands for the files in it
    assert {f["file"].rsplit("/", 1)[1]: f["kind"] for f in doc["files"]} == {
        "a.crl": "tcb_info", "b.pem": "qe_identity", "c.json": "pck_crl", "d.txt": "root_ca_crl",
        "e.der": "tcb_signing_chain", "f.bin": "pck_ca_chain"}
    assert OfflineBundle(out).tdx("50806f000000", "platform") == gotdx_2023_collateral(e)


def test_import_nine_field_json(e, tmp_path):
    out = tmp_path / "bundle"
    doc = imported(e / JSON_2026_02, "--out", out)
    assert [(s["fmspc"], s["not_before"], s["not_after"]) for s in doc["sets"]] == [
        ("90c06f000000", "2026-02-18T10:58:51Z", "2026-03-20T10:41:15Z")]
    expected = load_intel_collateral_json((e / JSON_2026_02).read_bytes())
    assert OfflineBundle(out).tdx("90c06f000000", "platform") == expected


def test_import_mixes_loose_tcb_infos_with_a_nine_field_files_qe_identity_and_crls(e, tmp_path):
    teekit = sorted((e / C / "teekit_2025-09").glob("tcb_info_*.json"))
    out = tmp_path / "bundle"
    doc = imported(*teekit, e / JSON_2025_09, "--out", out)
    assert sorted(s["fmspc"] for s in doc["sets"]) == ["00806f050000", "20a06f000000", "50806f000000",
                                                       "90c06f000000", "b0c06f000000"]
    donor = load_intel_collateral_json((e / JSON_2025_09).read_bytes())
    got = OfflineBundle(out).tdx("00806f050000", "platform")
    assert (got.qe_identity, got.pck_crl, got.root_ca_crl) == (donor.qe_identity, donor.pck_crl, donor.root_ca_crl)
    text = veil("attest", "collateral", "import", teekit[0], e / JSON_2025_09, "--out", tmp_path / "b2")
    assert text.exit_code == 0
    assert "FMSPC 00806f050000" in text.stdout and "2025-09-29T18:04:58Z .. 2025-10-02T07:03:51Z" in text.stdout


# --------------------------------------------------------------------------- import: refusals

def refused(tmp_path: Path, *files: str | Path) -> str:
    out = tmp_path / "out" / "bundle"
    result = veil("attest", "collateral", "import", *files, "--out", out)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.startswith("error: ")
    assert not out.exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    return " ".join(result.output.split())


@pytest.mark.parametrize("bad", ["tdx/quotes/gotdx_v5_td15.dat", "roots/intel/IntelSGXRootCA.pem",
                                 "snp/virtee_milan_v2/vcek_milan.der", "nvidia/rims/Driver_RIM_test_no_gpu.swidtag",
                                 "snp/virtee_milan_v2/report_milan.hex", "roots/intel/IntelSGXRootCA.der"])
def test_import_refuses_a_file_that_is_not_intel_collateral(e, tmp_path, bad):
    message = refused(tmp_path, e / JSON_2026_02, e / bad)
    assert str(e / bad) in message


def test_import_refuses_truncated_json(e, tmp_path):
    broken = tmp_path / "tcb.json"
    broken.write_bytes((e / GOTDX / "tcb_info.json").read_bytes()[:-40])
    assert "not valid JSON" in refused(tmp_path, broken, e / JSON_2026_02)


def test_import_names_the_missing_issuer_chain(e, tmp_path):
    message = refused(tmp_path, e / GOTDX)
    assert "TCB info issuer chain" in message and "no usable file" in message


def test_import_refuses_a_file_no_set_uses(e, tmp_path):
    message = refused(tmp_path, e / JSON_2026_02, e / GOTDX / "qe_identity.json")
    assert "not used by any collateral set" in message and "qe_identity.json" in message


def test_import_refuses_collateral_outside_the_tcb_infos_window(e, tmp_path):
    """2023 QE identity and CRLs cannot serve a 2025 TCB info."""
    message = refused(tmp_path, e / C / "teekit_2025-09/tcb_info_50806f000000.json",
                      *(e / GOTDX / n for n in ("qe_identity.json", "pck_crl_platform.der", "root_ca_crl.der")),
                      e / TCB_CHAIN_2018, e / PCK_CHAIN)
    assert "outside its window" in message


def test_import_refuses_two_sets_for_one_platform(e, tmp_path):
    assert "given twice" in refused(tmp_path, e / GOTDX_2026_TCB, e / JSON_2026_02)


def test_import_never_writes_into_an_existing_directory(e, tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    result = veil("attest", "collateral", "import", e / JSON_2026_02, "--out", out)
    assert result.exit_code == 2 and "already exists" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


# --------------------------------------------------------------------------- --collateral, repeated

def verify_window(e: Path, quote: str, at: str, *collateral: str | Path, cmd=("attest", "verify")) -> dict:
    args = [*cmd, e / quote, "--offline", "--at", at, "--json"]
    for c in collateral:
        args += ["--collateral", c]
    result = veil(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_repeated_collateral_is_asked_in_turn(e, tmp_path):
    """A source without the platform's FMSPC is passed over; between two that have it, the first wins."""
    quote, at = "tdx/quotes/gotdx_v5_td15.dat", "2026-02-25T00:00:00Z"
    doc = verify_window(e, quote, at, e / C / "dcapqvl_2025-06_b0c06f000000.json", e / JSON_2026_02)
    assert doc["claims"]["collateral_window"]["not_after"] == "2026-03-20T10:41:15Z"
    bundle = tmp_path / "bundle"
    imported(e / JSON_2026_02, "--out", bundle)
    first_bundle = verify_window(e, quote, at, bundle, e / GOTDX_2026_TCB, e / JSON_2026_02)
    assert first_bundle["claims"]["collateral_window"]["not_after"] == "2026-03-20T10:41:15Z"
    first_loose = verify_window(e, quote, at, e / GOTDX_2026_TCB, e / JSON_2026_02, bundle)
    assert first_loose["claims"]["collateral_window"]["not_after"] == "2026-03-03T14:49:26Z"


def test_none_of_the_sources_has_the_platform(e):
    result = veil("attest", "verify", e / "tdx/quotes/gotdx_v5_td15.dat", "--offline", "--json",
                  "--at", "2026-02-25T00:00:00Z", "--collateral", e / C / "dcapqvl_2025-06_b0c06f000000.json",
                  "--collateral", e / JSON_2025_09)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["errors"][0]
    assert error["code"] == "collateral.tdx" and "90c06f000000" in error["message"]


def test_policy_from_evidence_takes_repeated_collateral(e, tmp_path):
    out = tmp_path / "p.yaml"
    result = veil("policy", "from-evidence", e / "tdx/quotes/teekit_tdx_v4_gcp.quote.dat", "--out", out,
                  "--offline", "--at", "2025-10-01T00:00:00Z",
                  "--collateral", e / C / "teekit_2025-09/tcb_info_00806f050000.json", "--collateral", e / JSON_2025_09)
    assert result.exit_code == 0, result.output
    assert "409c0cd3e63d9ea54d817cf851983a22" in out.read_text()


def test_a_missing_collateral_path_is_bad_input(e, tmp_path):
    result = veil("attest", "verify", e / "tdx/quotes/gotdx_v5_td15.dat", "--offline",
                  "--collateral", e / JSON_2026_02, "--collateral", tmp_path / "nope.json")
    assert result.exit_code == 2 and "nope.json" in result.output and "Traceback" not in result.output


# --------------------------------------------------------------------------- status

@pytest.mark.parametrize("form", ["bundle", "json", "loose"])
def test_status_takes_every_collateral_form(e, tmp_path, form):
    sources = {"json": [e / JSON_2025_09], "loose": [e / C / "teekit_2025-09/tcb_info_00806f050000.json",
                                                     e / JSON_2025_09]}.get(form)
    if sources is None:
        sources = [tmp_path / "bundle"]
        imported(e / JSON_2025_09, "--out", sources[0])
    inside = veil("attest", "collateral", "status", *sources, "--at", "2025-10-01T00:00:00Z", "--json")
    assert inside.exit_code == 0, inside.output
    doc = json.loads(inside.stdout)
    assert doc["current"] is True and doc["stale"] == 0
    items = {(i["kind"], i["keys"]["fmspc"]) for i in doc["items"]}
    assert ("tdx.tcb_info", "20a06f000000") in items and ("tdx.qe_identity", "20a06f000000") in items
    assert (form == "loose") == (("tdx.tcb_info", "00806f050000") in items)
    after = veil("attest", "collateral", "status", *sources, "--at", "2025-10-03T00:00:00Z", "--json")
    assert after.exit_code == 1
    states = {i["kind"]: i["state"] for i in json.loads(after.stdout)["items"]}
    assert states["tdx.pck_crl"] == "expired" and states["tdx.root_ca_crl"] == "current"


def test_status_text_names_items_and_states(e):
    result = veil("attest", "collateral", "status", e / JSON_2025_09, "--at", "2025-10-03T00:00:00Z")
    assert result.exit_code == 1
    assert "TDX TCB info for FMSPC 20a06f000000" in result.stdout and "expired" in result.stdout


def test_status_refuses_a_bad_file(e):
    result = veil("attest", "collateral", "status", e / "tdx/quotes/gotdx_v5_td15.dat")
    assert result.exit_code == 2 and "Traceback" not in result.output and "gotdx_v5_td15.dat" in result.output


# --------------------------------------------------------------------------- fetch without network

def test_fetch_without_network_says_where_to_run_it(e, tmp_path):
    out = tmp_path / "bundle"
    result = veil("attest", "collateral", "fetch", "--fmspc", "90c06f000000", "--out", out,
                  "--pcs-url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "127.0.0.1:9" in text and "needs network access" in text
    assert "connected machine" in text and "veil attest collateral import" in text
    assert "collateral fetch --fmspc" not in text          # the hint no longer points back at itself
    assert not out.exists()


def test_import_refuses_a_bundle_as_input(e, tmp_path):
    bundle = tmp_path / "bundle"
    imported(e / JSON_2026_02, "--out", bundle)
    message = refused(tmp_path, bundle)
    assert "already an offline bundle" in message
