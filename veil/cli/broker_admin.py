"""`veil broker admin …`: a tenant's admin keys, through the broker's admin API (keygen, add, list, remove).

Roles are the broker's own: policy-admin (push policies), key-admin (create, rotate, delete keys), auditor
(read keys, policies, admins and the log) and operator (register and remove admin keys, sign checkpoints).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from .admin_calls import KEY, URL, Broker, Key, admin_errors, client
from .confirm import Yes, ask, must_ask
from .output import console, fail, print_json

app = typer.Typer(help="A tenant's admin keys: keygen, add, list, remove.", no_args_is_help=True)


class Role(StrEnum):
    policy_admin = "policy-admin"
    key_admin = "key-admin"
    auditor = "auditor"
    operator = "operator"


Tenant = Annotated[Optional[str], typer.Option("--tenant", help="The tenant meant; the broker refuses any but "
                                               "your admin key's own.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _roles(admin: dict) -> str:
    return ", ".join(admin["roles"])


@app.command("keygen")
def keygen(out: Annotated[Path, typer.Option("--out", help="Where to write the new private key (created "
                                             "0600); the public key goes to OUT.pub.jwk.")]) -> None:
    """Make an admin key pair on this machine; give only the .pub.jwk file to your tenant's operator."""
    from keybroker.admin.keys import generate, write_public_jwk

    public = out.with_name(out.name + ".pub.jwk")
    for path in (out, public):
        if path.exists():
            fail(f"{path} already exists; choose another --out")
    try:
        jwk = generate(out)
        write_public_jwk(public, jwk)
    except OSError as exc:
        fail(f"cannot write the key pair at {out} ({exc.strerror})")
    console.print(f"private key: {out} (keep it to yourself)\npublic key:  {public} (give it to your tenant's "
                  f"operator: veil broker admin add NAME --role ROLE --public-key {public})", highlight=False)


def _public_jwk(public_key: Path | None, new_key: Path | None) -> dict:
    from keybroker.admin.keys import generate, read_public_jwk

    if (public_key is None) == (new_key is None):
        fail("give exactly one of --public-key (the new admin's public key) and --new-key (make a key pair here)")
    try:
        if public_key is not None:
            return read_public_jwk(public_key)
        return generate(new_key)
    except FileExistsError:
        fail(f"{new_key} already exists; choose another --new-key")
    except (OSError, ValueError) as exc:
        fail(str(exc) if isinstance(exc, ValueError) else f"cannot read or write {exc.filename} ({exc.strerror})")


@app.command("add")
def add(name: Annotated[str, typer.Argument(help="Who the key is for (a person or a service).")],
        role: Annotated[list[Role], typer.Option("--role", metavar="ROLE", help="A role to grant: policy-admin, "
                                                 "key-admin, auditor or operator (repeat for more).")],
        public_key: Annotated[Optional[Path], typer.Option("--public-key", help="The new admin's public key: "
                                                           "a .pub.jwk from `keygen`, or PEM.")] = None,
        new_key: Annotated[Optional[Path], typer.Option("--new-key", help="Instead, make a key pair here and "
                                                        "write its private key to this file (0600).")] = None,
        tenant: Tenant = None, broker: Broker = URL, key: Key = KEY, json_out: Json = False) -> None:
    """Register another admin key in your tenant (needs the operator role)."""
    jwk = _public_jwk(public_key, new_key)
    with admin_errors(broker):
        added = client(broker, key).add_admin(name, [r.value for r in role], jwk, tenant=tenant)
    if json_out:
        print_json(added | ({"private_key_file": str(new_key)} if new_key else {}))
        return
    console.print(f"added admin {added['name']} ({added['kid']}) to tenant {added['tenant']} with roles "
                  f"{_roles(added)}", highlight=False)
    if new_key is not None:
        console.print(f"its private key is in {new_key}: hand it to {name} over a safe channel", highlight=False)


@app.command("list")
def list_(tenant: Tenant = None, broker: Broker = URL, key: Key = KEY, json_out: Json = False) -> None:
    """The admin keys of your tenant and their roles (needs operator or auditor)."""
    with admin_errors(broker):
        admins = client(broker, key).list_admins(tenant=tenant)
    if json_out:
        print_json({"tenant": tenant or (admins[0]["tenant"] if admins else None), "admins": admins})
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("name", "kid", "roles", "created"):
        table.add_column(column, overflow="fold")
    for admin in admins:
        table.add_row(admin["name"], admin["kid"], _roles(admin), admin["created_at"][:19].replace("T", " "))
    console.print(table)
    console.print(f"{len(admins)} admin key{'s' if len(admins) != 1 else ''}", highlight=False)


def _find(admins: list[dict], who: str) -> dict:
    """The admin named by kid, or by a name no other admin of the tenant has."""
    by_kid = [a for a in admins if a["kid"] == who]
    by_name = [a for a in admins if a["name"] == who]
    if by_kid or len(by_name) == 1:
        return (by_kid or by_name)[0]
    if by_name:
        fail(f"{len(by_name)} admin keys are named {who!r}; name the one to remove by its kid",
             hint="`veil broker admin list` shows the kids")
    fail(f"no admin key {who!r} in your tenant", hint="`veil broker admin list` shows them")


@app.command("remove")
def remove(who: Annotated[str, typer.Argument(help="The admin key to remove: its kid, or its name if unique (put -- before a kid that begins with -).")],
           tenant: Tenant = None, broker: Broker = URL, key: Key = KEY, yes: Yes = False,
           json_out: Json = False) -> None:
    """Remove an admin key from your tenant (needs operator; the tenant's last operator stays)."""
    what = f"remove admin key {who}"
    asking = must_ask(yes, what)
    with admin_errors(broker):
        admin = client(broker, key)
        found = _find(admin.list_admins(tenant=tenant), who)
        if asking:
            ask(f"Remove admin {found['name']} ({found['kid']}, roles {_roles(found)}) from tenant "
                f"{found['tenant']}? Its key can no longer call the broker", what)
        removed = admin.remove_admin(found["kid"], tenant=tenant)
    if json_out:
        print_json(removed)
    else:
        console.print(f"removed admin {removed['name']} ({removed['kid']}, roles {_roles(removed)}) from tenant "
                      f"{removed['tenant']}", highlight=False)
