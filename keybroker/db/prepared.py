"""The KBS path's hot statements, compiled by SQLAlchemy once per dialect and run on the driver's cursor.

A release runs six small statements (the session read, the nonce consumption, the attestation, resource, policy
and sealed-version reads). On SQLite, SQLAlchemy's per-execution layer (execution context, cursor result, row
objects) took about 45 µs of each one's 50 µs, some 8 % of the broker's CPU per release. `Prepared` keeps
everything else of SQLAlchemy: the statement is built and compiled by it, parameters go through the column
types' own bind processors and values come back through their result processors, so a prepared statement
writes and reads exactly what `Connection.execute` would (tests/keybroker/test_prepared.py compares the two on
SQLite and PostgreSQL). It runs inside the caller's transaction, on that transaction's driver connection.
`PreparedInsert` does the same for the group commit's inserts (keybroker/db/batch.py): rows of one table
written with the driver's `executemany`.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import Compiled

# A row of a prepared select: a named tuple whose fields are the selected columns' attribute names.
Row: TypeAlias = Any


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None                # positional paramstyles: the order of the parameters
    defaults: Mapping[str, Any]                  # values the statement itself binds (e.g. LIMIT 1)
    binds: Mapping[str, Callable[[Any], Any]]    # bind processors of the parameters that have one
    row: type | None                             # a named tuple of the selected columns (None: no result rows)
    results: tuple[Callable[[Any], Any] | None, ...]


class Prepared:
    """A Core statement run without SQLAlchemy's execution layer: `first()` for a select, `rowcount()` for an
    update. Only for statements of plain bound parameters (no expanding IN lists)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        c = self.statement.compile(dialect=dialect)
        names, defaults, binds = _parameters(c, dialect)
        columns = getattr(self.statement, "selected_columns", None)
        if columns is None:                              # an update: no rows come back
            return _Compiled(c.string, names, defaults, binds, None, ())
        row = namedtuple("PreparedRow", [col.key for col in columns])
        results = tuple(col.type.dialect_impl(dialect).result_processor(dialect, None) for col in columns)
        return _Compiled(c.string, names, defaults, binds, row, results)

    def _execute(self, db: Connection | Session, params: Mapping[str, Any]):
        conn = db.connection() if isinstance(db, Session) else db       # the session's transaction's connection
        compiled = self._compiled(conn.dialect)
        cursor = conn.connection.driver_connection.cursor()
        cursor.execute(compiled.sql, _arguments(compiled, params))
        return compiled, cursor

    def first(self, conn: Connection | Session, params: Mapping[str, Any]) -> Row | None:
        """The first row (a named tuple with the columns' attribute names), or None."""
        compiled, cursor = self._execute(conn, params)
        try:
            raw = cursor.fetchone()
        finally:
            cursor.close()
        if raw is None:
            return None
        return compiled.row._make(v if p is None else p(v) for p, v in zip(compiled.results, raw))

    def rowcount(self, conn: Connection | Session, params: Mapping[str, Any]) -> int:
        """The number of rows an update or delete matched."""
        _, cursor = self._execute(conn, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()


class PreparedInsert:
    """Rows of one table inserted with the driver's `executemany`, the INSERT compiled by SQLAlchemy once per
    dialect and set of columns. Every row of a call names the same columns (in any order), and a column left
    out must be one the database fills itself (an autoincrement key): one with a Python-side default is
    refused, as nothing here would compute it."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._by_dialect: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _compiled(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        compiled = self._by_dialect.get((dialect.name, keys))
        if compiled is None:
            c = self.table.insert().compile(dialect=dialect, column_keys=list(keys))
            if c.insert_prefetch:
                raise ValueError(f"rows for {self.table.name} leave out columns with Python-side defaults: "
                                 + ", ".join(col.key for col in c.insert_prefetch))
            compiled = self._by_dialect[(dialect.name, keys)] = _Compiled(c.string, *_parameters(c, dialect),
                                                                           None, ())
        return compiled

    def many(self, conn: Connection, rows: list[Mapping[str, Any]]) -> None:
        """Insert `rows` (all with the same keys) in the connection's transaction."""
        first = rows[0].keys()
        if any(row.keys() != first for row in rows):
            raise ValueError(f"rows for {self.table.name} must all name the same columns")
        compiled = self._compiled(conn.dialect, tuple(sorted(first)))
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(compiled.sql, [_arguments(compiled, row) for row in rows])
        finally:
            cursor.close()


def _parameters(c: Compiled, dialect: Dialect):
    """(positional order or None, values the statement binds itself, bind processors) of a compiled statement."""
    rendered = c.bind_names                          # each bound parameter → its name in the SQL
    defaults = {name: bind.value for bind, name in rendered.items() if not bind.required}
    binds = {name: proc for bind, name in rendered.items()
             if (proc := bind.type.dialect_impl(dialect).bind_processor(dialect))}
    names = tuple(c.positiontup) if c.positional else None
    return names, defaults, binds


def _arguments(compiled: _Compiled, params: Mapping[str, Any]):
    """The driver's parameters: defaults and `params` through the bind processors, in positional order or by
    name."""
    values = {**compiled.defaults, **params}
    for name, proc in compiled.binds.items():
        values[name] = proc(values[name])
    return tuple(values[n] for n in compiled.names) if compiled.names is not None else values
