"""Intel-format collateral for emulated TDX quotes (Intel PCS API v4).

TCB info v3 and QE identity v2 as compact JSON, signed (raw r‖s, ECDSA P-256)
by the emulated TCB Signing key over the exact bytes handed out; empty PCK and
root CA CRLs; PEM issuer chains. The levels make a quote with the emulator's
default TCB values `UpToDate`, and carry an older `OutOfDate` level so a test
can lower one SVN and see the status change.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ..collateral import TdxCollateral
from .pck import DEFAULT_PCE_ID, DEFAULT_PCE_SVN, DEFAULT_SGX_COMPONENTS
from .pki import empty_crl
from .tdx import (DEFAULT_TEE_TCB_SVN, QE_ATTRIBUTES, QE_ISVPRODID, QE_ISVSVN, QE_MISCSELECT,
                  QE_MRSIGNER, raw_signature)

HALF_WINDOW = dt.timedelta(days=15)     # collateral is valid for 30 days around `at`
TCB_EVALUATION_DATA_NUMBER = 17
UP_TO_DATE_DATE = "2024-03-13T00:00:00Z"
OUT_OF_DATE_DATE = "2018-01-04T00:00:00Z"
OUT_OF_DATE_ADVISORY = "INTEL-SA-00837"
ZERO_MRSIGNER = "00" * 48


@dataclass(frozen=True, slots=True)
class IntelKeys:
    """The emulated Intel hierarchy's certificates and signing keys."""

    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    pck_ca: x509.Certificate
    pck_ca_key: ec.EllipticCurvePrivateKey
    tcb_signing: x509.Certificate
    tcb_signing_key: ec.EllipticCurvePrivateKey


def _time(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _components(svns) -> list[dict]:
    return [{"svn": svn} for svn in svns]


def _platform_level(sgx, pcesvn, tdx, date, status, advisories=()) -> dict:
    level = {"tcb": {"sgxtcbcomponents": _components(sgx), "pcesvn": pcesvn,
                     "tdxtcbcomponents": _components(tdx)},
             "tcbDate": date, "tcbStatus": status}
    if advisories:
        level["advisoryIDs"] = list(advisories)
    return level


def _module_identity(module_version: int, isvsvn: int) -> dict:
    return {"id": f"TDX_{module_version:02X}", "mrsigner": ZERO_MRSIGNER,
            "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF",
            "tcbLevels": [
                {"tcb": {"isvsvn": isvsvn}, "tcbDate": UP_TO_DATE_DATE, "tcbStatus": "UpToDate"},
                {"tcb": {"isvsvn": 0}, "tcbDate": OUT_OF_DATE_DATE, "tcbStatus": "OutOfDate",
                 "advisoryIDs": [OUT_OF_DATE_ADVISORY]}]}


def tcb_info_json(fmspc: str, at: dt.datetime) -> bytes:
    """TDX TCB info v3 for `fmspc`, valid 15 days either side of `at`."""
    tdx_current = list(DEFAULT_TEE_TCB_SVN)
    tdx_current[1] = 0                       # module version bytes are judged by the identity
    older_sgx = [max(0, svn - 1) for svn in DEFAULT_SGX_COMPONENTS]
    older_tdx = [max(0, svn - 1) for svn in tdx_current]
    info = {
        "id": "TDX", "version": 3, "issueDate": _time(at - HALF_WINDOW),
        "nextUpdate": _time(at + HALF_WINDOW), "fmspc": fmspc.upper(), "pceId": DEFAULT_PCE_ID,
        "tcbType": 0, "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
        "tdxModule": {"mrsigner": ZERO_MRSIGNER, "attributes": "0000000000000000",
                      "attributesMask": "FFFFFFFFFFFFFFFF"},
        "tdxModuleIdentities": [_module_identity(v, DEFAULT_TEE_TCB_SVN[0]) for v in (1, 2, 3)],
        "tcbLevels": [
            _platform_level(DEFAULT_SGX_COMPONENTS, DEFAULT_PCE_SVN, tdx_current,
                            UP_TO_DATE_DATE, "UpToDate"),
            _platform_level(older_sgx, DEFAULT_PCE_SVN - 1, older_tdx, OUT_OF_DATE_DATE,
                            "OutOfDate", [OUT_OF_DATE_ADVISORY]),
        ],
    }
    return json.dumps(info, separators=(",", ":")).encode()


def qe_identity_json(at: dt.datetime) -> bytes:
    """TD_QE identity v2 matching the emulated quoting enclave."""
    identity = {
        "id": "TD_QE", "version": 2, "issueDate": _time(at - HALF_WINDOW),
        "nextUpdate": _time(at + HALF_WINDOW),
        "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
        "miscselect": QE_MISCSELECT.to_bytes(4, "big").hex().upper(), "miscselectMask": "FFFFFFFF",
        "attributes": QE_ATTRIBUTES.hex().upper(),
        "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner": QE_MRSIGNER.hex().upper(), "isvprodid": QE_ISVPRODID,
        "tcbLevels": [
            {"tcb": {"isvsvn": QE_ISVSVN}, "tcbDate": UP_TO_DATE_DATE, "tcbStatus": "UpToDate"},
            {"tcb": {"isvsvn": 0}, "tcbDate": OUT_OF_DATE_DATE, "tcbStatus": "OutOfDate",
             "advisoryIDs": [OUT_OF_DATE_ADVISORY]}],
    }
    return json.dumps(identity, separators=(",", ":")).encode()


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(Encoding.PEM) for cert in certs)


def tdx_collateral(keys: IntelKeys, fmspc: str, at: dt.datetime) -> TdxCollateral:
    """All nine collateral items for `fmspc`, every window covering `at` ± 15 days."""
    tcb_info = tcb_info_json(fmspc, at)
    qe_identity = qe_identity_json(at)
    window = {"this_update": at - HALF_WINDOW, "next_update": at + HALF_WINDOW}
    signing_chain = _pem(keys.tcb_signing, keys.root)
    return TdxCollateral(
        pck_crl_issuer_chain=_pem(keys.pck_ca, keys.root),
        root_ca_crl=empty_crl(keys.root, keys.root_key, **window),
        pck_crl=empty_crl(keys.pck_ca, keys.pck_ca_key, **window),
        tcb_info_issuer_chain=signing_chain,
        tcb_info=tcb_info,
        tcb_info_signature=raw_signature(keys.tcb_signing_key, tcb_info),
        qe_identity_issuer_chain=signing_chain,
        qe_identity=qe_identity,
        qe_identity_signature=raw_signature(keys.tcb_signing_key, qe_identity),
    )
