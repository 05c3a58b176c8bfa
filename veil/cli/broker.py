"""`veil broker …`: run the key broker, bootstrap its first admin, migrate its database, push policies."""

from __future__ import annotations

import logging.config
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import broker_admin, broker_policy
from .output import EXIT_BAD_INPUT, EXIT_FAILED, console, err_console, fail, print_json


class LogFormatChoice(StrEnum):
    text = "text"
    json = "json"


app = typer.Typer(help="The key broker: serve, init, migrate, policy-push, admin, policy.", no_args_is_help=True)
app.add_typer(broker_admin.app, name="admin")
app.add_typer(broker_policy.app, name="policy")

Db = Annotated[str, typer.Option("--db", help="Database URL (sqlite:///FILE or postgresql://…).")]
DEFAULT_DB = "sqlite:///veil-broker.db"


def _settings(**values):
    from keybroker.settings import BrokerSettings, KekSettings
    kek = KekSettings(**{k: v for k, v in values.pop("kek").items() if v is not None})
    return BrokerSettings(kek=kek, **{k: v for k, v in values.items() if v is not None})


def _prepare_db(url: str, migrate: bool) -> None:
    from keybroker.db.engine import make_engine
    from keybroker.db.migrate import require_current, upgrade
    from keybroker.errors import BrokerError

    engine = make_engine(url)
    try:
        upgrade(engine) if migrate else require_current(engine)
    except BrokerError as exc:
        fail(exc.message, code=EXIT_FAILED)
    except Exception as exc:  # noqa: BLE001 - unreachable database, bad URL
        fail(f"cannot prepare database: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", code=EXIT_FAILED)
    finally:
        engine.dispose()


def _check_kek(settings) -> None:
    """Open (or, for a new database, create and announce) the KEK before any worker starts: a missing or
    wrong KEK is one error line, not a worker's traceback."""
    from keybroker.errors import BrokerError
    from keybroker.resources.kek_open import check_kek

    try:
        check_kek(settings.kek, settings.db_url)
    except BrokerError as exc:
        fail(exc.message, code=EXIT_BAD_INPUT)


def _denial_storage(uri: str) -> str:
    """The denial-budget storage URI, checked before any worker starts: known scheme, no credentials."""
    from urllib.parse import urlsplit

    from limits.errors import ConfigurationError
    from limits.storage import storage_from_string

    if urlsplit(uri).password is not None:
        fail("--denial-storage must not carry a password (it would sit in argv and the workers' environment); "
             "use a Redis reachable only from the brokers' network", code=EXIT_BAD_INPUT)
    try:
        storage_from_string(uri)
    except (ConfigurationError, ValueError) as exc:
        fail(f"--denial-storage {uri!r}: {exc}", code=EXIT_BAD_INPUT)
    return uri


@app.command("serve")
def serve(
    db: Db = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes; with two or more, this process accepts "
                                         "and hands each connection to the next worker.")] = 1,
    worker_timeout: Annotated[float, typer.Option(min=1.0, help="Seconds a worker may leave the supervisor's "
                                                  "pings unanswered before it is killed and replaced (with two or "
                                                  "more workers).")] = 30.0,
    threads: Annotated[int, typer.Option(min=1, max=256, help="Threads per worker for verification and "
                                         "database work.")] = 4,
    allow_emulated: Annotated[bool, typer.Option(help="Accept emulated trust anchors (development only).")] = False,
    emulated_anchors: Annotated[Optional[Path], typer.Option(help="Exported emulated anchors directory.")] = None,
    collateral: Annotated[Optional[Path], typer.Option(help="Offline collateral bundle (default: online).")] = None,
    kek_file: Annotated[Path, typer.Option("--kek-file", help="The key-encryption key file (0600). Created only "
                                           "for a new database; back it up.")] = Path("broker-kek.key"),
    vault_url: Annotated[Optional[str], typer.Option(help="Use Vault transit as the KEK (token: VAULT_TOKEN).")] = None,
    vault_key: Annotated[str, typer.Option(help="Vault transit key name.")] = "veil-broker",
    tls_cert: Annotated[Optional[Path], typer.Option(help="TLS certificate (PEM).")] = None,
    tls_key: Annotated[Optional[Path], typer.Option(help="TLS private key (PEM).")] = None,
    issuer: Annotated[Optional[str], typer.Option(help="Token issuer (iss).")] = None,
    migrate: Annotated[bool, typer.Option(help="Upgrade the schema on start (else refuse if behind).")] = True,
    denials_per_minute: Annotated[int, typer.Option(min=0, help="KBS error answers per client address and minute "
                                                    "before it gets 429 (0: no limit).")] = 120,
    denial_storage: Annotated[str, typer.Option(help="Where the denial budget is kept (`limits` storage URI, no "
                                                "credentials): memory:// per worker, redis://HOST:PORT shared.")]
    = "memory://",
    log_format: Annotated[LogFormatChoice, typer.Option(help="Log lines as text (`key=value` fields) or as one "
                                                        "JSON object each.")] = LogFormatChoice.text,
    forwarded_allow_ips: Annotated[str, typer.Option(help="Proxies whose X-Forwarded-For names the client "
                                                     "(comma-separated addresses or networks). Behind an ingress, "
                                                     "name it: else every client shares the proxy's denial "
                                                     "budget.")] = "127.0.0.1",
) -> None:
    """Run the broker (uvicorn)."""
    import uvicorn

    from keybroker import serving
    from keybroker.errors import BrokerError
    from keybroker.logs import log_config
    from keybroker.settings import ENV_VAR
    from keybroker.state import EMULATED_BANNER, build_anchors

    settings = _settings(db_url=db, allow_emulated=allow_emulated, emulated_anchors=emulated_anchors,
                         collateral=collateral, issuer=issuer, migrate=migrate, threads=threads,
                         denials_per_minute=denials_per_minute, denial_storage=_denial_storage(denial_storage),
                         kek={"provider": "vault" if vault_url else "file", "file": kek_file,
                              "vault_url": vault_url, "vault_key": vault_key})
    try:
        anchors = build_anchors(settings)
    except BrokerError as exc:
        fail(exc.message, code=EXIT_BAD_INPUT)
    except (OSError, ValueError) as exc:
        fail(f"cannot load emulated anchors: {exc}")
    if anchors.has_emulated and log_format is LogFormatChoice.text:     # in JSON, each worker logs it as a warning record
        err_console.print(f"[bold red on yellow] WARNING [/] [bold]{EMULATED_BANNER}[/]")
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together")
    _prepare_db(db, migrate)
    logging.config.dictConfig(log_config(log_format.value))    # the KEK check's lines look like the broker's
    _check_kek(settings)
    os.environ[ENV_VAR] = settings.to_env()
    config = uvicorn.Config("keybroker.app:app_from_env", factory=True, host=host, port=port,
                            ssl_certfile=str(tls_cert) if tls_cert else None,
                            ssl_keyfile=str(tls_key) if tls_key else None, access_log=False, log_level="info",
                            log_config=log_config(log_format.value),
                            proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips)
    status = serving.serve(config, workers, worker_timeout)   # two or more workers: handed connections in turn
    if status:
        fail("the broker could not start (see the log above)", code=status)


@app.command("migrate")
def migrate_cmd(db: Db = DEFAULT_DB) -> None:
    """Upgrade the broker's database schema to this version."""
    _prepare_db(db, True)
    console.print("database schema is current")


@app.command("init")
def init(
    key_out: Annotated[Path, typer.Option(help="Where to write the admin private key (created 0600).")],
    db: Db = DEFAULT_DB,
    name: Annotated[str, typer.Option(help="Admin name.")] = "admin",
    tenant: Annotated[str, typer.Option(help="Tenant this admin manages.")] = "default",
) -> None:
    """Create a tenant's first admin key pair locally and register its public key (all roles)."""
    from sqlalchemy import select

    from keybroker.admin.auth import ROLES
    from keybroker.admin.keys import generate, register
    from keybroker.db.engine import make_engine, session_factory
    from keybroker.db.models import AdminKey
    from keybroker.errors import BrokerError

    _prepare_db(db, True)
    engine = make_engine(db)
    try:
        with session_factory(engine).begin() as s:
            if s.execute(select(AdminKey.kid).where(AdminKey.tenant == tenant)).first():
                fail(f"tenant {tenant!r} already has an admin; ask an operator to register more keys")
            try:
                jwk = generate(key_out)
            except FileExistsError:
                fail(f"{key_out} already exists; choose another --key-out")
            kid = register(s, name=name, tenant=tenant, roles=list(ROLES), jwk=jwk)
    except BrokerError as exc:
        fail(exc.message)
    finally:
        engine.dispose()
    print_json({"kid": kid, "tenant": tenant, "roles": list(ROLES), "public_jwk": jwk,
                "private_key_file": str(key_out)})


@app.command("policy-push")
def policy_push(
    file: Annotated[Path, typer.Argument(help="ReleasePolicy document (YAML or JSON).")],
    broker: Annotated[str, typer.Option(help="Broker admin URL.")] = "http://127.0.0.1:8080",
    key: Annotated[Path, typer.Option(help="Admin private key file.")] = Path("admin.key"),
    name: Annotated[Optional[str], typer.Option(help="Policy name (default: metadata.name).")] = None,
    references: Annotated[list[Path], typer.Option("--references", "--refs", help="Reference-values files or directories "
                                                   "defining the sets the policy names ({ref: …}).")] = [],
) -> None:
    """Push a new version of a release policy to the broker (with the reference sets it names)."""
    import yaml

    from keybroker.admin.client import AdminClient
    from keybroker.client import KbsError

    text = file.read_text()
    if name is None:
        doc = yaml.safe_load(text)
        name = doc.get("metadata", {}).get("name") if isinstance(doc, dict) else None
        if not name:
            fail(f"{file}: no metadata.name; pass --name")
    refs = _pushed_references(file, references) if references else None
    try:
        print_json(AdminClient(broker, key).push_policy(name, text, refs))
    except KbsError as exc:
        fail(f"{exc.code}: {exc.detail}", code=EXIT_FAILED)


def _pushed_references(file: Path, paths: list[Path]) -> str | None:
    """The reference sets `file` names, from `paths`, as one ReferenceValues document (JSON text)."""
    import json

    from policies.compile import referenced_names
    from policies.errors import PolicyLoadError
    from policies.loader import load_references, read_source, references_document, validate
    from policies.schema import ReleasePolicy

    sets, problems = load_references(paths)
    try:
        document, more = validate(read_source(file), ReleasePolicy)
    except PolicyLoadError as exc:
        document, more = None, list(exc.problems)
    problems += more
    if problems or document is None:
        fail("; ".join(f"{p.file}:{p.line}: {p.path}: {p.message}" for p in problems) or f"{file}: not a policy")
    names = referenced_names(document)
    missing = sorted(names - set(sets))
    if missing:
        fail(f"{file} names reference set(s) {', '.join(missing)} that {', '.join(map(str, paths))} do not define")
    return json.dumps(references_document(sets, names)) if names else None
