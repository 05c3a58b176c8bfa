"""`veil key …`: manage the broker's keys (resources) through its admin API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .confirm import Yes
from .output import EXIT_FAILED, fail, print_json

app = typer.Typer(help="Keys held by the broker: create, import, rotate, list, delete.", no_args_is_help=True)
Broker = Annotated[str, typer.Option(help="Broker admin URL.")]
Key = Annotated[Path, typer.Option(help="Admin private key file.")]
PathArg = Annotated[str, typer.Argument(help="Resource path repo/type/tag.")]
URL, KEY = "http://127.0.0.1:8080", Path("admin.key")


def _call(broker: str, key: Path, method: str, *args, **kwargs) -> None:
    from keybroker.admin.client import AdminClient
    from keybroker.client import KbsError

    try:
        result = getattr(AdminClient(broker, key), method)(*args, **kwargs)
    except KbsError as exc:
        fail(f"{exc.code}: {exc.detail}", code=EXIT_FAILED)
    except (OSError, ValueError) as exc:
        fail(str(exc))
    if result is not None:
        print_json(result)


@app.command("create")
def create(path: PathArg, broker: Broker = URL, key: Key = KEY,
           size: Annotated[int, typer.Option(help="Key size in bytes.")] = 32,
           policy: Annotated[Optional[str], typer.Option(help="Bind this policy.")] = None) -> None:
    """Generate a new random key inside the broker."""
    _call(broker, key, "create_key", path, size=size, policy=policy)


@app.command("import")
def import_(path: PathArg, value_file: Annotated[Path, typer.Argument(help="File holding the key bytes.")],
            broker: Broker = URL, key: Key = KEY,
            policy: Annotated[Optional[str], typer.Option(help="Bind this policy.")] = None) -> None:
    """Import an existing key (e.g. a model's DEK) from a file."""
    _call(broker, key, "create_key", path, value=value_file.read_bytes(), policy=policy)


@app.command("rotate")
def rotate(path: PathArg, broker: Broker = URL, key: Key = KEY,
           value_file: Annotated[Optional[Path], typer.Option(help="Import this value instead of generating.")] = None,
           size: int = 32) -> None:
    """Add a new version; releases serve the newest."""
    _call(broker, key, "rotate_key", path, value=value_file.read_bytes() if value_file else None, size=size)


@app.command("bind")
def bind(path: PathArg, policy: Annotated[str, typer.Argument(help="Policy name.")],
         broker: Broker = URL, key: Key = KEY) -> None:
    """Bind a release policy to a key."""
    _call(broker, key, "bind", path, policy)


@app.command("list")
def list_(broker: Broker = URL, key: Key = KEY) -> None:
    """Keys of your tenant (paths, versions, policies; never values)."""
    _call(broker, key, "list_keys")


@app.command("delete")
def delete(path: PathArg, broker: Broker = URL, key: Key = KEY, yes: Yes = False,
           json_out: Annotated[bool, typer.Option("--json", help="Print what was deleted as JSON.")] = False) -> None:
    """Delete a key and all its versions (asks first, or pass --yes)."""
    from .key_delete import delete_key
    delete_key(broker, key, path, yes=yes, json_out=json_out)
