"""Schema migrations (Alembic, shipped inside the package): upgrade on start, or refuse if behind."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from ..errors import Unavailable


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("keybroker.db") / "migrations"))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; safe to run from several replicas)."""
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def require_current(engine: Engine) -> None:
    """Refuse to serve on a schema older (or newer) than this code's."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise Unavailable("db.schema", f"database schema is at {current or 'nothing'}, this broker needs "
                                       f"{head}; run `veil broker migrate` or start with migrations enabled")
