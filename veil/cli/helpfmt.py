"""Help that reads at 80 columns: flags show no `<bool>` metavar, lists show their element type."""

from __future__ import annotations

import re
from typing import Any

from typer.core import TyperOption

_original = TyperOption.display_type_rich
_LIST = re.compile(r"^<list\[(\w+)\]>$")


def _display_type_rich(self: Any, ctx: Any) -> str | None:
    if self.is_flag or self.is_bool_flag:
        return None
    shown = _original(self, ctx)
    if shown is None:
        return None
    match = _LIST.match(shown)
    if match:
        return f"<{match.group(1).lower()}>..."
    return shown.lower() if shown.startswith("<") else shown


def install() -> None:
    TyperOption.display_type_rich = _display_type_rich


def tidy_flags(command: Any) -> None:
    """Drop the `--no-no-x` twin typer makes for a flag already named `--no-x`, over the whole tree."""
    for param in getattr(command, "params", []):
        param.secondary_opts = [o for o in getattr(param, "secondary_opts", []) if not o.startswith("--no-no-")]
    for sub in getattr(command, "commands", {}).values():
        tidy_flags(sub)
