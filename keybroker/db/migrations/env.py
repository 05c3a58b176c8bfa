"""Alembic environment: runs against the connection handed in by keybroker.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from keybroker.db.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:     # command-line use: alembic -x url=…
        url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///veil-broker.db")
        with create_engine(url).connect() as conn:
            _run_with(conn)
        return
    _run_with(connection)


def _run_with(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run()
