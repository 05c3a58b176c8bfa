"""Every TDX quote of corpus/evidence verifies (or fails) exactly as corpus/README.md says."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from pydantic import BaseModel

from attestation.claims import Claims, TcbStatus
from attestation.errors import VerificationError
from attestation.evidence import Evidence
from attestation.tdx import verify as tdx_verify
from attestation.tdx.abi import parse_quote
from attestation.verify import verify
from tests.attestation.tdx.tdx_evidence import utc

FOUR_SAS = ("INTEL-SA-00837", "INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986")
EXPIRY_CODES = {"tdx.tcb_info_expired", "tdx.qe_identity_expired", "tdx.pck_crl", "tdx.root_ca_crl"}


@dataclass(frozen=True)
class Case:
    quote: str
    collateral: str
    window: tuple[str, str]          # the README's window for this quote + collateral
    status: TcbStatus | None = None  # None: verification fails with `error`
    advisories: tuple[str, ...] = ()
    error: str | None = None
    debug: bool = False
    at: str | None = None            # defaults to the middle of the window

    @property
    def id(self) -> str:
        return f"{self.quote.rsplit('/', 1)[-1]}@{self.collateral}"


CASES = [
    Case("tdx/quotes/dcapqvl_tdx_quote_v4.dat", "dcapqvl_2025_06",
         ("2025-06-19T10:32:27Z", "2025-07-19T10:00:35Z"), TcbStatus.UP_TO_DATE,
         at="2025-07-19T10:00:34Z"),   # dcap-qvl's own test time: min(nextUpdate) - 1 s
    Case("tdx/quotes/dcapqvl_tdx_quote_v4.dat", "teekit_2025_09:b0c06f000000",
         ("2025-09-29T18:26:58Z", "2025-10-02T07:03:51Z"), TcbStatus.UP_TO_DATE,
         at="2025-10-01T00:00:00Z"),
    Case("tdx/quotes/gotdx_v5_td15.dat", "dcapqvl_2026_02",
         ("2026-02-18T10:58:51Z", "2026-03-20T10:41:15Z"), TcbStatus.UP_TO_DATE),
    Case("tdx/quotes/gotdx_v5_td15.dat", "gotdx_2026_02",
         ("2026-02-18T10:42:15Z", "2026-03-03T14:49:26Z"), TcbStatus.UP_TO_DATE),
    Case("tdx/quotes/teekit_tdx_v4_gcp.quote.dat", "teekit_2025_09:00806f050000",
         ("2025-09-29T18:04:58Z", "2025-10-02T07:03:51Z"), TcbStatus.UP_TO_DATE),
    Case("tdx/quotes/teekit_tdx_v4_edgeless.dat", "teekit_2025_09:00806f050000",
         ("2025-09-29T18:04:58Z", "2025-10-02T07:03:51Z"), TcbStatus.OUT_OF_DATE, FOUR_SAS),
    Case("tdx/quotes/dcapqvl_tdx_quote_outdated_v5.dat", "dcapqvl_2026_02",
         ("2026-02-18T10:58:51Z", "2026-03-20T10:41:15Z"), error="tdx.tcb_level"),
    Case("tdx/quotes/gotdx_spr_e4_v4.dat", "gotdx_2023_06",
         ("2023-06-18T08:42:58Z", "2023-07-08T07:24:59Z"), error="tdx.tcb_level",
         at="2023-07-01T01:00:00Z"),
    Case("tdx/quotes/gotdx_spr_e4_v4.dat", "teekit_2025_09:50806f000000",
         ("2025-09-29T18:29:22Z", "2025-10-02T07:03:51Z"), error="tdx.tcb_level"),
    Case("tdx/quotes/trustee_tdx_quote_4_debug_v4.dat", "gotdx_2023_06",
         ("2023-06-18T08:42:58Z", "2023-07-08T07:24:59Z"), TcbStatus.UP_TO_DATE, debug=True),
    Case("tdx/quotes/trustee_tdx_quote_4_debug_v4.dat", "teekit_2025_09:50806f000000",
         ("2025-09-29T18:29:22Z", "2025-10-02T07:03:51Z"), TcbStatus.OUT_OF_DATE, FOUR_SAS, debug=True),
    # Intel's QVL rule (spec §8.1) skips TEE_TCB_SVN[0..1] when [1] > 0: the platform matches the
    # 2023-08-09 OutOfDate level and module TDX_01 ISVSVN 2 is OutOfDate. The README's "no matching
    # level" is dcap-qvl's all-16-bytes comparison (spec §9).
    Case("azure/tdx/td-quote.bin", "teekit_2025_09:00806f050000",
         ("2025-09-29T18:04:58Z", "2025-10-02T07:03:51Z"), TcbStatus.OUT_OF_DATE,
         ("INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986")),
    # The v5 quote's PCK certificate is valid only from 2026-01-27.
    Case("tdx/quotes/gotdx_v5_td15.dat", "teekit_2025_09:90c06f000000",
         ("2025-09-29T18:29:22Z", "2025-10-02T07:03:51Z"), error="tdx.pck_chain"),
]


def _at(case: Case):
    if case.at:
        return utc(case.at)
    start, end = (utc(t) for t in case.window)
    return start + (end - start) / 2


def _run(evidence_dir, sets, make_opts, case: Case, at=None, **kw) -> Claims:
    quote = parse_quote((evidence_dir / case.quote).read_bytes())
    return tdx_verify.verify_quote(quote, make_opts(sets.named(case.collateral), at or _at(case), **kw))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_verdict_inside_window(evidence_dir, sets, make_opts, case):
    if case.error:
        with pytest.raises(VerificationError) as info:
            _run(evidence_dir, sets, make_opts, case)
        assert info.value.check == case.error
        assert info.value.expected and info.value.actual
        return
    claims = _run(evidence_dir, sets, make_opts, case)
    assert claims.tee == "tdx"
    assert claims.tcb_status == case.status
    assert claims.advisory_ids == case.advisories
    assert claims.debug is case.debug
    assert claims.anchor.name == "intel-sgx-root-ca" and claims.anchor.kind == "vendor"
    assert (claims.collateral_window.not_before, claims.collateral_window.not_after) == \
        tuple(utc(t) for t in case.window)
    assert claims.verified_at == _at(case)
    assert Claims.model_validate(claims.model_dump()) == claims


@pytest.mark.parametrize("case", [c for c in CASES if c.error is None], ids=lambda c: c.id)
@pytest.mark.parametrize("edge", ["before", "after"])
def test_fails_outside_window(evidence_dir, sets, make_opts, case, edge):
    start, end = (utc(t) for t in case.window)
    # the window's edges themselves are inside
    for at in (start, end):
        _run(evidence_dir, sets, make_opts, case, at=at)
    at = start - timedelta(seconds=1) if edge == "before" else end + timedelta(seconds=1)
    with pytest.raises(VerificationError) as info:
        _run(evidence_dir, sets, make_opts, case, at=at)
    assert info.value.check in EXPIRY_CODES


def test_without_revocation_window_covers_tcb_info_and_qe_identity_only(evidence_dir, sets, make_opts):
    case = CASES[0]
    claims = _run(evidence_dir, sets, make_opts, case, check_revocation=False)
    # the PCK CRL's nextUpdate (2025-07-19T10:00:35Z) no longer bounds the window
    assert claims.collateral_window.not_after == utc("2025-07-19T10:16:03Z")


def test_debug_td_is_refused_by_the_top_level_verifier(evidence_dir, sets, make_opts):
    case = next(c for c in CASES if c.debug)
    opts = make_opts(sets.named(case.collateral), _at(case))
    result = verify(Evidence(tee="tdx", report=(evidence_dir / case.quote).read_bytes()), opts)
    assert not result.verified
    assert [e.code for e in result.errors] == ["tdx.debug"]
    assert result.claims is not None and result.claims.debug
    assert result.claims.tdx.td_attributes.debug and result.claims.tdx.td_attributes.sept_ve_disable
    allowed = verify(Evidence(tee="tdx", report=(evidence_dir / case.quote).read_bytes()),
                     make_opts(sets.named(case.collateral), _at(case), allow_debug=True))
    assert allowed.verified


def test_top_level_verifier_reports_tcb_level_failure(evidence_dir, sets, make_opts):
    case = next(c for c in CASES if c.error == "tdx.tcb_level")
    opts = make_opts(sets.named(case.collateral), _at(case))
    result = verify(Evidence(tee="tdx", report=(evidence_dir / case.quote).read_bytes()), opts)
    assert not result.verified and result.errors[0].code == "tdx.tcb_level"


def test_azure_td_warns_about_sept_ve_disable(evidence_dir, sets, make_opts):
    claims = _run(evidence_dir, sets, make_opts, next(c for c in CASES if "azure" in c.quote))
    assert claims.tdx.td_attributes.value == 0
    assert any(w.startswith("tdx.sept_ve_disable_off:") for w in claims.warnings)
    assert claims.tdx.module_tcb_status == TcbStatus.OUT_OF_DATE
    assert claims.tdx.platform_tcb_status == TcbStatus.OUT_OF_DATE


def test_tcb_details_of_v5_quote(evidence_dir, sets, make_opts):
    claims = _run(evidence_dir, sets, make_opts, CASES[2])
    tdx = claims.tdx
    assert (tdx.quote_version, tdx.body_type) == (5, 3)
    assert tdx.tee_tcb_svn2.startswith("0d0104") and tdx.mrservicetd == "00" * 48
    assert tdx.platform_tcb_date == utc("2024-11-13T00:00:00Z")
    assert tdx.module_tcb_status == TcbStatus.UP_TO_DATE
    assert tdx.qe_tcb_status == TcbStatus.UP_TO_DATE
    assert tdx.tcb_evaluation_data_number == 18
    assert claims.warnings == ()


# ------------------------------------------------------------------ decoded fields vs the README

def _readme_quotes(evidence_dir) -> dict[str, dict[str, str]]:
    """Per quote file: the field values the README lists for it."""
    text = (evidence_dir.parent / "README.md").read_text()     # corpus/README.md
    out: dict[str, dict[str, str]] = {}
    for section in re.split(r"\n#### ", text)[1:]:
        name = re.match(r"`([^`]+)`", section)
        if not name or not name.group(1).endswith((".dat", ".bin")) or "TDX quote" not in section:
            continue
        fields = dict(re.findall(r"^- (MRTD|RTMR\d|REPORT_DATA) `([0-9a-f]+)`", section, re.M))
        pck = re.search(r"FMSPC `([0-9a-f]{12})`, PCESVN (\d+), CPUSVN components\[0:8\] \[([\d, ]+)\]"
                        r".*QE ISVSVN (\d+)", section)
        fields.update(fmspc=pck.group(1), pcesvn=pck.group(2), comps=pck.group(3), qe_isvsvn=pck.group(4))
        fields["tee_tcb_svn"] = re.search(r"TEE_TCB_SVN `([0-9a-f]+)…`", section).group(1)
        fields["td_attributes"] = re.search(r"TD_ATTRIBUTES 0x([0-9a-f]{16})", section).group(1)
        out[name.group(1).split(" ")[0]] = fields
    return out


@pytest.mark.parametrize("case", [c for c in CASES if c.error is None], ids=lambda c: c.id)
def test_decoded_fields_match_readme(evidence_dir, sets, make_opts, case):
    expected = _readme_quotes(evidence_dir)[case.quote]
    tdx = _run(evidence_dir, sets, make_opts, case).tdx
    assert tdx.mrtd == expected["MRTD"]
    for i in range(4):
        assert getattr(tdx, f"rtmr{i}") == expected[f"RTMR{i}"]
    assert tdx.report_data == expected["REPORT_DATA"]
    assert tdx.fmspc == expected["fmspc"]
    assert tdx.pce_svn == int(expected["pcesvn"])
    assert list(tdx.sgx_tcb_components[:8]) == [int(x) for x in expected["comps"].split(",")]
    assert tdx.qe_isvsvn == int(expected["qe_isvsvn"])
    assert tdx.tee_tcb_svn.startswith(expected["tee_tcb_svn"]) and len(tdx.tee_tcb_svn) == 32
    assert tdx.td_attributes.value == int(expected["td_attributes"], 16)
    assert tdx.qe_vendor_id == "939a7233f79c4ca9940a0db3957f0607"


def test_readme_table_covers_every_tdx_quote(evidence_dir):
    listed = set(_readme_quotes(evidence_dir))
    assert listed == {c.quote for c in CASES}


def test_describe_lists_every_field_readably(evidence_dir):
    import json

    from attestation.tdx.inspect import describe
    quote = parse_quote((evidence_dir / CASES[2].quote).read_bytes())
    out = describe(quote)
    json.dumps(out)                                   # plain data only
    assert out["header"]["version"] == 5 and out["body_type"] == 3
    assert out["body"]["mrtd"].startswith("7348651a34b2d2d3")
    assert out["body"]["tee_tcb_svn2"].startswith("0d0104")
    assert out["signature"]["qe_report"]["isv_svn"] == 7
    assert out["pck"]["fmspc"] == "90c06f000000" and out["pck"]["pce_svn"] == 13
    assert out["extra_bytes"] == 0


def _types(value):
    """The value's structure with the exact type of every leaf (models as their field dicts)."""
    if isinstance(value, BaseModel):
        return {name: _types(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, tuple):
        return (tuple, tuple(_types(v) for v in value))
    return type(value)


@pytest.mark.parametrize("case", [c for c in CASES if c.error is None], ids=lambda c: c.id)
def test_claims_are_exactly_what_validation_builds(evidence_dir, sets, make_opts, case):
    """The claims equal, type for type, what strictly validating their own dump produces."""
    claims = _run(evidence_dir, sets, make_opts, case)
    validated = Claims.model_validate(claims.model_dump(), strict=True)
    assert validated == claims
    assert _types(validated) == _types(claims)
    assert Claims.model_validate_json(claims.model_dump_json()) == claims
