"""Intel's TCB algorithm (spec §8) on small synthetic TCB infos, and PCS document parsing."""

from __future__ import annotations

import json

import pytest

from attestation.claims import TcbStatus as S
from attestation.errors import ParseError, VerificationError
from attestation.tdx import pcs, tcb


def _level(sgx, pce, tdx, status, advisories=(), date="2024-01-01T00:00:00Z"):
    comps = lambda svns: [{"svn": v} for v in list(svns) + [0] * (16 - len(svns))]  # noqa: E731
    out = {"tcb": {"sgxtcbcomponents": comps(sgx), "pcesvn": pce, "tdxtcbcomponents": comps(tdx)},
           "tcbDate": date, "tcbStatus": status}
    if advisories:
        out["advisoryIDs"] = list(advisories)
    return out


def _info(levels, modules=()):
    doc = {"id": "TDX", "version": 3, "issueDate": "2025-01-01T00:00:00Z",
           "nextUpdate": "2025-02-01T00:00:00Z", "fmspc": "00806F050000", "pceId": "0000", "tcbType": 0,
           "tcbEvaluationDataNumber": 17,
           "tdxModule": {"mrsigner": "00" * 48, "attributes": "00" * 8, "attributesMask": "FF" * 8},
           "tdxModuleIdentities": [
               {"id": mid, "mrsigner": "00" * 48, "attributes": "00" * 8, "attributesMask": "FF" * 8,
                "tcbLevels": [{"tcb": {"isvsvn": svn}, "tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": st}
                              for svn, st in lv]} for mid, lv in modules],
           "tcbLevels": levels}
    return pcs.parse_tcb_info(json.dumps(doc).encode())


def _qe(levels=((4, "UpToDate"),)):
    doc = {"id": "TD_QE", "version": 2, "issueDate": "2025-01-01T00:00:00Z",
           "nextUpdate": "2025-02-01T00:00:00Z", "tcbEvaluationDataNumber": 17, "miscselect": "00000000",
           "miscselectMask": "FFFFFFFF", "attributes": "11" + "00" * 15, "attributesMask": "FB" + "FF" * 7 + "00" * 8,
           "mrsigner": "AB" * 32, "isvprodid": 2,
           "tcbLevels": [{"tcb": {"isvsvn": s}, "tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": st}
                         for s, st in levels]}
    return pcs.parse_qe_identity(json.dumps(doc).encode())


def _platform(sgx=(5,) * 8, pce=11, tee=(3, 0, 5), tee2=None, qe=4):
    pad = lambda v: bytes(list(v) + [0] * (16 - len(v)))  # noqa: E731
    return tcb.PlatformTcb(sgx_components=tuple(list(sgx) + [0] * (16 - len(sgx))), pce_svn=pce,
                           tee_tcb_svn=pad(tee), tee_tcb_svn2=pad(tee2) if tee2 else None, qe_isvsvn=qe)


LEVELS = [
    _level([5] * 8, 11, [3, 0, 5], "OutOfDate", ["INTEL-SA-1"], "2023-01-01T00:00:00Z"),   # listed first
    _level([7] * 8, 11, [5, 0, 7], "UpToDate"),
    _level([6] * 8, 11, [3, 0, 6], "SWHardeningNeeded", ["INTEL-SA-2"]),
]


def test_levels_are_ordered_canonically_not_by_json_order():
    info = _info(LEVELS)
    assert [lv.status for lv in info.tcb_levels] == [S.UP_TO_DATE, S.SW_HARDENING_NEEDED, S.OUT_OF_DATE]
    result = tcb.evaluate(info, _qe(), _platform(sgx=(6,) * 8, tee=(3, 0, 6)))
    assert result.status == S.SW_HARDENING_NEEDED and result.advisory_ids == ("INTEL-SA-2",)


def test_no_sgx_level_and_no_tdx_level_are_rejected():
    with pytest.raises(VerificationError) as info:
        tcb.evaluate(_info(LEVELS), _qe(), _platform(sgx=(4,) * 8))
    assert info.value.check == "tdx.tcb_level" and "SGX" in info.value.message
    with pytest.raises(VerificationError) as info:
        tcb.evaluate(_info(LEVELS), _qe(), _platform(tee=(3, 0, 4)))
    assert info.value.check == "tdx.tcb_level" and "TEE_TCB_SVN" in info.value.message


def test_module_bytes_are_skipped_when_a_module_identity_applies():
    modules = [("TDX_01", [(4, "UpToDate"), (2, "OutOfDate")])]
    # TEE_TCB_SVN[0] = 2 is below every level's component 0, but [1] > 0: only [2:] is compared
    result = tcb.evaluate(_info(LEVELS, modules), _qe(), _platform(sgx=(7,) * 8, tee=(2, 1, 7)))
    assert result.platform_status == S.UP_TO_DATE
    assert result.module_status == S.OUT_OF_DATE
    assert result.status == S.OUT_OF_DATE          # converged


def test_missing_module_identity_and_unsupported_module_svn():
    with pytest.raises(VerificationError) as info:
        tcb.evaluate(_info(LEVELS, [("TDX_01", [(4, "UpToDate")])]), _qe(), _platform(tee=(4, 3, 7), sgx=(7,) * 8))
    assert info.value.check == "tdx.module_identity"
    with pytest.raises(VerificationError) as info:
        tcb.evaluate(_info(LEVELS, [("TDX_01", [(4, "UpToDate")])]), _qe(), _platform(tee=(3, 1, 7), sgx=(7,) * 8))
    assert info.value.check == "tdx.module_tcb_level"


@pytest.mark.parametrize("level,module,expected", [
    ("UpToDate", "OutOfDate", S.OUT_OF_DATE),
    ("SWHardeningNeeded", "OutOfDate", S.OUT_OF_DATE),
    ("ConfigurationNeeded", "OutOfDate", S.OUT_OF_DATE_CONFIGURATION_NEEDED),
    ("ConfigurationAndSWHardeningNeeded", "OutOfDate", S.OUT_OF_DATE_CONFIGURATION_NEEDED),
    ("ConfigurationNeeded", "UpToDate", S.CONFIGURATION_NEEDED),
])
def test_module_convergence(level, module, expected):
    info = _info([_level([5] * 8, 11, [3, 0, 5], level)], [("TDX_01", [(3, module)])])
    assert tcb.evaluate(info, _qe(), _platform(tee=(3, 1, 5))).status == expected


@pytest.mark.parametrize("qe_status,expected", [("OutOfDate", S.OUT_OF_DATE_CONFIGURATION_NEEDED),
                                                ("UpToDate", S.CONFIGURATION_NEEDED)])
def test_qe_convergence(qe_status, expected):
    info = _info([_level([5] * 8, 11, [3, 0, 5], "ConfigurationNeeded")])
    result = tcb.evaluate(info, _qe([(4, qe_status)]), _platform())
    assert result.status == expected


def test_revoked_and_unsupported_qe():
    with pytest.raises(VerificationError) as info:
        tcb.evaluate(_info(LEVELS), _qe([(4, "Revoked")]), _platform())
    assert info.value.check == "tdx.tcb_revoked"
    with pytest.raises(VerificationError) as info:
        tcb.evaluate(_info(LEVELS), _qe([(5, "UpToDate")]), _platform(qe=4))
    assert info.value.check == "tdx.qe_tcb_level"
    with pytest.raises(VerificationError) as info:
        tcb.evaluate(_info([_level([5] * 8, 11, [3, 0, 5], "Revoked")]), _qe(), _platform())
    assert info.value.check == "tdx.tcb_revoked"


def test_td_relaunch_advised_for_td15_bodies():
    levels = [_level([7] * 8, 11, [5, 0, 7], "UpToDate"), _level([5] * 8, 11, [3, 0, 5], "OutOfDate")]
    info = _info(levels, [("TDX_01", [(5, "UpToDate"), (3, "OutOfDate")])])
    running = _platform(sgx=(7,) * 8, tee=(3, 1, 5), tee2=(5, 1, 7))
    assert tcb.evaluate(info, _qe(), running).status == S.TD_RELAUNCH_ADVISED
    not_updated = _platform(sgx=(7,) * 8, tee=(3, 1, 5), tee2=(3, 1, 5))
    assert tcb.evaluate(info, _qe(), not_updated).status == S.OUT_OF_DATE
    td10 = _platform(sgx=(7,) * 8, tee=(3, 1, 5))
    assert tcb.evaluate(info, _qe(), td10).status == S.OUT_OF_DATE


def test_advisories_are_a_union_in_order():
    info = _info([_level([5] * 8, 11, [3, 0, 5], "OutOfDate", ["A", "B"])])
    qe = _qe([(4, "UpToDate")])
    assert tcb.evaluate(info, qe, _platform()).advisory_ids == ("A", "B")


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.pop("fmspc"), "fmspc"),
    (lambda d: d.update(version=2), "version"),
    (lambda d: d.update(id="SGX"), "id"),
    (lambda d: d.update(issueDate="yesterday"), "issueDate"),
    (lambda d: d["tcbLevels"][0].update(tcbStatus="Fine"), "tcbLevels[0].tcbStatus"),
    (lambda d: d["tcbLevels"][0]["tcb"]["sgxtcbcomponents"].pop(), "tcbLevels[0].tcb.sgxtcbcomponents"),
    (lambda d: d["tdxModule"].update(mrsigner="00"), "tdxModule.mrsigner"),
])
def test_bad_tcb_info_names_the_item(mutate, field):
    doc = json.loads(json.dumps({"id": "TDX", "version": 3, "issueDate": "2025-01-01T00:00:00Z",
                                 "nextUpdate": "2025-02-01T00:00:00Z", "fmspc": "00806F050000",
                                 "pceId": "0000", "tcbType": 0, "tcbEvaluationDataNumber": 17,
                                 "tdxModule": {"mrsigner": "00" * 48, "attributes": "00" * 8,
                                               "attributesMask": "FF" * 8},
                                 "tcbLevels": [LEVELS[0]]}))
    pcs.parse_tcb_info(json.dumps(doc).encode())
    mutate(doc)
    with pytest.raises(ParseError) as info:
        pcs.parse_tcb_info(json.dumps(doc).encode())
    assert info.value.structure == "TDX TCB info" and info.value.field == field


def test_bad_json_is_a_parse_error():
    with pytest.raises(ParseError) as info:
        pcs.parse_qe_identity(b"{not json")
    assert info.value.structure == "TD QE identity"
    with pytest.raises(ParseError):
        pcs.parse_tcb_info(b"[]")
