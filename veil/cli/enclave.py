"""`veil enclave …`: serve a sealed model over attested TLS; talk to one as an attesting client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
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

def _data_key(key_file: Path | None, broker: str | None, resource: str | None, attester):
    from enclave.secrets import DataKey

    if (key_file is None) == (broker is None):
        fail("give exactly one of --key-file (development) or --broker URL with --resource PATH")
    if key_file is not None:
        from .model import read_key_file
        return read_key_file(key_file)
    if not resource:
        fail("--broker needs --resource (the key's path at the broker, e.g. models/llama-8b/dek)")
    try:
        from keybroker.client import KbsClient, KbsError
    except ImportError:
        fail("the key-broker client is not available in this installation")
    try:
        material = bytearray(KbsClient(broker, attester).get_resource(resource))
    except KbsError as exc:
        fail(f"the key broker refused the key: {exc}", code=EXIT_FAILED)
    try:
        return DataKey(material)
    finally:
        material[:] = bytes(len(material))


def _attester(emulated: bool, tee: TeeChoice, vendor_dir: Path | None):
    if emulated:
        from attestation.attesters import EmulatedAttester
        from attestation.emulated import EmulatedVendor

        from . import paths
        vendor = EmulatedVendor.open(vendor_dir or paths.emulated_vendor())
        return EmulatedAttester(vendor, tee.value), vendor
    from attestation.attesters import detect_attester
    from attestation.errors import AttesterError

    try:
        return detect_attester(tee=tee.value), None
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


def _run(main) -> None:
    """Run the server's event loop on uvloop where installed, as vLLM's own gRPC launcher does."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


async def _ship_periodically(shipper, interval: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
        await _ship(shipper)


async def _ship(shipper) -> None:
    import httpx
    from rich.markup import escape

    from enclave.callship import ShipError
    from keybroker.client import KbsError

    try:
        done = await asyncio.to_thread(shipper.ship)
    except ShipError as exc:                    # records lost before the broker had them: say so loudly
        err_console.print(f"[bold red]call audit incomplete:[/] {escape(str(exc))}")
        return
    except (KbsError, httpx.HTTPError, OSError) as exc:   # the broker refused or is away: try again next time
        err_console.print(f"[yellow]call audit not shipped to the broker: {escape(str(exc))}[/]")
        return
    if done.records:
        console.print(f"call audit: shipped {done.records} record(s) to the broker's log "
                      f"(next seq {shipper.next_seq})")


def _broker_certificate(client, identity, resource: str) -> None:
    from keybroker.client import KbsError

    try:
        issued = client.request_certificate(resource)
    except KbsError as exc:
        fail(f"the key broker refused a certificate for this enclave: {exc}", code=EXIT_FAILED)
    identity.use_issued(issued["certificate"])
    console.print(f"TLS certificate issued by the broker's enclave CA for the attested key (until "
                  f"{issued['not_after']})")


async def _serve(sealed: Path, key, settings, attester, vendor, auth, address: str, *,
                 broker: str | None = None, audit_interval: float = 30.0, resource: str | None = None,
                 broker_certificate: bool = False) -> None:
    from enclave.engine import sealed_engine
    from enclave.server import EnclaveServer, TlsIdentity
    from enclave.server.attest import emulated_collateral

    tdx, crls = emulated_collateral(vendor) if vendor is not None else (None, None)
    async with sealed_engine(sealed, key, settings) as engine:
        key.wipe()
        identity = TlsIdentity()
        from enclave.callship import for_identity   # attests with the TLS key (call audit, broker certificate)
        client = for_identity(broker, attester, identity.jwk()) if broker is not None else None
        if broker_certificate:
            await asyncio.to_thread(_broker_certificate, client, identity, resource)
        server = EnclaveServer(engine, identity=identity, attester=attester, auth=auth,
                               tdx_collateral=tdx, snp_crls=crls)
        port = await server.start(address)
        console.print(f"serving {sealed.name} on port {port} (TLS only); certificate sha256 {identity.fingerprint()}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        shipper = shipping = None
        if broker is not None:
            from enclave.callship import CallAuditShipper
            shipper = CallAuditShipper(server.calls, client)
            shipping = asyncio.create_task(_ship_periodically(shipper, audit_interval, stop))
        try:
            await stop.wait()
        finally:
            console.print("shutting down: NOT_SERVING, draining, stopping the engine")
            await server.stop()
            if shipping is not None:
                await shipping
                await _ship(shipper)                       # the calls drained at shutdown


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
) -> None:
    """Decrypt a sealed model in memory, start vLLM, serve its gRPC API over attested TLS."""
    from enclave.engine import EngineSettings
    from enclave.errors import EnclaveError

    if broker_certificate and (broker is None or resource is None):
        fail("--broker-certificate needs --broker and --resource (the policy of that resource decides)")
    attester, vendor = _attester(emulated, tee, vendor_dir)
    auth = _auth(jwks, audience, issuer, no_client_auth)
    key = _data_key(key_file, broker, resource, attester)
    settings = EngineSettings(dtype=dtype, max_model_len=max_model_len, enforce_eager=enforce_eager,
                              gpu_memory_utilization=gpu_memory_utilization,
                              tensor_parallel_size=tensor_parallel_size)
    try:
        _run(_serve(sealed, key, settings, attester, vendor, auth, f"{host}:{port}", broker=broker,
                    audit_interval=audit_interval, resource=resource, broker_certificate=broker_certificate))
    except EnclaveError as exc:
        fail(str(exc), code=EXIT_FAILED)
    finally:
        key.wipe()


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
