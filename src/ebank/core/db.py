"""Engines for SQLite (embedded) and PostgreSQL (production), on one shared MetaData.

SQLite runs in WAL mode with synchronous=FULL (a commit is on disk when it returns), foreign
keys on and a busy timeout, and transactions are begun explicitly so that the writer can take
the write lock up front with BEGIN IMMEDIATE instead of failing half-way on an upgrade.
"""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option naming the statement that begins a transaction on SQLite.
BEGIN_OPTION = "ebank_sqlite_begin"


def normalise_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and route them to psycopg 3."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Reads run on the app's worker threads (up to 40 at once): keep their connections
        # rather than open, configure and close one per request past the default five.
        if parsed.database not in (None, "", ":memory:"):
            kwargs.setdefault("pool_size", 16)
            kwargs.setdefault("max_overflow", 32)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, not the driver, decide when a transaction starts.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        # The committing writer runs the checkpoint; every 40 MiB of WAL rather than every 4 MiB
        # copies each hot index page to the database file once instead of ten times.
        cur.execute("PRAGMA wal_autocheckpoint=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA cache_size=-131072")  # 128 MiB of page cache per connection
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(BEGIN_OPTION, "BEGIN"))


def is_sqlite(conn_or_engine: Connection | Engine) -> bool:
    return conn_or_engine.dialect.name == "sqlite"


def is_conflict(exc: BaseException) -> bool:
    """A unique key another writer committed first: looking again will see its row."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return sqlstate == "23505" or "UNIQUE constraint failed" in str(getattr(exc, "orig", exc))


def is_transient(exc: BaseException) -> bool:
    """A failure that the same work may not meet on a second try: lock waits, deadlocks."""
    text = str(getattr(exc, "orig", exc)).lower()
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return (
        sqlstate in {"40001", "40P01", "55P03"}
        or "database is locked" in text
        or ("database is busy" in text)
    )


class BulkWrite:
    """Many rows written with one round trip, SQL built once: the writer's flush path.

    SQLite runs `executemany` over plain tuples; PostgreSQL gets one statement over `unnest`
    arrays, which costs half of a pipelined `executemany` there. Either way SQLAlchemy's
    per-row parameter processing is skipped, so values must already be in driver form (see
    `Tx.now_param` for timestamps).
    """

    def __init__(self, table: Table, columns: tuple[str, ...], *, key: str | None = None) -> None:
        """Insert `columns`; with `key`, update them instead where `key` matches (the key is
        then the last value of each row)."""
        name = table.name
        pg_types = [table.c[c].type.compile(dialect=postgresql.dialect()) for c in columns]
        arrays = ", ".join(f"%s::{t}[]" for t in pg_types)
        if key is None:
            marks = ", ".join("?" for _ in columns)
            self._sqlite = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"
            self._pg = f"INSERT INTO {name} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"
        else:
            key_type = table.c[key].type.compile(dialect=postgresql.dialect())
            sets = ", ".join(f"{c} = ?" for c in columns)
            self._sqlite = f"UPDATE {name} SET {sets} WHERE {key} = ?"
            self._pg = (
                f"UPDATE {name} SET {', '.join(f'{c} = u.{c}' for c in columns)} "
                f"FROM unnest({arrays}, %s::{key_type}[]) AS u({', '.join(columns)}, {key}) "
                f"WHERE {name}.{key} = u.{key}"
            )

    def run(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if is_sqlite(conn):
            conn.exec_driver_sql(self._sqlite, rows)
        else:
            conn.exec_driver_sql(
                self._pg, tuple(list(column) for column in zip(*rows, strict=True))
            )


def sqlite_time(value: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite, for driver-level statements."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
