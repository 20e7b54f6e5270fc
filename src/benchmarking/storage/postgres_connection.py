"""PostgreSQL's connection guard: timeouts, a watchdog for a frozen server, reconnects, the schema check on connect."""

from __future__ import annotations

from functools import lru_cache
import math
import os
from pathlib import Path
import re
import socket
import threading
import time
from typing import Any, Callable, TypeVar

from ..errors import ConfigError, StorageRejected, StorageUnavailable
from .schema import ALERTS_COLUMNS, RESULTS_COLUMNS, RUNS_COLUMNS

SCHEMA_SQL = Path(__file__).resolve().parents[3] / "schema.sql"
_MIGRATION_LOCK = 0x62656E63  # pg_advisory_xact_lock key: two machines upgrading at once take turns
T = TypeVar("T")

# SQLSTATE classes that say the server or the connection is the trouble, not the row: connection exceptions (08),
# invalid authorization (28), no such database (3D), transaction rollback such as a deadlock (40), insufficient
# resources such as a full disk (53), object not available such as a lock (55), operator intervention such as an
# admin shutdown or a statement timeout (57), system errors (58) and internal errors (XX); and a read-only
# transaction (25006: a standby after a failover), and permission denied (42501: the grants, not the row).
# Everything else (data exceptions 22, integrity 23, syntax and schema 42, program limits 54 such as an index row too
# large, ...) is the row's fault: retrying it would fail the same way, so it must not hold up the rows behind it.
# The watchdog waits this much longer than statement_timeout, so that a server that is slow but alive cancels the
# statement itself (a clean error, nothing written late) and only a frozen one has its connection cut.
WATCHDOG_GRACE_S = 1.0
_UNAVAILABLE_CLASSES = frozenset({"08", "28", "3D", "40", "53", "55", "57", "58", "XX"})
_UNAVAILABLE_STATES = frozenset({"25006", "42501"})


def is_unavailable(exc: BaseException) -> bool:
    """Whether a psycopg error means the database is unavailable (retry later) rather than the row refused."""
    import psycopg

    state = getattr(exc, "sqlstate", None)
    if state:
        return state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES
    # No SQLSTATE: raised by the client. Connection-level (refused, reset, timed out) or the row's (a value psycopg
    # cannot send, like NUL in text).
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


class _Watchdog:
    """Cuts the connection of a database call that outlives its deadline.

    psycopg's connect_timeout covers only the connection, and the server-side statement_timeout, keepalives and
    tcp_user_timeout do not fire when a server (or a proxy in front of it) accepted the connection and then froze:
    its kernel still acknowledges every packet. Shutting the socket down from another thread makes the blocked call
    fail at once with a connection error. One thread per backend, waiting on a condition, so a call costs no thread.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._condition = threading.Condition()
        self._deadline: float | None = None
        self._connection: Any = None
        self._fired = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def arm(self) -> None:
        with self._condition:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="postgres-watchdog", daemon=True)
                self._thread.start()
            self._deadline = time.monotonic() + self._timeout_s
            self._connection, self._fired = None, False
            self._condition.notify()

    def watch(self, connection: Any) -> None:
        """The connection the armed call uses, once it exists (connect_timeout bounds the time before)."""
        with self._condition:
            self._connection = connection
            if self._fired:
                _cut(connection)

    def disarm(self) -> bool:
        """End the call's watch; True if the watchdog cut its connection."""
        with self._condition:
            self._deadline, self._connection = None, None
            return self._fired

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()

    def _loop(self) -> None:
        with self._condition:
            while not self._closed:
                if self._deadline is None:
                    self._condition.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                self._fired, self._deadline = True, None
                if self._connection is not None:
                    _cut(self._connection)


def _cut(connection: Any) -> None:
    """Shut the connection's socket down (not close: psycopg still owns the descriptor)."""
    try:
        fd = connection.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # already closed or broken: nothing left to cut
        pass


class GuardedConnection:
    """One connection, autocommit, a statement timeout; reconnects on the next call after a failure."""

    def __init__(self, url: str, location: str, timeout_s: float, migrate: bool) -> None:
        self.location = location
        self._url = url
        self._timeout_s = timeout_s
        self._migrate = migrate
        self._connection: Any = None
        self._watchdog = _Watchdog(timeout_s + WATCHDOG_GRACE_S)

    def _connect(self) -> Any:
        import psycopg

        if self._connection is not None and not self._connection.closed:
            self._watchdog.watch(self._connection)
            return self._connection
        timeout_ms = int(self._timeout_s * 1000)
        # statement_timeout bounds a slow server; keepalives and tcp_user_timeout bound a connection that died
        # silently, which the server cannot report; the watchdog bounds a server that froze. UTF-8 on the wire:
        # otherwise psycopg encodes text in the database's encoding (LATIN1, say) itself and fails outside any SQLSTATE;
        # this way the server converts, and refuses what it cannot hold with 22P05 (rejected, with its reason).
        connection = psycopg.connect(
            self._url,
            autocommit=True,
            client_encoding="utf8",
            connect_timeout=max(1, math.ceil(self._timeout_s)),
            options=f"-c statement_timeout={timeout_ms}",
            keepalives=1,
            keepalives_idle=max(1, int(self._timeout_s / 2)),
            keepalives_interval=1,
            keepalives_count=2,
            tcp_user_timeout=timeout_ms,
        )
        self._watchdog.watch(connection)
        try:
            if self._migrate:
                self._apply_schema(connection)
            else:
                self._require_tables(connection)
        except psycopg.Error as exc:
            connection.close()
            if is_unavailable(exc):
                raise
            raise ConfigError(f"{self.location}: cannot apply schema.sql: {_one_line(exc)}") from None
        except ConfigError:
            connection.close()
            raise
        self._connection = connection
        return connection

    @staticmethod
    def _apply_schema(connection: Any) -> None:
        """Run schema.sql (idempotent) under an advisory lock, unless the catalog shows everything it makes is there.

        Its `add column if not exists` takes an exclusive lock on the table even when the column exists: run on
        every connect, it made each command wait for every long read under way (a report over a million rows, a
        dashboard's query), and every read wait behind it.
        """
        if _schema_in_place(connection):
            return
        sql = SCHEMA_SQL.read_text(encoding="utf-8")
        with connection.transaction():
            connection.execute("select pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            connection.execute(sql)

    def _require_tables(self, connection: Any) -> None:
        found = {
            (table, column)
            for table, column in connection.execute(
                "select table_name, column_name from information_schema.columns"
                " where table_schema = current_schema() and table_name in ('runs', 'benchmark_results', 'alerts')"
            )
        }
        expected = {("runs", c) for c, _ in RUNS_COLUMNS} | {("benchmark_results", c) for c, _ in RESULTS_COLUMNS}
        expected |= {("alerts", c) for c, _ in ALERTS_COLUMNS}
        missing = sorted(expected - found)
        if missing:
            table, column = missing[0]
            raise ConfigError(
                f"{self.location}: column {table}.{column} is missing ({len(missing)} in all); "
                "run schema.sql, or unset BENCHMARK_NO_MIGRATE to let the tool apply it"
            )

    def run(self, what: str, action: Callable[[Any], T]) -> T:
        """Do one database action within the timeout, turning psycopg's errors into ours by their cause."""
        import psycopg

        self._watchdog.arm()
        cut = False
        try:
            try:
                return action(self._connect())
            finally:
                cut = self._watchdog.disarm()
                if cut:  # even if the call returned just in time, its connection is gone: start afresh next time
                    self._drop_connection()
        except ConfigError as exc:  # tables missing on a reconnect mid-run: keep the row, with the reason
            raise StorageRejected(f"{what}: {exc}") from None
        except UnicodeError as exc:  # text that cannot be encoded for the wire: the row's, not the connection's
            raise StorageRejected(f"{what}: rejected: {_one_line(exc)}") from None
        except psycopg.Error as exc:
            if cut:
                raise StorageUnavailable(
                    f"{what}: {self.location} unavailable: no answer within {self._timeout_s + WATCHDOG_GRACE_S:g} s"
                ) from None
            if is_unavailable(exc):
                self._drop_connection()
                raise StorageUnavailable(f"{what}: {self.location} unavailable: {_one_line(exc)}") from None
            raise StorageRejected(f"{what}: rejected by {self.location}: {_one_line(exc)}") from None

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def close(self) -> None:
        self._watchdog.close()
        if self._connection is not None:
            self._connection.close()


_TABLES = {"runs": RUNS_COLUMNS, "benchmark_results": RESULTS_COLUMNS, "alerts": ALERTS_COLUMNS}
# What schema.sql makes, by kind of statement (a test checks that it holds no other kind): tables and their columns
# (schema.py mirrors them), indexes by name, and row-level security.
SCHEMA_STATEMENTS = {
    "table": re.compile(r"create table if not exists (\w+) \(", re.I),
    "column": re.compile(r"alter table (\w+) add column if not exists (\w+) ", re.I),
    "index": re.compile(r"create (?:unique )?index if not exists (\w+)\s+on ", re.I),
    "security": re.compile(r"alter table (\w+) enable row level security", re.I),
}


@lru_cache(maxsize=1)
def _schema_objects() -> frozenset[str]:
    """Every column ('table.column'), index and table with row-level security schema.sql makes."""
    text = SCHEMA_SQL.read_text(encoding="utf-8")
    objects = {f"{table}.{column}" for table, columns in _TABLES.items() for column, _ in columns}
    objects |= {f"index {name}" for name in SCHEMA_STATEMENTS["index"].findall(text)}
    return frozenset(objects | {f"security {name}" for name in SCHEMA_STATEMENTS["security"].findall(text)})


def _schema_in_place(connection: Any) -> bool:
    """Whether the current schema holds everything schema.sql makes: one read of the catalog, no lock taken."""
    found = connection.execute(
        """select c.relname || '.' || a.attname from pg_class c join pg_attribute a on a.attrelid = c.oid
             where c.relnamespace = current_schema()::regnamespace and c.relkind in ('r', 'p') and a.attnum > 0
               and not a.attisdropped and c.relname = any(%s)
           union all select 'index ' || relname from pg_class
             where relnamespace = current_schema()::regnamespace and relkind in ('i', 'I')
           union all select 'security ' || relname from pg_class
             where relnamespace = current_schema()::regnamespace and relrowsecurity""", (list(_TABLES),)).fetchall()
    return _schema_objects() <= {name for (name,) in found}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
