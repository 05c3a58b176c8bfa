"""Opening the broker's key-encryption key at start-up.

The broker never creates a KEK silently, and never beside keys sealed under
another one. A file KEK is created only when its file is absent and the
database holds no sealed value at all (a new broker); the log then says where,
so that the operator backs it up. A database that already holds sealed values
(the broker's signing keys, stored resources) needs the KEK they were sealed
under: a missing file is refused before anything is created, and a KEK whose
id is not the one the values carry is refused before the first unseal fails.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine, inspect, select, union

from ..db.engine import make_engine
from ..db.models import ResourceVersion, SigningKey
from ..errors import BrokerError
from ..settings import KekSettings
from .kek import FileKek, Kek

log = logging.getLogger("veil.broker")
KEK_OPTION = "--kek-file"


class KekRefused(BrokerError):
    """The configured KEK cannot serve this database (missing beside sealed keys, or another KEK)."""

    status = 500


def sealed_under(engine: Engine) -> set[str]:
    """The KEK ids the database's sealed values carry (empty for a new or not yet migrated database)."""
    tables = set(inspect(engine).get_table_names())
    queries = [select(model.kek_id).distinct() for model in (SigningKey, ResourceVersion)
               if model.__tablename__ in tables]
    if not queries:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(union(*queries)).scalars())


def build_kek(cfg: KekSettings) -> Kek:
    """The configured KEK, which must exist (see `open_kek` for the one place that may create a file KEK)."""
    if cfg.provider == "vault":
        from .vault import VaultTransitKek
        if not cfg.vault_url:
            raise KekRefused("kek.vault_url", "the Vault KEK needs a Vault URL (--vault-url)")
        return VaultTransitKek(cfg.vault_url, cfg.vault_key, mount=cfg.vault_mount, namespace=cfg.vault_namespace)
    return FileKek(cfg.file)


def _create_file_kek(path: Path) -> FileKek:
    try:
        kek = FileKek.create(path)
    except FileExistsError:                       # another worker created it meanwhile
        return FileKek(path)
    except OSError as exc:
        raise KekRefused("kek.create", f"cannot create a key-encryption key at {path.absolute()} "
                                       f"({exc.strerror}); pass {KEK_OPTION} with a writable path") from None
    log.warning("created a new key-encryption key at %s; back it up: without it the stored keys cannot be "
                "decrypted", path.absolute())
    return kek


def _missing(path: Path, sealed: set[str]) -> KekRefused:
    return KekRefused("kek.missing", f"no key-encryption key at {path.absolute()}, but the database holds keys "
                                     f"sealed under {', '.join(sorted(sealed))}; pass {KEK_OPTION} with the KEK "
                                     f"file this broker was started with (a new KEK could not decrypt them)")


def _check_matches(kek: Kek, sealed: set[str], where: str) -> None:
    foreign = sorted(sealed - {kek.key_id})
    if foreign:
        raise KekRefused("kek.mismatch", f"the key-encryption key {where} ({kek.key_id}) is not the one the "
                                         f"database's keys are sealed under ({', '.join(foreign)}); pass "
                                         f"{KEK_OPTION} with the KEK file this broker was started with")


def open_kek(cfg: KekSettings, engine: Engine) -> Kek:
    """The KEK for the database behind `engine`: created only for a database holding no sealed value."""
    sealed = sealed_under(engine)
    if cfg.provider == "file" and not cfg.file.exists() and not cfg.file.is_symlink():
        if sealed:
            raise _missing(cfg.file, sealed)
        return _create_file_kek(cfg.file)
    kek = build_kek(cfg)
    where = f"at {cfg.file.absolute()}" if cfg.provider == "file" else "in Vault"
    _check_matches(kek, sealed, where)
    return kek


def check_kek(cfg: KekSettings, db_url: str) -> str:
    """`open_kek` for the database at `db_url`, before a broker starts its workers; the KEK's id."""
    engine = make_engine(db_url)
    try:
        return open_kek(cfg, engine).key_id
    finally:
        engine.dispose()
