"""A local stand-in for Supabase's REST API: the subset of PostgREST that supabase-py uses, run on a real PostgreSQL.

What supabase-py / postgrest-py 2.34.1 sends (headers on every call: `apikey: <key>`, `Authorization: Bearer <key>`,
`Accept-Profile: public`, `Content-Profile: public`):

- `insert(row, returning="minimal")`      POST  /rest/v1/<table>   Prefer: return=minimal
- `insert([rows])`                        POST  /rest/v1/<table>?columns="a","b"   (each key double-quoted)
- `upsert(rows, on_conflict="id", ignore_duplicates=True, returning="minimal")`
                                          POST  /rest/v1/<table>?on_conflict=id&columns="a","b"
                                          Prefer: return=minimal,resolution=ignore-duplicates (merge-duplicates if not)
- `update({...}).eq("id", v)`             PATCH /rest/v1/<table>?id=eq.v   Prefer: return=representation
- `select("*").eq("run_id", v).order("created_at").limit(n)`
                                          GET   /rest/v1/<table>?select=*&run_id=eq.v&order=created_at.asc&limit=n
- `in_("id", [a, "b,c"])`, `is_("x", None)`   id=in.(a,"b,c"), x=is.null

postgrest-py retries a GET or HEAD (not POST or PATCH) 3 times, sleeping 1, 2 and 4 s, on a 503 or a network error.

Like PostgREST, values go to PostgreSQL as untyped parameters (psycopg sends a Python str as `unknown`), so the server
casts them to each column's type, and rows come back as `json_agg` output: timestamps as ISO strings, numeric as JSON
numbers, jsonb as JSON.
"""

from __future__ import annotations

import csv
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import re
import socket
import struct
import sys
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import psycopg
from psycopg import sql

OPERATORS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
IS_VALUES = {"null": "NULL", "not_null": "NOT NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}
RESERVED_PARAMS = {"select", "order", "limit", "offset", "columns", "on_conflict"}
# PostgREST's mapping of SQLSTATE to HTTP status, for the codes a storage backend can meet; the rest are 400.
STATUS_BY_SQLSTATE = {"23503": 409, "23505": 409, "42P01": 404, "42883": 404, "42501": 403, "25006": 405}
STATUS_BY_CLASS = {"08": 503, "53": 503, "40": 500, "XX": 500}
NAME = re.compile(r'"?(\w+)"?')
Query = tuple[sql.Composable | None, list[str]]  # a statement (None: nothing to run) and its parameters


class RestError(Exception):
    """An error answered as PostgREST's JSON body: code, message, details, hint."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, hint: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "message": message, "details": details, "hint": hint}


def _from_postgres(error: psycopg.Error) -> RestError:
    """A PostgreSQL error as PostgREST reports it: the SQLSTATE as code, its status mapping."""
    state = error.sqlstate or "XX000"
    status = STATUS_BY_SQLSTATE.get(state) or STATUS_BY_CLASS.get(state[:2], 400)
    diag = error.diag
    return RestError(status, state, diag.message_primary or str(error), diag.message_detail, diag.message_hint)


def _name(text: str) -> str:
    """A plain column name, maybe double-quoted (postgrest-py quotes the names in columns=)."""
    match = NAME.fullmatch(text.strip())
    if not match:
        raise RestError(400, "PGRST100", f"FakePostgrest supports only plain column names, not {text!r}")
    return match.group(1)


def _names(value: str) -> list[str]:
    """A comma list of plain column names, as in select=, columns= and on_conflict=."""
    return [_name(part) for part in value.split(",")]


def _in_values(operand: str) -> list[str]:
    """The list in `in.(a,"b,c")`: PostgREST quotes an element with double quotes and escapes with a backslash."""
    if not (operand.startswith("(") and operand.endswith(")")):
        raise RestError(400, "PGRST100", f"failed to parse filter (in.{operand})")
    inner = operand[1:-1]
    if not inner:
        return []
    return next(csv.reader([inner], quotechar='"', escapechar="\\", doublequote=False))


class Table:
    """One table's columns and primary key, read from information_schema for each request, as a schema cache."""

    def __init__(self, conn: psycopg.Connection, schema: str, name: str) -> None:
        self.schema, self.name = schema, name
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [schema, name],
        ).fetchall()
        if not rows:
            raise RestError(404, "PGRST205", f"Could not find the table '{schema}.{name}' in the schema cache")
        self.columns = [row[0] for row in rows]
        self.primary_key = [row[0] for row in conn.execute(
            "SELECT k.column_name FROM information_schema.table_constraints c"
            " JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)"
            " WHERE c.table_schema = %s AND c.table_name = %s AND c.constraint_type = 'PRIMARY KEY'"
            " ORDER BY k.ordinal_position",
            [schema, name],
        ).fetchall()]
        self.ident = sql.Identifier(schema, name)

    def column(self, name: str) -> sql.Identifier:
        """A column referenced by a select, filter, order or on_conflict; PostgreSQL's 42703 when there is none."""
        if name not in self.columns:
            raise RestError(400, "42703", f"column {self.name}.{name} does not exist")
        return sql.Identifier(name)

    def body_column(self, name: str) -> sql.Identifier:
        """A column written from the body or named in columns=: PostgREST's own PGRST204 when there is none."""
        if name not in self.columns:
            raise RestError(400, "PGRST204", f"Could not find the '{name}' column of '{self.name}' in the schema cache")
        return sql.Identifier(name)

    def select_list(self, params: dict[str, str]) -> sql.Composable:
        """The output columns of select= (default *): `*` or plain names only, no embedding, casts or aliases."""
        select = params.get("select", "*").strip()
        if select == "*":
            return sql.SQL("*")
        return sql.SQL(", ").join(self.column(name) for name in _names(select))

    def where(self, filters: list[tuple[str, str]]) -> tuple[sql.Composable, list[str]]:
        """A WHERE clause for `col=op.value` filters (eq, neq, gt, gte, lt, lte, is, in; each may be not.-prefixed)."""
        clauses, args = [], []
        for key, value in filters:
            column = self.column(_name(key))
            negate = value.startswith("not.")
            op, _, operand = value.removeprefix("not.").partition(".")
            if op in OPERATORS:
                clause = sql.SQL("{} {} %s").format(column, sql.SQL(OPERATORS[op]))
                args.append(operand)
            elif op == "is" and operand.lower() in IS_VALUES:
                clause = sql.SQL("{} IS {}").format(column, sql.SQL(IS_VALUES[operand.lower()]))
            elif op == "in":
                values = _in_values(operand)
                # `in.()` matches nothing in PostgREST, and `IN ()` is not valid SQL.
                placeholders = sql.SQL(", ").join(sql.Placeholder() for _ in values)
                clause = sql.SQL("{} IN ({})").format(column, placeholders) if values else sql.SQL("FALSE")
                args.extend(values)
            else:
                raise RestError(400, "PGRST100", f"failed to parse filter ({value})")
            clauses.append(sql.SQL("NOT ({})").format(clause) if negate else clause)
        if not clauses:
            return sql.SQL(""), args
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(clauses), args

    def order_by(self, order: str | None) -> sql.Composable:
        """ORDER BY for `order=col.asc|desc[.nullsfirst|.nullslast],...`."""
        if not order:
            return sql.SQL("")
        terms = []
        for term in order.split(","):
            name, *options = term.split(".")
            words = {"asc": "ASC", "desc": "DESC", "nullsfirst": "NULLS FIRST", "nullslast": "NULLS LAST"}
            if any(option not in words for option in options):
                raise RestError(400, "PGRST100", f"failed to parse order ({order})")
            terms.append(sql.SQL(" ").join([self.column(_name(name)), *(sql.SQL(words[o]) for o in options)]))
        return sql.SQL(" ORDER BY ") + sql.SQL(", ").join(terms)


def _as_json(statement: sql.Composable) -> sql.Composable:
    """Wrap a query so that PostgreSQL renders its rows as one JSON array, the way PostgREST does."""
    return sql.SQL(
        "WITH pgrst_source AS ({}) SELECT coalesce(json_agg(pgrst_source), '[]')::text FROM pgrst_source"
    ).format(statement)


def _int_param(params: dict[str, str], name: str) -> sql.Composable:
    """LIMIT/OFFSET from the query string, checked to be a non-negative integer."""
    value = params.get(name)
    if value is None:
        return sql.SQL("")
    if not value.isdigit():
        raise RestError(400, "PGRST100", f"failed to parse {name} ({value})")
    return sql.SQL(" {} {}").format(sql.SQL(name.upper()), sql.Literal(int(value)))


def _rows(body: bytes) -> list[dict[str, Any]]:
    """The request body as a list of rows: a JSON object is one row."""
    try:
        data = json.loads(body or b"null")
    except ValueError:
        data = None
    rows = [data] if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise RestError(400, "PGRST102", "Empty or invalid json")
    return rows


class FakePostgrest:
    """Serve /rest/v1/<table> on a free loopback port in a background thread: `with FakePostgrest(dsn, key) as api`."""

    def __init__(self, dsn: str, service_key: str) -> None:
        self.dsn = dsn
        self.service_key = service_key
        # up | down (503) | reset (connection reset, no answer) | hang (answer after hang_s, or never if stopped first)
        self.mode = "up"
        self.hang_s = 30.0
        self.requests: list[tuple[str, str | None]] = []
        self.stopping = threading.Event()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-postgrest", daemon=True
        )

    @property
    def url(self) -> str:
        """The Supabase project URL to give create_client; supabase-py appends /rest/v1/<table>."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakePostgrest":
        """Start answering requests."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake any hanging request, stop serving and release the port."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakePostgrest":
        """Start; stopped on leaving the with block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop."""
        self.stop()

    def answer(
        self, method: str, table: str | None, query: str, headers: Message, body: bytes
    ) -> tuple[int, str | None]:
        """Run one request on PostgreSQL in its own transaction: (status, JSON text or None for no body)."""
        if headers.get("apikey") != self.service_key or headers.get("Authorization") != f"Bearer {self.service_key}":
            raise RestError(401, "PGRST301", "Invalid API key or JWT: expected the service key")
        if table is None:
            raise RestError(404, "PGRST125", "Invalid path specified in request URL")
        schema = headers.get("Content-Profile" if method in ("POST", "PATCH") else "Accept-Profile") or "public"
        if schema != "public":
            hint = "Only the following schemas are exposed: public"
            raise RestError(406, "PGRST106", f"Invalid schema: {schema}", hint=hint)
        pairs = parse_qsl(query, keep_blank_values=True)
        params = dict(pairs)
        filters = [(key, value) for key, value in pairs if key not in RESERVED_PARAMS]
        prefer = {token.strip() for value in headers.get_all("Prefer", []) for token in value.split(",")}
        try:
            conn = psycopg.connect(self.dsn, connect_timeout=5)
        except psycopg.OperationalError as error:
            raise RestError(503, "PGRST000", "Database connection error", str(error)) from error
        # The context manager commits on success and rolls back on any error, so each request is one transaction.
        with conn:
            conn.execute("SET TIME ZONE 'UTC'")  # Supabase databases run in UTC
            target = Table(conn, schema, table)
            if method in ("GET", "HEAD"):
                status, (statement, args) = 200, self._select(target, params, filters)
            elif method == "POST":
                status, (statement, args) = 201, self._insert(target, params, prefer, body)
            elif method == "PATCH":
                status, (statement, args) = 200, self._update(target, params, filters, body)
            else:
                raise RestError(405, "PGRST117", f"Unsupported HTTP method: {method}")
            if method in ("POST", "PATCH") and "return=representation" not in prefer:
                if statement is not None:
                    self._run(conn, statement, args)
                return (204 if method == "PATCH" else status), None
            if statement is None:
                return status, "[]"
            return status, self._run(conn, _as_json(statement), args).fetchone()[0]

    @staticmethod
    def _run(conn: psycopg.Connection, statement: sql.Composable, args: list[str]) -> psycopg.Cursor:
        """Execute, turning a PostgreSQL error into PostgREST's answer for it."""
        try:
            return conn.execute(statement, args)
        except psycopg.Error as error:
            raise _from_postgres(error) from error

    @staticmethod
    def _select(target: Table, params: dict[str, str], filters: list[tuple[str, str]]) -> Query:
        """SELECT for GET: select=, filters, order=, limit=, offset=."""
        where, args = target.where(filters)
        statement = sql.SQL("SELECT {} FROM {}").format(target.select_list(params), target.ident)
        statement += where + target.order_by(params.get("order"))
        return statement + _int_param(params, "limit") + _int_param(params, "offset"), args

    @staticmethod
    def _insert(target: Table, params: dict[str, str], prefer: set[str], body: bytes) -> Query:
        """INSERT for POST, with ON CONFLICT for Prefer resolution=ignore-duplicates or merge-duplicates."""
        rows = _rows(body)
        if not rows:
            return None, []
        # Like PostgREST: the columns are those named in columns= (the client sends it for lists) or the rows' keys,
        # and a row that lacks one gets NULL; columns not named at all get their defaults.
        if "columns" in params:
            names = _names(params["columns"])
        else:
            names = list(dict.fromkeys(key for row in rows for key in row))
        columns = sql.SQL(", ").join(target.body_column(name) for name in names)
        statement = sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s::json)"
        ).format(table=target.ident, columns=columns)
        resolution = {"resolution=ignore-duplicates", "resolution=merge-duplicates"} & prefer
        if resolution:
            keys = _names(params["on_conflict"]) if params.get("on_conflict") else target.primary_key
            conflict = sql.SQL(", ").join(target.column(key) for key in keys)
            if resolution == {"resolution=ignore-duplicates"}:
                statement += sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(conflict)
            else:
                updates = sql.SQL(", ").join(
                    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name)) for name in names
                )
                statement += sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(conflict, updates)
        return statement + sql.SQL(" RETURNING {}").format(target.select_list(params)), [json.dumps(rows)]

    @staticmethod
    def _update(target: Table, params: dict[str, str], filters: list[tuple[str, str]], body: bytes) -> Query:
        """UPDATE for PATCH: the body's keys set from the JSON object, on the rows the filters match."""
        rows = _rows(body)
        if len(rows) != 1:
            raise RestError(400, "PGRST102", "Empty or invalid json")
        if not rows[0]:
            return None, []
        columns = sql.SQL(", ").join(target.body_column(name) for name in rows[0])
        where, args = target.where(filters)
        statement = sql.SQL(
            "UPDATE {table} SET ({columns}) = (SELECT {columns} FROM json_populate_record(NULL::{table}, %s::json))"
        ).format(table=target.ident, columns=columns)
        returning = sql.SQL(" RETURNING {}").format(target.select_list(params))
        return statement + where + returning, [json.dumps(rows[0]), *args]


class _Server(ThreadingHTTPServer):
    """The HTTP server, holding the FakePostgrest that its handlers answer for."""

    daemon_threads = True

    def __init__(self, fake: FakePostgrest) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (its timeout, a reset) is expected here; anything else is a bug worth showing.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """One connection: one request, answered by FakePostgrest.answer unless a failure mode is on."""

    # HTTP/1.0 closes each connection after its answer, so no handler thread outlives a test waiting for the next.
    protocol_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # the test output stays quiet
        pass

    def _handle(self) -> None:
        """Every method: apply the failure mode, else answer from PostgreSQL."""
        fake = self.server.fake
        url = urlsplit(self.path)
        match = re.fullmatch(r"/rest/v1/([^/]+)/?", url.path)
        table = match.group(1) if match else None
        fake.requests.append((self.command, table))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if fake.mode == "hang" and fake.stopping.wait(fake.hang_s):
            return
        if fake.mode == "reset":
            # SO_LINGER 0 makes close() send an RST instead of a FIN: the client sees a reset, not a clean close.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        if fake.mode == "down":
            self._send(503, json.dumps({"message": "Service Unavailable"}))
            return
        try:
            status, payload = fake.answer(self.command, table, url.query, self.headers, body)
        except RestError as error:
            status, payload = error.status, json.dumps(error.body)
        self._send(status, payload)

    def _send(self, status: int, payload: str | None) -> None:
        """Answer with a JSON body, or none (payload None); HEAD gets the headers only."""
        data = b"" if payload is None else payload.encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        if status != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PATCH = do_DELETE = do_PUT = _handle
