"""The `veil` command: one entry point, one sub-application per audience's task."""

from __future__ import annotations

from typing import Any

import typer
from typer._click.exceptions import ClickException
from typer.core import TyperGroup

from .. import __version__
from . import attest, audit, broker, demo, doctor, enclave, key, measure, model, policy
from .errors import report
from .helpfmt import install as _install_help
from .helpfmt import tidy_flags

_install_help()

_VERIFY_LIKE = {"verify", "reverify", "evaluate", "check", "test"}


class VeilGroup(TyperGroup):
    """The root command: every exception a subcommand lets out becomes one `error:` line and exit 1 or 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        tidy_flags(self)
        return super().main(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        args = [*getattr(ctx, "_protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except Exception as exc:   # noqa: BLE001 - the one handler: every error ends as a line, never a traceback
            words = [a for a in args if not a.startswith("-")]
            code = report(exc, json_mode="--json" in args,
                          verify_like=any(w in _VERIFY_LIKE for w in words[:3]))
            raise typer.Exit(code) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit(0)


app = typer.Typer(
    cls=VeilGroup,
    name="veil",
    help="Confidential LLM inference: attestation, release policies, key broker and enclave.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print Veil's version and exit.")) -> None:
    """Confidential LLM inference: attestation, release policies, key broker and enclave."""


app.add_typer(attest.app, name="attest")
app.add_typer(policy.app, name="policy")
app.add_typer(broker.app, name="broker")
app.add_typer(key.app, name="key")
app.add_typer(audit.app, name="audit")
app.add_typer(model.app, name="model")
app.add_typer(enclave.app, name="enclave")
app.add_typer(measure.app, name="measure")
app.command("demo")(demo.run)
app.command("doctor")(doctor.run)


@app.command("version")
def version() -> None:
    """Print Veil's version."""
    typer.echo(__version__)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
