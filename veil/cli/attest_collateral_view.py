"""What `veil attest collateral status` and `import` print: item rows, text and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from attestation.collateral import CollateralSource, StaticCollateral, TdxCollateral
from attestation.collateral.assemble import AssembledSet
from attestation.collateral.bundle import OfflineBundle, tdx_keys
from attestation.collateral.intel import fmspc_of, pck_crl_ca
from attestation.collateral.manifest import describe
from attestation.collateral.pieces import Piece
from attestation.collateral.windows import Window, cert_window, crl_window, format_utc, json_window

from .output import console

Row = dict[str, object]


def _state(window: tuple[datetime | None, datetime | None], at: datetime) -> str:
    not_before, not_after = window
    if not_before is not None and at < not_before:
        return "not yet valid"
    if not_after is not None and at > not_after:
        return "expired"
    return "current"


def _row(source: str, kind: str, keys: dict[str, str], not_before: datetime | None,
         not_after: datetime | None, at: datetime) -> Row:
    return {"source": source, "kind": kind, "keys": keys, "item": describe(kind, keys),
            "not_before": not_before and format_utc(not_before), "not_after": not_after and format_utc(not_after),
            "state": _state((not_before, not_after), at)}


def _set_windows(c: TdxCollateral) -> dict[str, Window]:
    return {"tcb_info": json_window(c.tcb_info), "qe_identity": json_window(c.qe_identity),
            "pck_crl": crl_window(c.pck_crl), "root_ca_crl": crl_window(c.root_ca_crl),
            "tcb_info_issuer_chain": cert_window(c.tcb_info_issuer_chain),
            "qe_identity_issuer_chain": cert_window(c.qe_identity_issuer_chain),
            "pck_crl_issuer_chain": cert_window(c.pck_crl_issuer_chain)}


def rows_of(where: str, source: CollateralSource, at: datetime) -> list[Row]:
    """One row per item of a bundle, or of each TDX set of loose collateral."""
    if isinstance(source, OfflineBundle):
        return [_row(where, i.kind, dict(i.keys), i.not_before, i.not_after, at) for i in source.items]
    rows: list[Row] = []
    if isinstance(source, StaticCollateral):
        for c in source.tdx_sets:
            windows = _set_windows(c)
            for name, (kind, keys) in tdx_keys(fmspc_of(c), pck_crl_ca(c.pck_crl)).items():
                rows.append(_row(where, kind, keys, windows[name].not_before, windows[name].not_after, at))
    return rows


def rows_document(at: datetime, rows: Sequence[Row], stale: int) -> dict:
    return {"at": format_utc(at), "current": stale == 0, "items": list(rows), "stale": stale}


def print_rows(title: str, rows: Sequence[Row]) -> None:
    from rich.table import Table

    several = len({row["source"] for row in rows}) > 1
    table = Table(title=title)
    table.add_column("item", overflow="fold", ratio=1)
    for column in ("valid from", "valid until"):
        table.add_column(column, no_wrap=True)
    table.add_column("state", no_wrap=True)
    if several:
        table.add_column("source", overflow="fold")
    for row in rows:
        color = "green" if row["state"] == "current" else "red"
        cells = [str(row["item"]), str(row["not_before"] or "-"), str(row["not_after"] or "-"),
                 f"[{color}]{row['state']}[/]"]
        table.add_row(*cells, *([str(row["source"])] if several else []))
    console.print(table)


def _window(w: Window) -> dict[str, str]:
    return {"not_before": format_utc(w.not_before), "not_after": format_utc(w.not_after)}


def import_document(out: Path, pieces: Sequence[Piece], sets: Sequence[AssembledSet]) -> dict:
    return {
        "bundle": str(out),
        "files": [{"file": p.origin, "kind": p.kind, "fmspc": p.fmspc, "ca": p.ca, **_window(p.window)}
                  for p in pieces],
        "sets": [{"fmspc": s.fmspc, "pck_ca": s.ca, "files": list(s.origins), **_window(s.window)}
                 for s in sets],
    }


def print_import(out: Path, pieces: Sequence[Piece], sets: Sequence[AssembledSet]) -> None:
    for p in pieces:
        extra = f" FMSPC {p.fmspc}" if p.fmspc else (f" ({p.ca} CA)" if p.ca else "")
        console.print(f"read {p.origin}: {p.label}{extra}, valid {format_utc(p.window.not_before)} .. "
                      f"{format_utc(p.window.not_after)}", highlight=False, markup=False, soft_wrap=True)
    for s in sets:
        console.print(f"imported TDX collateral for FMSPC {s.fmspc} ({s.ca} PCK CA): all parts valid "
                      f"{format_utc(s.window.not_before)} .. {format_utc(s.window.not_after)}",
                      highlight=False, markup=False, soft_wrap=True)
    console.print(f"wrote {len(sets)} collateral set(s) to {out}", highlight=False, markup=False, soft_wrap=True)
