"""The `veil` command: one entry point, one sub-application per audience's task."""

from __future__ import annotations

import typer

from .. import __version__
from . import attest, audit, broker, demo, doctor, enclave, key, measure, model, policy

app = typer.Typer(
    name="veil",
    help="Confidential LLM inference: attestation, release policies, key broker and enclave.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
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
