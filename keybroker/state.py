"""Everything a running broker holds: built once by `create_app`, never at import time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import anyio.to_thread

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from attestation.anchors import TrustAnchors, vendor_anchors
from attestation.collateral import CollateralSource
from attestation.options import VerifyOptions

from .audit.checkpoint import NoteSigner
from .db.batch import GroupCommit
from .db.engine import (READ_ONLY, LoopConnections, WalCheckpointer, WriteLock, make_engine, read_session_factory, session_factory,
                        write_session)
from .db.migrate import require_current
from .denials import DenialBudget
from .errors import BrokerError
from .kbs.recent import RecentClaims
from .metrics import Metrics
from .policy import CompiledCache, load_engine
from .resources.kek import FileKek, Kek
from .resources.kek_open import open_kek
from .settings import BrokerSettings
from .tokens.keys import SigningKeys

T = TypeVar("T")
log = logging.getLogger("veil.broker")
EMULATED_BANNER = ("EMULATED TRUST ANCHORS ARE ENABLED: evidence signed by a locally generated "
                   "'emulated vendor' is accepted. Never run a production broker like this.")


class StartupError(BrokerError):
    status = 500


def build_anchors(settings: BrokerSettings) -> TrustAnchors:
    anchors = vendor_anchors()
    if settings.emulated_anchors is None:
        return anchors
    if not settings.allow_emulated:
        raise StartupError("broker.emulated_refused",
                           "emulated trust anchors are configured but not allowed; pass --allow-emulated "
                           "(development only) or remove --emulated-anchors")
    from attestation.emulated import load_anchors
    return anchors + load_anchors(settings.emulated_anchors)


def build_collateral(settings: BrokerSettings) -> CollateralSource:
    if settings.collateral is not None:
        from attestation.collateral.bundle import OfflineBundle
        return OfflineBundle(settings.collateral)
    from attestation.collateral.cache import CollateralCache
    from attestation.collateral.online import AmdKds, IntelPcs, OnlineCollateral
    cache = CollateralCache(settings.collateral_cache)
    return OnlineCollateral(IntelPcs(cache=cache), AmdKds(cache=cache))


@dataclass(frozen=True, slots=True)
class Local:
    """Which of the KBS path's blocking work cannot wait on the network, and so runs on the event loop itself
    (keybroker/db/batch.py says why that is cheaper): database reads and writes on SQLite, KEK unwrapping with
    the file KEK, collateral from an offline bundle, an in-memory denial budget. The rest (PostgreSQL, Vault,
    Intel PCS / AMD KDS, Redis) goes to a small thread pool, and PostgreSQL writes to the group-commit thread."""

    db: bool
    kek: bool
    collateral: bool
    denials: bool

    def describe(self) -> str:
        """What runs where, for the start-up log."""
        parts = {"database": self.db, "KEK": self.kek, "collateral": self.collateral, "denial budget": self.denials}
        on_loop = [name for name, local in parts.items() if local]
        on_threads = [name for name, local in parts.items() if not local]
        return (f"on the event loop: {', '.join(on_loop) or 'nothing'}; "
                f"on threads: {', '.join(on_threads) or 'nothing'}")


@dataclass
class BrokerState:
    settings: BrokerSettings
    engine: Engine
    sessions: sessionmaker[Session]
    kek: Kek
    anchors: TrustAnchors
    collateral: CollateralSource
    keys: SigningKeys
    log_signer: NoteSigner
    policies: CompiledCache
    metrics: Metrics
    reads: sessionmaker[Session] = field(init=False)
    _read_engine: Engine = field(init=False, repr=False)
    _loop_reads: LoopConnections | None = field(init=False, repr=False)
    write_lock: WriteLock = field(init=False)
    group: GroupCommit = field(init=False)
    denials: DenialBudget = field(init=False)
    local: Local = field(init=False)
    checkpointer: WalCheckpointer | None = field(init=False, default=None)
    recent_claims: RecentClaims = field(init=False)

    def __post_init__(self) -> None:
        self.local = Local(db=self.engine.url.get_backend_name() == "sqlite", kek=isinstance(self.kek, FileKek),
                           collateral=self.settings.collateral is not None,
                           denials=self.settings.denial_storage.startswith("memory://"))
        self.reads = read_session_factory(self.engine)
        self._read_engine = self.engine.execution_options(**{READ_ONLY: True})
        self._loop_reads = LoopConnections(self._read_engine) if self.local.db else None
        self.write_lock = WriteLock(self.engine)
        self.group = GroupCommit(self.engine, self.write_lock, inline=self.local.db,
                                 on_commit=self.metrics.group_commit_jobs.observe)
        self.denials = DenialBudget(self.settings.denials_per_minute, self.settings.denial_storage)
        self.recent_claims = RecentClaims()
        if self.local.db and self.engine.url.database not in (None, "", ":memory:"):
            # the engine's connections leave checkpoints to this thread (build(): checkpoints_on_commit=False)
            self.checkpointer = WalCheckpointer(self.engine)
            self.checkpointer.start()

    async def blocking(self, fn: Callable[..., T], *args: Any, local: bool) -> T:
        """`fn(*args)`, work that may wait on something: on the event loop where that something is `local`
        (no network in the way), else on a pool thread so that the loop never waits on the network."""
        if local:
            return fn(*args)
        return await anyio.to_thread.run_sync(fn, *args)

    def read(self) -> AbstractContextManager[Connection]:
        """A read transaction on a Core connection (deferred on SQLite: it takes no write lock), for the KBS
        path's few prepared selects: no ORM session to set up and tear down per request. On the event loop
        (SQLite), on the loop's kept connection."""
        return self._loop_reads.begin() if self._loop_reads is not None else self._read_engine.begin()

    def close(self) -> None:
        """Commit the queued writes and give back kept connections (the application's shutdown)."""
        self.group.close()
        if self._loop_reads is not None:
            self._loop_reads.close()
        if self.checkpointer is not None:
            self.checkpointer.close()

    def writes(self) -> AbstractContextManager[Session]:
        """A write transaction of its own (commit on success), queued with the other writers on SQLite: admin
        actions and the rarer KBS writes. The auth/attest/resource path writes through `group`
        (keybroker.db.batch), which commits concurrent requests' writes together."""
        return write_session(self.sessions, self.write_lock)

    def verify_options(self, at: datetime) -> VerifyOptions:
        return VerifyOptions(anchors=self.anchors, collateral=self.collateral, at=at)

    @classmethod
    def build(cls, settings: BrokerSettings) -> BrokerState:
        anchors = build_anchors(settings)
        if anchors.has_emulated:
            log.warning(EMULATED_BANNER)
        engine = make_engine(settings.db_url, checkpoints_on_commit=False)      # a WalCheckpointer does them
        require_current(engine)
        factory = session_factory(engine)
        kek = open_kek(settings.kek, engine)
        keys = SigningKeys.load(factory, kek)
        signer = NoteSigner(settings.log_origin.replace(" ", "-").replace("+", "-"), keys.log_key)
        state = cls(settings, engine, factory, kek, anchors, build_collateral(settings), keys, signer,
                    CompiledCache(load_engine(settings.policy_engine)), Metrics())
        log.info("KBS path: %s", state.local.describe())
        return state
