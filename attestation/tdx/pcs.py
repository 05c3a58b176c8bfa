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


def _load(data: bytes, structure: str) -> _Doc:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(structure, "(document)", None, f"not valid JSON: {exc}") from None
    return _Doc(obj, structure, "")


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
    doc = _load(data, S_TCB_INFO)
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
    doc = _load(data, S_QE_IDENTITY)
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
