"""Shared fixtures: a fresh simulator per test, provider settings pointed at it, and a temp-dir SQLite file."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarking import redaction
from benchmarking.settings.model import ProviderSettings
from benchmarking.settings.values import Secret
from benchmarking.providers.groq_provider import call_groq
from benchmarking.providers.openai_provider import call_openai
from benchmarking.providers.openrouter_provider import call_openrouter
from benchmarking.providers.together_provider import call_together
from benchmarking.simulator import ModelProfile, Simulator
from benchmarking.storage.sqlite import SQLiteStorage

# A key shaped like a real one, so that a leak of it into any output is caught. Built from parts so that secret
# scanners reading this file do not take a test value for a real key.
FAKE_KEY = "sk-" + "test-FAKEkey0123456789abcdefghij"
# A key of no known shape (only the registry can know it), which changes when URL-encoded (/ + =) and case-folded, and
# is long enough that a cut half of it is still 12 characters: each form of an echo of it is a test of its own.
CANARY_KEY = "Vq3/Lm8+Tz5=Rw2-Hb7/Yc4Nd6"

CALLS = {
    "openai": call_openai,
    "groq": call_groq,
    "together": call_together,
    "openrouter": call_openrouter,
}


@pytest.fixture(autouse=True)
def own_secret_registry():
    """Each test is one process of the tool as far as secrets go: what one registers does not scrub another's output."""
    with redaction.isolated_registry():
        yield


@pytest.fixture
def sim():
    with Simulator(profiles={}, default=ModelProfile(ttft_ms=20, itl_ms=2, output_tokens=8)) as simulator:
        yield simulator


def settings_for(sim: Simulator, provider: str, **changes) -> ProviderSettings:
    settings = ProviderSettings(
        name=provider,
        api_key=Secret(FAKE_KEY),
        key_env=f"{provider.upper()}_API_KEY",
        model_hint=f"set {provider.upper()}_MODEL or --model {provider}=MODEL",
        base_url=sim.base_url(provider),
        timeout_s=10.0,
    )
    return replace(settings, **changes)


@pytest.fixture
def storage(tmp_path):
    with SQLiteStorage(tmp_path / "benchmarks.db") as db:
        yield db


# ---- PostgreSQL: a throwaway database per test ------------------------------------------------------------------
ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=postgres user=postgres connect_timeout=3"
SERVICE_KEY = "service-role-key-for-tests"


def _admin_connection():
    import os

    import psycopg

    try:
        return psycopg.connect(ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as error:
        if os.environ.get("BENCHMARK_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required (BENCHMARK_REQUIRE_POSTGRES is set) but not reachable: {error}")
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {error}")


@pytest.fixture
def pg_database():
    """The name of an empty database created for this test and dropped after it."""
    import secrets

    from psycopg import sql

    admin = _admin_connection()
    name = f"bench_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        try:
            yield name
        finally:
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def pg_url(pg_database):
    return f"postgresql://postgres@127.0.0.1:5432/{pg_database}"


def pg_rows(url: str, query: str, *args: object) -> list[tuple]:
    """Read PostgreSQL directly, to see what really landed."""
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


def apply_schema(url: str) -> None:
    import psycopg

    from benchmarking.storage.postgres_connection import SCHEMA_SQL

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA_SQL.read_text())


@pytest.fixture
def supabase_api(pg_url):
    """A PostgREST stand-in on the test's database (schema applied, as a user would in the SQL editor)."""
    from fake_postgrest import FakePostgrest

    apply_schema(pg_url)
    with FakePostgrest(pg_url, SERVICE_KEY) as api:
        yield api


@pytest.fixture(params=["sqlite", "postgres", "supabase"])
def open_backend(request, tmp_path):
    """A function that opens the parametrised backend on this test's database (again and again, same data)."""
    from benchmarking.settings.values import Secret
    from benchmarking.storage.postgres import PostgresStorage
    from benchmarking.storage.sqlite import SQLiteStorage
    from benchmarking.storage.supabase import SupabaseStorage

    if request.param == "sqlite":
        return lambda: SQLiteStorage(tmp_path / "benchmarks.db")
    url = request.getfixturevalue("pg_url")
    if request.param == "postgres":
        return lambda: PostgresStorage(url, timeout_s=5)
    api = request.getfixturevalue("supabase_api")
    return lambda: SupabaseStorage(api.url, Secret(SERVICE_KEY), timeout_s=5)


# ---- Disks that fill: a small tmpfs per test (root only, as in CI) -----------------------------------------------
def _mount_tmpfs(directory, options: str) -> None:
    """Mount a tmpfs there; where that cannot be done the test skips, or fails under BENCHMARK_REQUIRE_TMPFS (CI)."""
    import os
    import subprocess

    def unavailable(reason: str) -> None:
        if os.environ.get("BENCHMARK_REQUIRE_TMPFS"):
            pytest.fail(f"a tmpfs is required (BENCHMARK_REQUIRE_TMPFS is set) but {reason}")
        pytest.skip(reason)

    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root (CI runs the suite as root)")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
                              capture_output=True, text=True)
    except OSError as exc:  # no mount command at all
        unavailable(f"cannot run mount: {exc}")
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def _unmount(directory) -> None:
    import subprocess

    subprocess.run(["umount", "-l", str(directory)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 128 KiB tmpfs mounted for this test (room for an empty database of three tables and their indexes, and
    its journal): fill it with fill_disk() to make writes fail with ENOSPC."""
    directory = tmp_path / "small-disk"
    _mount_tmpfs(directory, "size=128k,mode=0755")
    yield directory
    _unmount(directory)


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory no write can go to (a read-only tmpfs; root ignores permission bits, a mount it cannot)."""
    directory = tmp_path / "read-only"
    _mount_tmpfs(directory, "ro,size=64k,mode=0755")
    yield directory
    _unmount(directory)


def fill_disk(directory, leave_bytes: int = 0):
    """Fill the file system under `directory` with a filler file, then free about `leave_bytes`; returns the file."""
    import os

    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for chunk in (65536, 4096, 512, 1):  # smaller and smaller, until not a byte more fits
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    if leave_bytes:
        os.truncate(filler, max(0, filler.stat().st_size - leave_bytes))
    return filler
