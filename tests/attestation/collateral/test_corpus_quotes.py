"""Every TDX quote of the evidence corpus, verified through `veil attest verify` from the corpus's
collateral files as they are (no re-packing in Python), at the times its README names.

The README's "Summary" has eight TDX rows; they map to these files:

    dcapqvl_tdx_quote_v4.dat            pass, UpToDate (two collateral routes)
    gotdx_v5_td15.dat                   pass, UpToDate (nine-field JSON; or go-tdx-guest TCB info + its QE/CRLs)
    teekit_tdx_v4_gcp.quote.dat (.json) pass, UpToDate (teekit TCB info + QE/CRLs of the 2025-09 JSON)
    teekit_tdx_v4_edgeless.dat          verified, OutOfDate with four advisories
    dcapqvl_tdx_quote_outdated_v5.dat   no matching TCB level -> reject
    gotdx_spr_e4_v4.dat                 no matching TCB level -> reject (2023 PCS files; or teekit 2025-09)
    trustee_tdx_quote_4_debug_v4.dat    DEBUG -> reject
    azure/tdx/td-quote.bin              see test_azure_quote_is_out_of_date_under_intels_level_matching

Collateral is combined by giving `--collateral` several times (loose files first, so the loose
TCB info is asked before the nine-field file's own) or by `veil attest collateral import`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from veil.cli.main import app

runner = CliRunner()
SA_2023 = {"INTEL-SA-00837", "INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"}


@pytest.fixture(scope="module")
def e(evidence_dir: Path) -> Path:
    return evidence_dir


def verify(e: Path, quote: str, collateral: list[str], at: str, *extra: str) -> tuple[int, dict]:
    args = ["attest", "verify", str(e / quote), "--offline", "--json", "--at", at, *extra]
    for item in collateral:
        args += ["--collateral", str(e / item)]
    result = runner.invoke(app, args)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


C = "tdx/collateral/"
TEEKIT_2025_09 = {fmspc: [f"{C}teekit_2025-09/tcb_info_{fmspc}.json", f"{C}dcapqvl_2025-09_20a06f000000.json"]
                  for fmspc in ("00806f050000", "50806f000000", "90c06f000000", "b0c06f000000")}
GOTDX_2023 = [f"{C}gotdx_2023-06_50806f000000", "roots/intel/tcb_signing_chain_2018-2025.pem",
              "roots/intel/pck_platform_ca_chain.pem"]
AT_2025_10 = "2025-10-01T00:00:00Z"
AT_2023_07 = "2023-07-01T01:00:00Z"


PASSING = [
    ("tdx/quotes/dcapqvl_tdx_quote_v4.dat", [f"{C}dcapqvl_2025-06_b0c06f000000.json"], "2025-07-19T10:00:34Z"),
    ("tdx/quotes/dcapqvl_tdx_quote_v4.dat", TEEKIT_2025_09["b0c06f000000"], AT_2025_10),
    ("tdx/quotes/gotdx_v5_td15.dat", [f"{C}dcapqvl_2026-02_90c06f000000.json"], "2026-03-01T00:00:00Z"),
    ("tdx/quotes/teekit_tdx_v4_gcp.quote.dat", TEEKIT_2025_09["00806f050000"], AT_2025_10),
    ("tdx/quotes/teekit_tdx_v4_gcp.json", TEEKIT_2025_09["00806f050000"], AT_2025_10),
]


@pytest.mark.parametrize("quote,collateral,at", PASSING, ids=lambda v: v if isinstance(v, str) else None)
def test_passing_quotes_verify_up_to_date(e, quote, collateral, at):
    code, doc = verify(e, quote, collateral, at)
    assert code == 0, doc["errors"]
    assert doc["verified"] is True and doc["tcb_status"] == "UpToDate" and doc["advisory_ids"] == []


def test_td15_quote_with_the_go_tdx_guest_tcb_info_uses_that_tcb_info(e):
    """The loose TCB info is given first, so it is asked before the JSON's own: the combined window
    ends at its nextUpdate (2026-03-03T14:49:26Z), not at the JSON's (2026-03-20)."""
    collateral = [f"{C}gotdx_2026-02_90c06f000000/tcb_info.json", f"{C}dcapqvl_2026-02_90c06f000000.json"]
    code, doc = verify(e, "tdx/quotes/gotdx_v5_td15.dat", collateral, "2026-02-25T00:00:00Z")
    assert code == 0 and doc["tcb_status"] == "UpToDate"
    assert doc["claims"]["collateral_window"] == {"not_before": "2026-02-18T10:42:15Z",
                                                  "not_after": "2026-03-03T14:49:26Z"}
    late, doc = verify(e, "tdx/quotes/gotdx_v5_td15.dat", collateral, "2026-03-10T00:00:00Z")
    assert late == 1 and doc["errors"][0]["code"].startswith("tdx.")
    swapped, doc = verify(e, "tdx/quotes/gotdx_v5_td15.dat", collateral[::-1], "2026-03-10T00:00:00Z")
    assert swapped == 0 and doc["claims"]["collateral_window"]["not_after"] == "2026-03-20T10:41:15Z"


def test_edgeless_quote_is_verified_out_of_date_with_its_advisories(e):
    code, doc = verify(e, "tdx/quotes/teekit_tdx_v4_edgeless.dat", TEEKIT_2025_09["00806f050000"], AT_2025_10)
    assert code == 0 and doc["tcb_status"] == "OutOfDate"
    assert set(doc["advisory_ids"]) == SA_2023


@pytest.mark.parametrize("quote,collateral,at", [
    ("tdx/quotes/dcapqvl_tdx_quote_outdated_v5.dat", [f"{C}dcapqvl_2026-02_90c06f000000.json"],
     "2026-03-01T00:00:00Z"),
    ("tdx/quotes/gotdx_spr_e4_v4.dat", GOTDX_2023, AT_2023_07),
    ("tdx/quotes/gotdx_spr_e4_v4.dat", TEEKIT_2025_09["50806f000000"], AT_2025_10),
], ids=["outdated_v5", "spr_e4_2023", "spr_e4_2025"])
def test_unrecognised_platforms_are_rejected_for_their_tcb_level(e, quote, collateral, at):
    code, doc = verify(e, quote, collateral, at)
    assert code == 1 and doc["verified"] is False
    assert [err["code"] for err in doc["errors"]] == ["tdx.tcb_level"]


@pytest.mark.parametrize("collateral,at,status,advisories", [
    (GOTDX_2023, AT_2023_07, "UpToDate", set()),
    (TEEKIT_2025_09["50806f000000"], AT_2025_10, "OutOfDate", SA_2023),
], ids=["2023", "2025"])
def test_debug_td_is_rejected_whatever_its_tcb(e, collateral, at, status, advisories):
    quote = "tdx/quotes/trustee_tdx_quote_4_debug_v4.dat"
    code, doc = verify(e, quote, collateral, at)
    assert code == 1 and [err["code"] for err in doc["errors"]] == ["tdx.debug"]
    assert doc["tcb_status"] == status
    code, doc = verify(e, quote, collateral, at, "--allow-debug")
    assert code == 0 and doc["tcb_status"] == status and set(doc["advisory_ids"]) == advisories


def test_azure_quote_is_out_of_date_under_intels_level_matching(e):
    """The corpus README says no TCB level of the 2025-09 TCB info matches (TEE_TCB_SVN[0] = 2 < 5):
    that compares all 16 TEE_TCB_SVN bytes, as dcap-qvl does. Intel's QVL, which Veil follows,
    skips bytes 0-1 when TEE_TCB_SVN[1] > 0 and judges them by the module identity TDX_01 instead
    (ISVSVN 2 -> its OutOfDate level). SEPT_VE_DISABLE = 0 is reported for policy to decide."""
    code, doc = verify(e, "azure/tdx/td-quote.bin", TEEKIT_2025_09["00806f050000"], AT_2025_10)
    assert code == 0 and doc["tcb_status"] == "OutOfDate"
    assert doc["claims"]["tdx"]["module_tcb_status"] == "OutOfDate"
    assert doc["claims"]["tdx"]["platform_tcb_date"] == "2023-08-09T00:00:00Z"
    assert any(w.startswith("tdx.sept_ve_disable_off") for w in doc["warnings"])


def test_collateral_imported_into_bundles_verifies_the_same(e, tmp_path):
    bundles = {}
    for name, files in (("2023", GOTDX_2023), ("2025", TEEKIT_2025_09["00806f050000"])):
        out = tmp_path / name
        result = runner.invoke(app, ["attest", "collateral", "import", *(str(e / f) for f in files),
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        bundles[name] = str(out.relative_to(tmp_path))
    runner_args = ["--offline", "--json"]

    def run(quote: str, bundle: str, at: str) -> tuple[int, dict]:
        result = runner.invoke(app, ["attest", "verify", str(e / quote), "--collateral",
                                     str(tmp_path / bundle), "--at", at, *runner_args])
        return result.exit_code, json.loads(result.stdout)

    code, doc = run("tdx/quotes/gotdx_spr_e4_v4.dat", bundles["2023"], AT_2023_07)
    assert code == 1 and doc["errors"][0]["code"] == "tdx.tcb_level"
    code, doc = run("tdx/quotes/trustee_tdx_quote_4_debug_v4.dat", bundles["2023"], AT_2023_07)
    assert code == 1 and doc["errors"][0]["code"] == "tdx.debug"
    code, doc = run("tdx/quotes/teekit_tdx_v4_gcp.quote.dat", bundles["2025"], AT_2025_10)
    assert code == 0 and doc["tcb_status"] == "UpToDate"
    code, doc = run("tdx/quotes/teekit_tdx_v4_edgeless.dat", bundles["2025"], AT_2025_10)
    assert code == 0 and set(doc["advisory_ids"]) == SA_2023


def test_quote_json_envelope_is_read_and_odd_json_is_left_to_the_parser(e):
    from attestation.evidence import decode_blob

    wrapped = decode_blob((e / "tdx/quotes/teekit_tdx_v4_gcp.json").read_bytes())
    assert wrapped == (e / "tdx/quotes/teekit_tdx_v4_gcp.quote.dat").read_bytes()
    deep = b'{"quote":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert decode_blob(deep) == deep          # not an envelope: handed on unchanged, no RecursionError
    assert decode_blob(b'{"quote": "\\ud800"}') == b"?"     # a lone surrogate: replaced, then a parse error later
