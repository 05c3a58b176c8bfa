"""`veil enclave …`: serve a sealed model over attested TLS; talk to one as an attesting client."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .output import EXIT_FAILED, console, err_console, fail, print_json

app = typer.Typer(help="Serve sealed models inside a CVM over attested TLS; attest and query an enclave.",
                  no_args_is_help=True)


class TeeChoice(StrEnum):
    tdx = "tdx"
    snp = "snp"


# ----------------------------------------------------------------------------- serve

def _key_source(key_file: Path | None, broker: str | None, resource: str | None):
    from enclave.boot import BrokerKey, KeyFile

    if (key_file is None) == (broker is None):
        fail("give exactly one of --key-file (development) or --broker URL with --resource PATH")
    if key_file is not None:
        return KeyFile(key_file)
    if not resource:
        fail("--broker needs --resource (the key's path at the broker, e.g. models/llama-8b/dek)")
    return BrokerKey(broker, resource)


def _platform(emulated: bool, tee: TeeChoice, vendor_dir: Path | None):
    from attestation.errors import AttesterError
    from enclave.boot import Platform

    if emulated:
        from . import paths
        return Platform.emulated(vendor_dir or paths.emulated_vendor(), tee.value)
    try:
        return Platform.detect(tee.value)
    except AttesterError as exc:
        fail(f"no TEE here: {exc}", hint="pass --emulated for development on ordinary hardware")


def _auth(jwks: Path | None, audience: str, issuer: str | None, no_client_auth: bool):
    from enclave.server import BearerAuth

    if jwks is None and not no_client_auth:
        fail("give --jwks FILE (client tokens are checked against it) or --no-client-auth (development)")
    if jwks is None:
        err_console.print("[yellow]warning:[/] serving without client authentication (--no-client-auth)")
        return None
    try:
        return BearerAuth(jwks=json.loads(jwks.read_text()), audience=audience, issuer=issuer)
    except (OSError, ValueError) as exc:
        fail(f"cannot use JWKS {jwks}: {exc}")


_EVENT_STYLE = {"info": None, "warning": "yellow", "error": "bold red"}


def _print_event(event) -> None:
    """The boot agent's progress: info on stdout, warnings and errors on stderr."""
    where = console if event.level == "info" else err_console
    where.print(event.message, style=_EVENT_STYLE[event.level], markup=False, highlight=False, soft_wrap=True)


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@app.command("serve")
def serve(
    sealed: Annotated[Path, typer.Option(help="Sealed model directory (veil model seal).")],
    key_file: Annotated[Optional[Path], typer.Option(help="Data key file (development only).")] = None,
    broker: Annotated[Optional[str], typer.Option(help="Key broker URL: attest to it and fetch the key.")] = None,
    resource: Annotated[Optional[str], typer.Option(help="The key's resource path at the broker.")] = None,
    emulated: Annotated[bool, typer.Option(help="Emulated TEE evidence (development; clients must trust "
                                                "the emulated anchors).")] = False,
    tee: Annotated[TeeChoice, typer.Option(help="TEE to attest as.")] = TeeChoice.tdx,
    vendor_dir: Annotated[Optional[Path], typer.Option(help="Emulated vendor state directory.")] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="TLS port (0 picks a free one).")] = 50051,
    jwks: Annotated[Optional[Path], typer.Option(help="JWKS file: client bearer tokens must verify under it.")] = None,
    audience: Annotated[str, typer.Option(help="Audience client tokens must carry.")] = "veil-enclave",
    issuer: Annotated[Optional[str], typer.Option(help="Issuer client tokens must carry.")] = None,
    no_client_auth: Annotated[bool, typer.Option(help="Accept calls without a token (development).")] = False,
    dtype: Annotated[str, typer.Option(help="vLLM dtype.")] = "auto",
    max_model_len: Annotated[Optional[int], typer.Option(help="vLLM max_model_len.")] = None,
    gpu_memory_utilization: Annotated[float, typer.Option(help="vLLM gpu_memory_utilization.")] = 0.9,
    enforce_eager: Annotated[bool, typer.Option(help="vLLM enforce_eager.")] = False,
    tensor_parallel_size: Annotated[int, typer.Option(help="vLLM tensor_parallel_size.")] = 1,
    audit_interval: Annotated[float, typer.Option(min=1, help="Seconds between shipping the per-call audit to "
                                                  "the broker's log (with --broker).")] = 30.0,
    broker_certificate: Annotated[bool, typer.Option(help="Also serve a TLS certificate the broker issues for the "
                                                     "attested key (clients may then trust the broker's CA "
                                                     "instead of checking evidence).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only Veil's progress lines and vLLM's warnings "
                                                             "(same as --log-level warning).")] = False,
    log_level: Annotated[Optional[LogLevel], typer.Option(help="vLLM's own log level (default: vLLM's, "
                                                          "info).")] = None,
) -> None:
    """Decrypt a sealed model in memory, start vLLM, serve its gRPC API over attested TLS."""
    from enclave.boot import BootConfig, boot, grpc_front_end
    from enclave.engine import EngineSettings
    from enclave.errors import BootError, EnclaveError, KeyReleaseError

    if broker_certificate and (broker is None or resource is None):
        fail("--broker-certificate needs --broker and --resource (the policy of that resource decides)")
    platform = _platform(emulated, tee, vendor_dir)
    auth = _auth(jwks, audience, issuer, no_client_auth)
    settings = EngineSettings(dtype=dtype, max_model_len=max_model_len, enforce_eager=enforce_eager,
                              gpu_memory_utilization=gpu_memory_utilization,
                              tensor_parallel_size=tensor_parallel_size)
    config = BootConfig(sealed=sealed, key=_key_source(key_file, broker, resource), platform=platform,
                        front_ends=(grpc_front_end(f"{host}:{port}", auth),), settings=settings,
                        audit_interval=audit_interval, broker_certificate=broker_certificate,
                        log_level="warning" if quiet else (log_level.value if log_level else None))
    try:
        boot(config, progress=_print_event)
    except KeyReleaseError as exc:
        fail(str(exc), code=EXIT_FAILED)
    except BootError as exc:
        fail(str(exc))
    except EnclaveError as exc:
        fail(str(exc), code=EXIT_FAILED)


# ----------------------------------------------------------------------------- client

@app.command("client")
def client(
    target: Annotated[str, typer.Option(help="HOST:PORT of the enclave.")],
    prompt: Annotated[str, typer.Option(help="Prompt, sent only once the enclave has been attested.")],
    policy: Annotated[Optional[Path], typer.Option(help="Release policy YAML the enclave's evidence must "
                                                        "satisfy.")] = None,
    references: Annotated[list[Path], typer.Option("--references", help="Reference-values files.")] = [],
    resource: Annotated[Optional[str], typer.Option(help="Resource name to evaluate the policy for.")] = None,
    no_policy: Annotated[bool, typer.Option(help="Trust verified evidence without a policy (development).")] = False,
    emulated_anchors: Annotated[Optional[Path], typer.Option(
        help="Also trust the emulated vendor anchors exported to this directory (development only).")] = None,
    collateral: Annotated[list[Path], typer.Option(
        help="Offline collateral bundle, Intel JSON or loose collateral files (repeatable).")] = [],
    offline: Annotated[bool, typer.Option(help="Never contact Intel PCS or AMD KDS.")] = False,
    no_revocation: Annotated[bool, typer.Option("--no-revocation", help="Skip CRL checks.")] = False,
    allow_debug: Annotated[bool, typer.Option(help="Accept a debug TD / SNP guest.")] = False,
    token_file: Annotated[Optional[Path], typer.Option(help="File holding the bearer JWT for the enclave.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 32,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0: greedy).")] = 0.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object at the end.")] = False,
    broker_ca: Annotated[Optional[Path], typer.Option(help="Trust the enclave through this broker enclave CA "
                                                      "(GET /kbs/v0/enclave-ca) instead of checking its evidence "
                                                      "here.")] = None,
) -> None:
    """Attest the enclave (evidence, TLS-key binding, policy), then stream a completion."""
    from enclave.client import ClientTrust, attest, broker_trusted, describe
    from enclave.errors import AttestedChannelError

    from .attest import build_anchors, build_collateral

    token = token_file.read_text().strip() if token_file else os.environ.get("VEIL_ENCLAVE_TOKEN")
    if broker_ca is not None:
        if policy is not None:
            fail("--broker-ca trusts the broker's policy decision; drop --policy (or drop --broker-ca to check "
                 "the evidence here)")
        try:
            session = broker_trusted(target, broker_ca.read_bytes(), token=token)
        except OSError as exc:
            fail(f"cannot read {broker_ca}: {exc.strerror}")
        except AttestedChannelError as exc:
            fail(f"not sending the prompt: {exc}", code=EXIT_FAILED)
        _complete(session, target, prompt, max_tokens, temperature, json_out)
        return
    if policy is None and not no_policy:
        fail("give --policy FILE (or --no-policy for development)")
    compiled = None
    if policy is not None:
        from policies import PolicyLoadError, load_policy
        try:
            compiled = load_policy(policy, references=references)
        except PolicyLoadError as exc:
            fail(f"{policy}: {exc}")
    trust = ClientTrust(anchors=build_anchors(emulated_anchors), collateral=build_collateral(collateral, (), offline),
                        policy=compiled, resource=resource, allow_no_policy=no_policy,
                        check_revocation=not no_revocation, allow_debug=allow_debug)
    try:
        session = attest(target, trust, token=token)
    except AttestedChannelError as exc:
        for code, message in exc.reasons:
            err_console.print(f"  [red]✗[/] {code}: {message}", highlight=False)
        fail(f"not sending the prompt: {exc}", code=EXIT_FAILED)
    _complete(session, target, prompt, max_tokens, temperature, json_out, describe)


def _complete(session, target: str, prompt: str, max_tokens: int, temperature: float, json_out: bool,
              describe=None) -> None:
    with session:
        if not json_out:
            if session.attested is None:
                err_console.print(f"[green]trusted[/] {target}: its certificate is from the broker's enclave CA")
            else:
                err_console.print(f"[green]attested[/] {target}: {session.attested.claims.tee}, "
                                  f"policy {getattr(session.attested.decision, 'policy_name', 'none')} allows it")
        pieces = []
        for piece in session.generate(prompt, max_tokens=max_tokens, temperature=temperature):
            pieces.append(piece)
            if not json_out:
                console.out(piece, end="", highlight=False)
        if json_out:
            summary = describe(session.attested) if session.attested is not None else {"trust": "broker-ca"}
            print_json({**summary, "completion": "".join(pieces)})
        else:
            console.out("")
