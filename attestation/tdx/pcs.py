"""Intel PCS collateral documents: TDX TCB info v3 and TD QE identity v2.

Parsed from the exact signed bytes of the inner JSON object (the value of
`tcbInfo` / `enclaveIdentity`), as carried in TdxCollateral. Signatures are
checked by `verify`; this module only checks shape and types. Dates are aware
UTC datetimes; hex fields become bytes; TCB levels are put in canonical order
(newest first) instead of trusting the order of the JSON (spec §8.1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..claims import TcbStatus
from ..errors import ParseError

try:   # orjson parses Intel's collateral about three times faster; json is the fallback
    from orjson import loads as _json_loads
except ImportError:  # pragma: no cover
    _json_loads = json.loads

S_TCB_INFO = "TDX TCB info"
S_QE_IDENTITY = "TD QE identity"

_STATUSES = {s.value: s for s in TcbStatus}


@dataclass(frozen=True, slots=True)
class TcbLevel:
    """One platform TCB level: SGX components, PCESVN and TDX components with their status."""

    sgx_components: tuple[int, ...]
    pce_svn: int
    tdx_components: tuple[int, ...]
    tcb_date: datetime
    status: TcbStatus
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IsvTcbLevel:
    """A TCB level keyed by one ISVSVN (TDX module identities and the QE identity)."""

    isvsvn: int
    tcb_date: datetime
    status: TcbStatus
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModuleIdentity:
    id: str                  # "" for the default `tdxModule`, "TDX_01"... otherwise
    mrsigner: bytes
    attributes: bytes
    attributes_mask: bytes
    tcb_levels: tuple[IsvTcbLevel, ...]


@dataclass(frozen=True, slots=True)
class TcbInfo:
    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    fmspc: bytes
    pce_id: bytes
    tcb_type: int
    tcb_evaluation_data_number: int
    tdx_module: ModuleIdentity
    module_identities: tuple[ModuleIdentity, ...]
    tcb_levels: tuple[TcbLevel, ...]   # canonical order, newest first

    def module_identity(self, module_version: int) -> ModuleIdentity | None:
        wanted = f"TDX_{module_version:02X}"
        return next((m for m in self.module_identities if m.id.upper() == wanted), None)


@dataclass(frozen=True, slots=True)
class QeIdentity:
    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    tcb_evaluation_data_number: int
    miscselect: int
    miscselect_mask: int
    attributes: bytes
    attributes_mask: bytes
    mrsigner: bytes
    isvprodid: int
    tcb_levels: tuple[IsvTcbLevel, ...]  # highest ISVSVN first


class _Doc:
    """Typed access to one JSON object, raising ParseError that names the path."""

    __slots__ = ("obj", "structure", "path")

    def __init__(self, obj: Any, structure: str, path: str) -> None:
        if not isinstance(obj, dict):
            raise ParseError(structure, path or "(document)", None, "expected a JSON object")
        self.obj, self.structure, self.path = obj, structure, path

    def _get(self, key: str, kind: type | tuple[type, ...], what: str) -> Any:
        where = f"{self.path}.{key}" if self.path else key
        value = self.obj.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise ParseError(self.structure, where, None, f"expected {what}")
        return value

    def int(self, key: str) -> int:
        value = self._get(key, int, "a non-negative integer")
        if value < 0:
            raise ParseError(self.structure, f"{self.path}.{key}".lstrip("."), None, "is negative")
        return value

    def str(self, key: str) -> str:
        return self._get(key, str, "a string")

    def hex(self, key: str, size: int) -> bytes:
        text = self.str(key)
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) != size:
            raise ParseError(self.structure, f"{self.path}.{key}".lstrip("."), None,
                             f"expected {size} bytes of hex")
        return raw

    def date(self, key: str) -> datetime:
        text = self.str(key)
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            value = None
        if value is None or value.tzinfo is None:
            raise ParseError(self.structure, f"{self.path}.{key}".lstrip("."), None,
                             f"{text[:40]!r} is not an ISO 8601 time with a zone")
        return value.astimezone(timezone.utc)

    def status(self, key: str) -> TcbStatus:
        text = self.str(key)
        if text not in _STATUSES:
            raise ParseError(self.structure, f"{self.path}.{key}".lstrip("."), None,
                             f"unknown TCB status {text[:40]!r}")
        return _STATUSES[text]

    def child(self, key: str) -> _Doc:
        return _Doc(self._get(key, dict, "an object"), self.structure, f"{self.path}.{key}".lstrip("."))

    def children(self, key: str, optional: bool = False) -> list[_Doc]:
        if optional and key not in self.obj:
            return []
        items = self._get(key, list, "a list")
        return [_Doc(item, self.structure, f"{self.path}.{key}[{i}]".lstrip("."))
                for i, item in enumerate(items)]

    def strings(self, key: str) -> tuple[str, ...]:
        if key not in self.obj:
            return ()
        items = self._get(key, list, "a list of strings")
        if not all(isinstance(i, str) for i in items):
            raise ParseError(self.structure, f"{self.path}.{key}".lstrip("."), None,
                             "expected a list of strings")
        return tuple(items)


def _loads(data: bytes, structure: str) -> Any:
    try:
        return _json_loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(structure, "(document)", None, f"not valid JSON: {exc}") from None


def _isv_levels(doc: _Doc) -> tuple[IsvTcbLevel, ...]:
    levels = [IsvTcbLevel(isvsvn=lv.child("tcb").int("isvsvn"), tcb_date=lv.date("tcbDate"),
                          status=lv.status("tcbStatus"), advisory_ids=lv.strings("advisoryIDs"))
              for lv in doc.children("tcbLevels")]
    return tuple(sorted(levels, key=lambda lv: lv.isvsvn, reverse=True))


def _components(doc: _Doc, key: str) -> tuple[int, ...]:
    """The 16 `svn` values of a component list (read directly: this is the hot loop)."""
    items = doc.obj.get(key)
    try:
        svns = tuple(item["svn"] for item in items)  # type: ignore[union-attr]
    except (TypeError, KeyError):
        svns = ()
    if len(svns) != 16 or not all(type(v) is int and v >= 0 for v in svns):
        raise ParseError(doc.structure, f"{doc.path}.{key}", None,
                         "expected 16 components with a non-negative integer `svn`")
    return svns


def _platform_level(doc: _Doc) -> TcbLevel:
    tcb = doc.child("tcb")
    return TcbLevel(sgx_components=_components(tcb, "sgxtcbcomponents"), pce_svn=tcb.int("pcesvn"),
                    tdx_components=_components(tcb, "tdxtcbcomponents"),
                    tcb_date=doc.date("tcbDate"), status=doc.status("tcbStatus"),
                    advisory_ids=doc.strings("advisoryIDs"))


def _module(doc: _Doc, with_id: bool) -> ModuleIdentity:
    return ModuleIdentity(
        id=doc.str("id") if with_id else "", mrsigner=doc.hex("mrsigner", 48),
        attributes=doc.hex("attributes", 8), attributes_mask=doc.hex("attributesMask", 8),
        tcb_levels=_isv_levels(doc) if with_id else ())


def _canonical_key(level: TcbLevel) -> tuple:
    return (level.sgx_components, level.pce_svn, level.tdx_components)


def parse_tcb_info(data: bytes) -> TcbInfo:
    """Parse the signed `tcbInfo` object of a TDX TCB info v3 document."""
    obj = _loads(data, S_TCB_INFO)
    return _fast_tcb_info(obj) or _tcb_info(_Doc(obj, S_TCB_INFO, ""))


def _tcb_info(doc: _Doc) -> TcbInfo:
    """The checked parse, which names the first bad item."""
    if doc.str("id") != "TDX":
        raise ParseError(S_TCB_INFO, "id", None, f"{doc.str('id')[:20]!r}; expected 'TDX'")
    if doc.int("version") != 3:
        raise ParseError(S_TCB_INFO, "version", None, f"{doc.int('version')}; expected 3")
    levels = [_platform_level(lv) for lv in doc.children("tcbLevels")]
    return TcbInfo(
        id="TDX", version=3, issue_date=doc.date("issueDate"), next_update=doc.date("nextUpdate"),
        fmspc=doc.hex("fmspc", 6), pce_id=doc.hex("pceId", 2), tcb_type=doc.int("tcbType"),
        tcb_evaluation_data_number=doc.int("tcbEvaluationDataNumber"),
        tdx_module=_module(doc.child("tdxModule"), with_id=False),
        module_identities=tuple(_module(m, with_id=True)
                                for m in doc.children("tdxModuleIdentities", optional=True)),
        tcb_levels=tuple(sorted(levels, key=_canonical_key, reverse=True)))


def parse_qe_identity(data: bytes) -> QeIdentity:
    """Parse the signed `enclaveIdentity` object of a TD QE identity v2 document."""
    obj = _loads(data, S_QE_IDENTITY)
    return _fast_qe_identity(obj) or _qe_identity(_Doc(obj, S_QE_IDENTITY, ""))


def _qe_identity(doc: _Doc) -> QeIdentity:
    """The checked parse, which names the first bad item."""
    if doc.str("id") != "TD_QE":
        raise ParseError(S_QE_IDENTITY, "id", None, f"{doc.str('id')[:20]!r}; expected 'TD_QE'")
    if doc.int("version") not in (2, 3):
        raise ParseError(S_QE_IDENTITY, "version", None, f"{doc.int('version')}; expected 2")
    return QeIdentity(
        id="TD_QE", version=doc.int("version"), issue_date=doc.date("issueDate"),
        next_update=doc.date("nextUpdate"),
        tcb_evaluation_data_number=doc.int("tcbEvaluationDataNumber"),
        miscselect=int.from_bytes(doc.hex("miscselect", 4), "big"),
        miscselect_mask=int.from_bytes(doc.hex("miscselectMask", 4), "big"),
        attributes=doc.hex("attributes", 16), attributes_mask=doc.hex("attributesMask", 16),
        mrsigner=doc.hex("mrsigner", 32), isvprodid=doc.int("isvprodid"),
        tcb_levels=_isv_levels(doc))


# ---------------------------------------------------------------------------- fast path
#
# Collateral that is well formed (all of Intel's) is read by the functions below,
# which look at each value once and build the same objects as the checked parse.
# They accept a subset of what the checked parse accepts: anything unexpected
# returns None and the checked parse runs instead (and names the bad item).

class _Reject(Exception):
    pass


def _nn_int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise _Reject
    return value


def _hex(value: Any, size: int) -> bytes:
    if type(value) is not str or len(value) != 2 * size:
        raise _Reject
    raw = bytes.fromhex(value)    # ValueError: rejected by the caller
    if len(raw) != size:          # fromhex skips whitespace
        raise _Reject
    return raw


def _date(value: Any) -> datetime:
    if type(value) is not str:
        raise _Reject
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise _Reject
    return parsed if parsed.tzinfo is timezone.utc else parsed.astimezone(timezone.utc)


def _status(value: Any) -> TcbStatus:
    status = _STATUSES.get(value) if type(value) is str else None
    if status is None:
        raise _Reject
    return status


def _advisories(level: dict) -> tuple[str, ...]:
    items = level.get("advisoryIDs", ())
    if items == ():
        return ()
    if type(items) is not list or not all(type(i) is str for i in items):
        raise _Reject
    return tuple(items)


def _svns(items: Any) -> tuple[int, ...]:
    if type(items) is not list or len(items) != 16:
        raise _Reject
    svns = tuple(item["svn"] for item in items)
    for v in svns:
        if type(v) is not int or v < 0:
            raise _Reject
    return svns


def _fast_isv_levels(items: Any) -> tuple[IsvTcbLevel, ...]:
    if type(items) is not list:
        raise _Reject
    levels = []
    for lv in items:
        if type(lv) is not dict or type(lv["tcb"]) is not dict:
            raise _Reject
        levels.append(IsvTcbLevel(isvsvn=_nn_int(lv["tcb"]["isvsvn"]), tcb_date=_date(lv["tcbDate"]),
                                  status=_status(lv["tcbStatus"]), advisory_ids=_advisories(lv)))
    levels.sort(key=_isvsvn, reverse=True)
    return tuple(levels)


def _isvsvn(level: IsvTcbLevel) -> int:
    return level.isvsvn


def _fast_module(m: Any, with_id: bool) -> ModuleIdentity:
    if type(m) is not dict:
        raise _Reject
    ident = m["id"] if with_id else ""
    if type(ident) is not str:
        raise _Reject
    return ModuleIdentity(id=ident, mrsigner=_hex(m["mrsigner"], 48), attributes=_hex(m["attributes"], 8),
                          attributes_mask=_hex(m["attributesMask"], 8),
                          tcb_levels=_fast_isv_levels(m["tcbLevels"]) if with_id else ())


def _fast_tcb_info(obj: Any) -> TcbInfo | None:
    try:
        if type(obj) is not dict or obj["id"] != "TDX" or type(obj["version"]) is not int \
                or obj["version"] != 3:
            return None
        raw_levels = obj["tcbLevels"]
        if type(raw_levels) is not list:
            return None
        levels = []
        for lv in raw_levels:
            if type(lv) is not dict:
                return None
            tcb = lv["tcb"]
            if type(tcb) is not dict:
                return None
            levels.append(TcbLevel(sgx_components=_svns(tcb["sgxtcbcomponents"]), pce_svn=_nn_int(tcb["pcesvn"]),
                                   tdx_components=_svns(tcb["tdxtcbcomponents"]), tcb_date=_date(lv["tcbDate"]),
                                   status=_status(lv["tcbStatus"]), advisory_ids=_advisories(lv)))
        levels.sort(key=_canonical_key, reverse=True)
        modules = obj.get("tdxModuleIdentities", ())
        if modules != () and type(modules) is not list:
            return None
        return TcbInfo(
            id="TDX", version=3, issue_date=_date(obj["issueDate"]), next_update=_date(obj["nextUpdate"]),
            fmspc=_hex(obj["fmspc"], 6), pce_id=_hex(obj["pceId"], 2), tcb_type=_nn_int(obj["tcbType"]),
            tcb_evaluation_data_number=_nn_int(obj["tcbEvaluationDataNumber"]),
            tdx_module=_fast_module(obj["tdxModule"], with_id=False),
            module_identities=tuple(_fast_module(m, with_id=True) for m in modules),
            tcb_levels=tuple(levels))
    except (_Reject, KeyError, TypeError, ValueError, OverflowError):
        return None


def _fast_qe_identity(obj: Any) -> QeIdentity | None:
    try:
        if type(obj) is not dict or obj["id"] != "TD_QE" or type(obj["version"]) is not int \
                or obj["version"] not in (2, 3):
            return None
        return QeIdentity(
            id="TD_QE", version=obj["version"], issue_date=_date(obj["issueDate"]),
            next_update=_date(obj["nextUpdate"]),
            tcb_evaluation_data_number=_nn_int(obj["tcbEvaluationDataNumber"]),
            miscselect=int.from_bytes(_hex(obj["miscselect"], 4), "big"),
            miscselect_mask=int.from_bytes(_hex(obj["miscselectMask"], 4), "big"),
            attributes=_hex(obj["attributes"], 16), attributes_mask=_hex(obj["attributesMask"], 16),
            mrsigner=_hex(obj["mrsigner"], 32), isvprodid=_nn_int(obj["isvprodid"]),
            tcb_levels=_fast_isv_levels(obj["tcbLevels"]))
    except (_Reject, KeyError, TypeError, ValueError, OverflowError):
        return None
