"""`veil broker policy …`: the release policies stored in the broker, with their versions (list, show)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from .admin_calls import KEY, URL, Broker, Key, admin_errors, client
from .output import console, err_console, print_json

app = typer.Typer(help="Release policies stored in the broker: list, show.", no_args_is_help=True)
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _grouped(rows: list[dict]) -> list[dict]:
    """The broker's policy versions (name, version order) as one entry per policy, newest version last."""
    policies: dict[str, dict] = {}
    for row in rows:
        entry = policies.setdefault(row["name"], {"name": row["name"], "versions": []})
        entry["versions"].append({k: row[k] for k in ("version", "digest", "created_at")})
    for entry in policies.values():
        entry["versions"].sort(key=lambda v: v["version"])
        entry["latest"] = entry["versions"][-1]["version"]
    return list(policies.values())


@app.command("list")
def list_(broker: Broker = URL, key: Key = KEY, json_out: Json = False) -> None:
    """Your tenant's policies: newest version, how many versions, the newest's digest (policy-admin or auditor)."""
    with admin_errors(broker):
        policies = _grouped(client(broker, key).list_policies())
    if json_out:
        print_json({"policies": policies})
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("name", "latest", "versions", "digest", "pushed"):
        table.add_column(column, overflow="fold")
    for policy in policies:
        newest = policy["versions"][-1]
        table.add_row(policy["name"], str(policy["latest"]), str(len(policy["versions"])), newest["digest"],
                      newest["created_at"][:19].replace("T", " "))
    if policies:
        console.print(table)
    console.print(f"{len(policies)} polic{'ies' if len(policies) != 1 else 'y'}", highlight=False)


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="Policy name.")],
         version: Annotated[Optional[int], typer.Option("--version", min=1, help="This version (default: the "
                                                        "newest).")] = None,
         broker: Broker = URL, key: Key = KEY, json_out: Json = False) -> None:
    """Print a stored policy's document as pushed (its version and digest go to stderr)."""
    with admin_errors(broker):
        policy = client(broker, key).get_policy(name, version)
    if json_out:
        print_json(policy)
        return
    refs = "; with the reference sets pushed beside it (--json shows them)" if policy.get("references") else ""
    err_console.print(f"policy {policy['name']} version {policy['version']}, digest {policy['digest']}{refs}",
                      highlight=False)
    text = policy["text"]
    typer.echo(text if text.endswith("\n") else text + "\n", nl=False)
