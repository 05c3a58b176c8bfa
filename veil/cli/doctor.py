"""`veil doctor`: inside a VM, report what the TEE and GPUs offer, with advice for what is missing.

Exit codes: 0 a TEE interface is usable, 1 none is (not a confidential VM), 2 bad usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, console, err_console, print_json

STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "info": "dim"}


def run(
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    root: Annotated[Path, typer.Option(help="Filesystem root to inspect (tests, chroots).")] = Path("/"),
    gpus: Annotated[bool, typer.Option(help="Query NVIDIA GPUs through NVML (pynvml) if installed.")] = True,
) -> None:
    """Report what this VM's TEE and GPUs offer (configfs-tsm, TDX/SNP devices, GPU CC mode, kernel,
    huge pages, NUMA, I/O schedulers), with advice for whatever is missing or mistuned."""
    from enclave.doctor import EMULATED_HINT, diagnose

    if not root.is_dir():
        err_console.print(f"[bold red]error:[/] --root {root} is not a directory", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    report = diagnose(root, gpus=gpus)
    if json_out:
        print_json(report.to_dict())
    else:
        table = Table(title="veil doctor", show_lines=False)
        table.add_column("check")
        table.add_column("status")
        table.add_column("value", overflow="fold")
        table.add_column("advice", overflow="fold")
        for f in report.findings:
            style = STYLE.get(f.status, "")
            table.add_row(f.name, f"[{style}]{f.status}[/]", f.value, f.advice)
        console.print(table)
        if report.tee_usable:
            console.print(f"[green]TEE usable[/]: {(report.tee or 'unknown').upper()} via {report.interface}")
        else:
            console.print(f"[bold red]no TEE[/]: {EMULATED_HINT}", highlight=False)
    raise typer.Exit(EXIT_OK if report.tee_usable else EXIT_FAILED)
