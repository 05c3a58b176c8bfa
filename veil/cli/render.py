"""Human-readable rendering of verification results and decoded evidence."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.tree import Tree

from attestation.verify import VerificationResult

from .output import console

_KEY_FIELDS = {
    "tdx": ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mrconfigid", "mrowner", "report_data",
            "mrseam", "tee_tcb_svn", "fmspc", "qe_isvsvn"),
    "snp": ("product", "version", "measurement", "host_data", "report_data", "vmpl", "chip_id",
            "current_version", "id_key_digest"),
}


def verification(result: VerificationResult, *, revocation_skipped: bool = False) -> None:
    claims = result.claims
    if result.verified and claims is not None:
        console.print(f"[bold green]verified[/] {result.tee.upper()} evidence: anchor "
                      f"[bold]{claims.anchor.name}[/] ({claims.anchor.kind}), TCB status "
                      f"[bold]{claims.tcb_status.value}[/]", highlight=False)
    else:
        console.print(f"[bold red]NOT verified[/] {result.tee.upper()} evidence", highlight=False)
    for failure in result.errors:
        line = f"  [red]✗ {failure.code}[/]: {failure.message}"
        if failure.expected is not None or failure.actual is not None:
            line += f" [dim](expected {failure.expected}, actual {failure.actual})[/]"
        console.print(line, highlight=False)
    if claims is None:
        return
    if claims.advisory_ids:
        console.print(f"  advisories: {', '.join(claims.advisory_ids)}", highlight=False)
    if claims.collateral_window:
        w = claims.collateral_window
        console.print(f"  collateral valid {w.not_before.isoformat()} .. {w.not_after.isoformat()}",
                      highlight=False)
    for warning in claims.warnings:
        console.print(f"  [yellow]! {warning}[/]", highlight=False)
    if revocation_skipped:
        console.print("  [yellow]! revocation was not checked (--no-revocation)[/]", highlight=False)
    body = claims.tdx if claims.tee == "tdx" else claims.snp
    table = Table(show_header=False, box=None, pad_edge=False)
    fields = body.model_dump(mode="json") if body else {}
    table.add_row("debug", str(claims.debug))
    for name in _KEY_FIELDS[claims.tee]:
        if name in fields:
            table.add_row(name, str(fields[name]))
    console.print(table)


def inspection(tee: str, document: dict[str, Any]) -> None:
    tree = Tree(f"[bold]{tee.upper()}[/] evidence (decoded, not verified)")
    _add(tree, document)
    console.print(tree)


def _add(node: Tree, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                _add(node.add(f"[bold]{key}[/]"), item)
            else:
                node.add(f"[bold]{key}[/]: {item}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)):
                _add(node.add(f"[{index}]"), item)
            else:
                node.add(f"[{index}] {item}")
    else:
        node.add(str(value))
