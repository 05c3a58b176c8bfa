"""`veil key delete`: says what it is about to delete, asks (or takes --yes), deletes, says what it deleted."""

from __future__ import annotations

from pathlib import Path

from .admin_calls import admin_errors, client
from .confirm import ask, must_ask
from .output import console, fail, print_json


def _versions(numbers: list[int]) -> str:
    return f"version {numbers[0]}" if len(numbers) == 1 else f"versions {', '.join(map(str, numbers))}"


def _describe(admin, path: str) -> str:
    """`path` as the broker lists it (versions, bound policy), or exit 2 if the caller's tenant has none."""
    found = next((k for k in admin.list_keys() if k["path"] == path), None)
    if found is None:
        fail(f"no key {path} in your tenant; nothing deleted", hint="`veil key list` shows your keys")
    policy = f", bound to policy {found['policy']}" if found.get("policy") else ""
    return f"{path} ({_versions(found['versions'])}{policy})"


def delete_key(broker: str, key: Path, path: str, *, yes: bool, json_out: bool) -> None:
    what = f"delete key {path}"
    asking = must_ask(yes, what)
    with admin_errors(broker):
        admin = client(broker, key)
        if asking:
            ask(f"Delete key {_describe(admin, path)} from {broker}? Enclaves will no longer get it, and this "
                f"cannot be undone", what)
        result = admin.delete_key(path)
    if json_out:
        print_json(result)
    else:
        console.print(f"deleted key {result['path']}: {_versions(result['deleted_versions'])}", highlight=False)
