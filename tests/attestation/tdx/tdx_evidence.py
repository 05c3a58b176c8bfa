"""Test helper: TDX quotes and Intel collateral from corpus/evidence (see corpus/README.md).

Two collateral formats occur there: dcap-qvl's QuoteCollateralV3 JSON (the
signed documents as raw JSON strings, signatures hex, CRLs hex DER, chains PEM)
and PCS response bodies `{"tcbInfo": {...}, "signature": "hex"}`, whose signed
bytes are cut out of the file text exactly (never re-serialized).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from attestation.collateral import TdxCollateral


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def inner_object(text: bytes, key: str) -> bytes:
    """The exact bytes of the JSON object that is the value of top-level `key`."""
    marker = f'"{key}"'.encode()
    start = text.index(b"{", text.index(marker) + len(marker))
    depth, in_string, escaped = 0, False, False
    for pos in range(start, len(text)):
        ch = text[pos:pos + 1]
        if in_string:
            if escaped:
                escaped = False
            elif ch == b"\\":
                escaped = True
            elif ch == b'"':
                in_string = False
        elif ch == b'"':
            in_string = True
        elif ch == b"{":
            depth += 1
        elif ch == b"}":
            depth -= 1
            if depth == 0:
                return text[start:pos + 1]
    raise ValueError(f"unbalanced object for {key}")


def pcs_body(path: Path, key: str) -> tuple[bytes, bytes]:
    """(signed bytes, raw signature) of a PCS response body file."""
    text = path.read_bytes()
    signed = inner_object(text, key)
    assert json.loads(signed) == json.loads(text)[key]
    return signed, bytes.fromhex(json.loads(text)["signature"])


def dcapqvl_set(path: Path) -> TdxCollateral:
    d = json.loads(path.read_text())
    return TdxCollateral(
        pck_crl_issuer_chain=d["pck_crl_issuer_chain"].encode(),
        root_ca_crl=bytes.fromhex(d["root_ca_crl"]), pck_crl=bytes.fromhex(d["pck_crl"]),
        tcb_info_issuer_chain=d["tcb_info_issuer_chain"].encode(),
        tcb_info=d["tcb_info"].encode(), tcb_info_signature=bytes.fromhex(d["tcb_info_signature"]),
        qe_identity_issuer_chain=d["qe_identity_issuer_chain"].encode(),
        qe_identity=d["qe_identity"].encode(),
        qe_identity_signature=bytes.fromhex(d["qe_identity_signature"]))


def with_tcb_info(base: TdxCollateral, tcb_info_file: Path, issuer_chain: Path) -> TdxCollateral:
    """`base` (QE identity, CRLs) with a TCB info taken from a PCS response body."""
    signed, signature = pcs_body(tcb_info_file, "tcbInfo")
    return dataclasses.replace(base, tcb_info=signed, tcb_info_signature=signature,
                               tcb_info_issuer_chain=issuer_chain.read_bytes())


@dataclass(frozen=True)
class Sets:
    """Every collateral combination the evidence README names."""

    root: Path

    @property
    def col(self) -> Path:
        return self.root / "tdx" / "collateral"

    @property
    def intel(self) -> Path:
        return self.root / "roots" / "intel"

    def dcapqvl_2025_06(self) -> TdxCollateral:
        return dcapqvl_set(self.col / "dcapqvl_2025-06_b0c06f000000.json")

    def dcapqvl_2025_09(self) -> TdxCollateral:
        return dcapqvl_set(self.col / "dcapqvl_2025-09_20a06f000000.json")

    def dcapqvl_2026_02(self) -> TdxCollateral:
        return dcapqvl_set(self.col / "dcapqvl_2026-02_90c06f000000.json")

    def teekit_2025_09(self, fmspc: str) -> TdxCollateral:
        return with_tcb_info(self.dcapqvl_2025_09(), self.col / "teekit_2025-09" / f"tcb_info_{fmspc}.json",
                             self.intel / "tcb_signing_chain_2025-2032.pem")

    def gotdx_2026_02(self) -> TdxCollateral:
        return with_tcb_info(self.dcapqvl_2026_02(), self.col / "gotdx_2026-02_90c06f000000" / "tcb_info.json",
                             self.intel / "tcb_signing_chain_2025-2032.pem")

    def gotdx_2023_06(self) -> TdxCollateral:
        d = self.col / "gotdx_2023-06_50806f000000"
        tcb, tcb_sig = pcs_body(d / "tcb_info.json", "tcbInfo")
        qe, qe_sig = pcs_body(d / "qe_identity.json", "enclaveIdentity")
        signing = (self.intel / "tcb_signing_chain_2018-2025.pem").read_bytes()
        return TdxCollateral(
            pck_crl_issuer_chain=(self.intel / "pck_platform_ca_chain.pem").read_bytes(),
            root_ca_crl=(d / "root_ca_crl.der").read_bytes(),
            pck_crl=(d / "pck_crl_platform.der").read_bytes(),
            tcb_info_issuer_chain=signing, tcb_info=tcb, tcb_info_signature=tcb_sig,
            qe_identity_issuer_chain=signing, qe_identity=qe, qe_identity_signature=qe_sig)

    def named(self, name: str) -> TdxCollateral:
        """A set by the short name used in the test tables, e.g. "teekit_2025_09:00806f050000"."""
        method, _, arg = name.partition(":")
        return getattr(self, method)(arg) if arg else getattr(self, method)()
