"""Intel's TDX TCB status algorithm (spec §8, after Intel's QVL).

Pure functions of already verified collateral and the platform's SVNs:
platform level selection (§8.1), TDX module status and convergence and the TD
relaunch check (§8.2), QE TCB status and the final convergence. A TCB that no
level recognises, and a revoked TCB, raise VerificationError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..claims import TcbStatus
from ..errors import VerificationError
from .pcs import IsvTcbLevel, QeIdentity, TcbInfo, TcbLevel

S = TcbStatus

_SGX_OK_FOR_RELAUNCH = {S.UP_TO_DATE, S.SW_HARDENING_NEEDED, S.CONFIGURATION_NEEDED,
                        S.CONFIGURATION_AND_SW_HARDENING_NEEDED}
_CONFIG_KINDS = {S.CONFIGURATION_NEEDED, S.OUT_OF_DATE_CONFIGURATION_NEEDED,
                 S.CONFIGURATION_AND_SW_HARDENING_NEEDED, S.TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED}
_ISV_STATUSES = {S.UP_TO_DATE, S.OUT_OF_DATE, S.REVOKED}


@dataclass(frozen=True, slots=True)
class PlatformTcb:
    """The SVNs the TCB evaluation looks at."""

    sgx_components: tuple[int, ...]   # from the PCK certificate
    pce_svn: int
    tee_tcb_svn: bytes
    tee_tcb_svn2: bytes | None        # TD 1.5 only; used by the relaunch check
    qe_isvsvn: int


@dataclass(frozen=True, slots=True)
class TcbResult:
    status: TcbStatus
    advisory_ids: tuple[str, ...]
    tcb_date: datetime
    platform_status: TcbStatus        # the matched TDX level's own status
    module_status: TcbStatus | None   # None when TEE_TCB_SVN[1] == 0
    qe_status: TcbStatus
    qe_tcb_date: datetime



def select_levels(info: TcbInfo, tcb: PlatformTcb) -> tuple[TcbLevel, TcbLevel]:
    """(sgxLevel, tdxLevel) per §8.1; raises tdx.tcb_level when none matches."""
    sgx_level: TcbLevel | None = None
    start = 2 if tcb.tee_tcb_svn[1] > 0 else 0
    for level in info.tcb_levels:
        if tcb.pce_svn < level.pce_svn or any(
                have < need for have, need in zip(tcb.sgx_components, level.sgx_components)):
            continue
        sgx_level = sgx_level or level
        if all(tcb.tee_tcb_svn[i] >= level.tdx_components[i] for i in range(start, 16)):
            return sgx_level, level
    raise VerificationError(
        "tdx.tcb_level", "no TCB level of the TCB info matches this platform "
        + ("(SGX components / PCESVN)" if sgx_level is None else "(TEE_TCB_SVN)"),
        expected=_describe_newest(info, start),
        actual=f"sgx {list(tcb.sgx_components)} pcesvn {tcb.pce_svn} "
               f"tee_tcb_svn {tcb.tee_tcb_svn.hex()}")


def _describe_newest(info: TcbInfo, start: int) -> str:
    if not info.tcb_levels:
        return "at least one TCB level"
    low = info.tcb_levels[-1]
    return (f"at least sgx {list(low.sgx_components)} pcesvn {low.pce_svn} "
            f"tdx {list(low.tdx_components)}" + (" (from component 2)" if start else ""))


def module_level(info: TcbInfo, tee_tcb_svn: bytes) -> IsvTcbLevel | None:
    """The TDX module identity level (§8.2); None when TEE_TCB_SVN[1] == 0."""
    if tee_tcb_svn[1] == 0:
        return None
    identity = info.module_identity(tee_tcb_svn[1])
    if identity is None:
        raise VerificationError("tdx.module_identity",
                                f"the TCB info has no TDX module identity TDX_{tee_tcb_svn[1]:02X}",
                                expected=", ".join(m.id for m in info.module_identities) or "none",
                                actual=f"TDX_{tee_tcb_svn[1]:02X}")
    level = next((lv for lv in identity.tcb_levels if tee_tcb_svn[0] >= lv.isvsvn), None)
    if level is None or level.status not in _ISV_STATUSES:
        raise VerificationError(
            "tdx.module_tcb_level", f"TDX module ISVSVN {tee_tcb_svn[0]} is not supported by {identity.id}",
            expected=f"ISVSVN >= {identity.tcb_levels[-1].isvsvn}" if identity.tcb_levels else "a level",
            actual=str(tee_tcb_svn[0]))
    return level


def qe_level(identity: QeIdentity, isvsvn: int) -> IsvTcbLevel:
    """The QE identity level for the QE's ISVSVN (§7 step 8)."""
    level = next((lv for lv in identity.tcb_levels if lv.isvsvn <= isvsvn), None)
    if level is None or level.status not in _ISV_STATUSES:
        raise VerificationError(
            "tdx.qe_tcb_level", f"QE ISVSVN {isvsvn} is not supported by the QE identity",
            expected=f"ISVSVN >= {identity.tcb_levels[-1].isvsvn}" if identity.tcb_levels else "a level",
            actual=str(isvsvn))
    return level


def _converge(status: TcbStatus, other: TcbStatus | None) -> TcbStatus:
    """Combine a TDX status with a module or QE status (IQVL convergence rules)."""
    if other == S.REVOKED:
        return S.REVOKED
    if other == S.OUT_OF_DATE:
        if status in (S.UP_TO_DATE, S.SW_HARDENING_NEEDED):
            return S.OUT_OF_DATE
        if status in (S.CONFIGURATION_NEEDED, S.CONFIGURATION_AND_SW_HARDENING_NEEDED):
            return S.OUT_OF_DATE_CONFIGURATION_NEEDED
    return status


def _relaunch(info: TcbInfo, svn2: bytes, sgx_status: TcbStatus, tdx_status: TcbStatus,
              module_status: TcbStatus | None, qe_status: TcbStatus) -> TcbStatus:
    """TD relaunch check for TD 1.5 bodies (IQVL TDRelaunchCheck)."""
    if (qe_status in (S.OUT_OF_DATE, S.REVOKED) or sgx_status not in _SGX_OK_FOR_RELAUNCH
            or tdx_status not in (S.OUT_OF_DATE, S.OUT_OF_DATE_CONFIGURATION_NEEDED)
            or module_status != S.OUT_OF_DATE or not info.tcb_levels):
        return tdx_status
    newest = info.tcb_levels[0]
    need0 = newest.tdx_components[0]
    if svn2[1] > 0:
        identity = info.module_identity(svn2[1])
        if identity is None:
            raise VerificationError("tdx.module_identity",
                                    f"the TCB info has no TDX module identity TDX_{svn2[1]:02X} "
                                    "(TEE_TCB_SVN2)", actual=f"TDX_{svn2[1]:02X}")
        if not identity.tcb_levels:
            return tdx_status
        need0 = identity.tcb_levels[0].isvsvn
    if svn2[0] >= need0 and svn2[2] >= newest.tdx_components[2]:
        if sgx_status in _CONFIG_KINDS or tdx_status in _CONFIG_KINDS:
            return S.TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED
        return S.TD_RELAUNCH_ADVISED
    return tdx_status


def evaluate(info: TcbInfo, qe_identity: QeIdentity, tcb: PlatformTcb) -> TcbResult:
    """Status, advisory IDs (union) and TCB date, exactly per spec §8."""
    sgx_level, tdx_level = select_levels(info, tcb)
    module = module_level(info, tcb.tee_tcb_svn)
    qe = qe_level(qe_identity, tcb.qe_isvsvn)
    module_status = module.status if module else None
    status = _converge(tdx_level.status, module_status)
    if tcb.tee_tcb_svn2 is not None:
        status = _relaunch(info, tcb.tee_tcb_svn2, sgx_level.status, status, module_status, qe.status)
    status = _converge(status, qe.status)
    advisories: dict[str, None] = {}
    for source in (tdx_level.advisory_ids, module.advisory_ids if module else (), qe.advisory_ids):
        advisories.update(dict.fromkeys(source))
    if status == S.REVOKED:
        raise VerificationError("tdx.tcb_revoked", "the platform, TDX module or QE TCB is revoked",
                                expected="not Revoked", actual=S.REVOKED.value)
    return TcbResult(status=status, advisory_ids=tuple(advisories), tcb_date=tdx_level.tcb_date,
                     platform_status=tdx_level.status, module_status=module_status,
                     qe_status=qe.status, qe_tcb_date=qe.tcb_date)
