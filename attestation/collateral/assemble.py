"""Combine loose Intel collateral pieces into complete TDX collateral sets.

Each nine-field JSON file is a set of its own, kept as it is. Each loose TCB
info becomes a set too; the other six items it needs are taken from the loose
files first and, where none is given, from the nine-field files (their QE
identity and CRLs serve any platform, as Intel's do). An item is chosen only
if its own validity window overlaps the TCB info's; an issuer chain only if
its certificates are valid when the item it signs was issued. Two different
candidates for the same item, or none, are an error that names the files, as
is a loose file that no set uses. Verifiers still check everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..errors import CollateralError
from . import TdxCollateral
from .pieces import Piece
from .windows import Window
from .windows import cert_window as _cert_window
from .windows import crl_window as _crl_window
from .windows import json_window as _json_window


@dataclass(frozen=True, slots=True)
class AssembledSet:
    """A complete set, where its parts came from, and when all of them are valid at once."""

    collateral: TdxCollateral
    fmspc: str
    ca: str
    window: Window
    origins: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Part:
    data: bytes
    origin: str
    window: Window
    signature: bytes = b""
    chain: bytes = b""          # the issuer chain that came with it (nine-field files)
    ca: str = ""                # PCK CRLs: "platform" or "processor"


def _overlaps(a: Window, b: Window) -> bool:
    return a.not_before <= b.not_after and b.not_before <= a.not_after


def _valid_at(chain: _Part, at: datetime) -> bool:
    return chain.window.not_before <= at <= chain.window.not_after


def _one(what: str, candidates: Sequence[_Part], keep: Callable[[_Part], bool], hint: str) -> _Part:
    """The one distinct candidate that `keep` accepts."""
    kept: dict[bytes, _Part] = {}
    for part in candidates:
        if keep(part):
            kept.setdefault(part.data, part)
    if not kept:
        given = f" (given but outside its window: {', '.join(p.origin for p in candidates)})" if candidates else ""
        raise CollateralError(what, f"no usable file{given}", hint=hint)
    if len(kept) > 1:
        raise CollateralError(what, "more than one file fits: " + ", ".join(p.origin for p in kept.values()),
                              hint="import them in separate runs, or leave out the one you do not mean")
    return next(iter(kept.values()))


class _Pool:
    """Candidates for each item: loose files first, the nine-field files' parts where no loose one is given."""

    def __init__(self, pieces: Sequence[Piece]) -> None:
        loose = {kind: [p for p in pieces if p.kind == kind] for kind in
                 ("qe_identity", "pck_crl", "root_ca_crl", "tcb_signing_chain", "pck_ca_chain")}
        full = [p for p in pieces if p.kind == "collateral_json"]
        self.used: set[str] = set()
        self.qe = [_Part(p.signed, p.origin, p.window, p.signature) for p in loose["qe_identity"]] or [
            _Part(c.qe_identity, p.origin, _json_window(c.qe_identity), c.qe_identity_signature,
                  c.qe_identity_issuer_chain) for p in full if (c := p.full)]
        self.pck_crl = [_Part(p.data, p.origin, p.window, ca=p.ca or "") for p in loose["pck_crl"]] or [
            _Part(c.pck_crl, p.origin, _crl_window(c.pck_crl), ca=p.ca or "") for p in full if (c := p.full)]
        self.root_crl = [_Part(p.data, p.origin, p.window) for p in loose["root_ca_crl"]] or [
            _Part(c.root_ca_crl, p.origin, _crl_window(c.root_ca_crl)) for p in full if (c := p.full)]
        self.tcb_chain = [_Part(p.data, p.origin, p.window) for p in loose["tcb_signing_chain"]] or [
            _Part(c.tcb_info_issuer_chain, p.origin, _cert_window(c.tcb_info_issuer_chain))
            for p in full if (c := p.full)]
        self.pck_chain = {ca: [_Part(p.data, p.origin, p.window) for p in loose["pck_ca_chain"] if p.ca == ca] or [
            _Part(c.pck_crl_issuer_chain, p.origin, _cert_window(c.pck_crl_issuer_chain))
            for p in full if (c := p.full) and p.ca == ca] for ca in ("platform", "processor")}

    def take(self, part: _Part) -> _Part:
        self.used.add(part.origin)
        return part


def _loose_set(tcb: Piece, pool: _Pool) -> list[AssembledSet]:
    what = f"TDX collateral for FMSPC {tcb.fmspc} (TCB info {tcb.origin})"
    fits = lambda p: _overlaps(p.window, tcb.window)  # noqa: E731
    qe = pool.take(_one(f"{what}: QE identity", pool.qe, fits,
                        "add the QE identity body, or a nine-field JSON file of the same period"))
    root_crl = pool.take(_one(f"{what}: root CA CRL", pool.root_crl, fits,
                              "add the Intel SGX root CA CRL (DER or PEM)"))
    chain_hint = "add the TCB signing chain PEM file, i.e. the PCS TCB-Info-Issuer-Chain header"
    tcb_chain = pool.take(_one(f"{what}: TCB info issuer chain", pool.tcb_chain,
                               lambda c: _valid_at(c, tcb.window.not_before), chain_hint))
    qe_chain = pool.take(_one(f"{what}: QE identity issuer chain",
                              [_Part(qe.chain, qe.origin, _cert_window(qe.chain))] if qe.chain else pool.tcb_chain,
                              lambda c: _valid_at(c, qe.window.not_before), chain_hint))
    crls = [c for c in pool.pck_crl if fits(c)]
    if not crls:
        _one(f"{what}: PCK CRL", pool.pck_crl, fits, "add the PCK CRL of the platform CA (DER or PEM)")
    sets = []
    for ca in sorted({c.ca for c in crls}):
        crl = pool.take(_one(f"{what}: PCK CRL ({ca} CA)", [c for c in crls if c.ca == ca],
                             fits, "give one PCK CRL per CA"))
        pck_chain = pool.take(_one(f"{what}: PCK CRL issuer chain ({ca} CA)", pool.pck_chain[ca],
                                   lambda c: _valid_at(c, crl.window.not_before),
                                   f"add the PCK {ca} CA chain PEM file, i.e. the PCS SGX-PCK-CRL-Issuer-Chain header"))
        collateral = TdxCollateral(
            tcb_info=tcb.signed, tcb_info_signature=tcb.signature, tcb_info_issuer_chain=tcb_chain.data,
            qe_identity=qe.data, qe_identity_signature=qe.signature, qe_identity_issuer_chain=qe_chain.data,
            pck_crl=crl.data, pck_crl_issuer_chain=pck_chain.data, root_ca_crl=root_crl.data)
        parts = (tcb.window, qe.window, crl.window, root_crl.window)
        window = Window(max(w.not_before for w in parts), min(w.not_after for w in parts))
        origins = tuple(dict.fromkeys((tcb.origin, qe.origin, crl.origin, root_crl.origin, tcb_chain.origin,
                                       qe_chain.origin, pck_chain.origin)))
        sets.append(AssembledSet(collateral, tcb.fmspc or "", ca, window, origins))
    return sets


def assemble(pieces: Sequence[Piece]) -> list[AssembledSet]:
    """Complete sets from recognised pieces, in input order. Raises CollateralError when one cannot be made."""
    pool = _Pool(pieces)
    sets: list[AssembledSet] = []
    for piece in pieces:
        if piece.kind == "collateral_json" and piece.full is not None:
            pool.used.add(piece.origin)
            sets.append(AssembledSet(piece.full, piece.fmspc or "", piece.ca or "platform", piece.window,
                                     (piece.origin,)))
        elif piece.kind == "tcb_info":
            pool.used.add(piece.origin)
            sets.extend(_loose_set(piece, pool))
    unused = [p.origin for p in pieces if p.origin not in pool.used]
    if unused:
        raise CollateralError(", ".join(unused), "not used by any collateral set",
                              hint="add the TCB info it belongs with, or leave the file out")
    if not sets:
        raise CollateralError("collateral files", "hold no TDX TCB info",
                              hint="give at least one TCB info body or nine-field collateral JSON file")
    return sets
