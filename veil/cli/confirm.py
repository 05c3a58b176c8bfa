"""Asking before a command destroys something: a prompt on a terminal, `--yes` everywhere else."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .output import EXIT_BAD_INPUT, err_console, fail

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking (needed when stdin is not a "
                                   "terminal).")]


def must_ask(yes: bool, what: str) -> bool:
    """Whether to ask before doing `what`: not with `yes`. With no terminal on stdin (a script, a pipe)
    nobody can answer, so without `yes` this refuses (exit 2), before anything is done."""
    if yes:
        return False
    if not sys.stdin.isatty():
        fail(f"refusing to {what} without confirmation (stdin is not a terminal); pass --yes to confirm")
    return True


def ask(question: str, what: str) -> None:
    """Return if the person at the terminal says yes to `question`; else exit 2, having done nothing."""
    if not typer.confirm(question, default=False):
        err_console.print(f"not confirmed: did not {what}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT)
