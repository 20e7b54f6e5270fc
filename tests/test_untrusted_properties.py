"""Property-based tests (hypothesis): generated prompt files and benchmark.toml values through the real command line.

Whatever the input, main.py either accepts it or refuses it in one line with exit 2: never a traceback, an
"unexpected error", a hang, or a run row created before the input was found wrong. Each example runs main.py's entry
point in this process, in a fresh directory with only the generated file in it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
import sqlite3
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from benchmarking.cli import main

from test_cli import READ_VARIABLES

TRICKY_TEXT = ["\ud800", "\udfff", "a\ud83d", "\ud83d\ude00", "\ufeff", "\x00", "\r\n", "\u2028", "---", "/(a+)+$/",
               "/(a)\\1/", "/(?=a)/", "/abc/zz", "/[/", "$\\frac{a}{$", "=1+1", "\x1b[31m", "é" * 3, "𝔘"]
NUMBERS = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 2**31, 2**63, 10**9, 10**9 + 1, 10**19]),
)
TEXT = st.one_of(st.text(max_size=30), st.sampled_from(TRICKY_TEXT),
                 st.lists(st.sampled_from(TRICKY_TEXT), max_size=4).map("".join))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)
PROMPT_KEYS = ["prompt", "messages", "id", "max_tokens", "system", "expect"]
# Each key's values: mostly of the right type (so that the checks after the first are reached), sometimes anything.
MESSAGE = st.fixed_dictionaries({"role": st.one_of(st.sampled_from(["user", "system", "assistant"]), VALUES),
                                 "content": st.one_of(TEXT, TEXT, VALUES)})
PROMPT_VALUES = {"prompt": st.one_of(TEXT, TEXT, VALUES), "messages": st.one_of(st.lists(MESSAGE, max_size=3), VALUES),
                 "id": st.one_of(TEXT, NUMBERS, VALUES),
                 "max_tokens": st.one_of(st.integers(1, 4096), st.integers(1, 4096), NUMBERS, VALUES),
                 "system": st.one_of(TEXT, TEXT, VALUES), "expect": st.one_of(TEXT, TEXT, VALUES)}


@st.composite
def prompt_objects(draw: st.DrawFn) -> object:
    """A prompt file's line as JSON: a prompt, a few more keys, now and then an unknown one or no object at all."""
    if draw(st.integers(0, 19)) == 0:
        return draw(VALUES)
    item: dict[str, object] = {"prompt": draw(TEXT)} if draw(st.integers(0, 3)) else {}
    for key in draw(st.lists(st.sampled_from(PROMPT_KEYS), max_size=3, unique=True)):
        item[key] = draw(PROMPT_VALUES[key])
    if draw(st.integers(0, 29)) == 0:
        item[draw(TEXT)] = draw(VALUES)
    return item


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    lines = []
    for item in draw(st.lists(prompt_objects(), min_size=1, max_size=4)):
        kind = draw(st.sampled_from(["ascii"] * 8 + ["raw", "deep", "digits", "junk"]))
        if kind == "ascii":  # surrogates escaped as \ud800, as most JSON writers do
            lines.append(json.dumps(item, ensure_ascii=True).encode())
        elif kind == "raw":  # as they are: a lone surrogate becomes bytes that are not UTF-8
            lines.append(json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        elif kind == "deep":
            depth = draw(st.integers(1, 50_000))
            lines.append(b'{"prompt": "x", "id": ' + b"[" * depth + b"]" * depth + b"}")
        elif kind == "digits":
            lines.append(b'{"prompt": "x", "max_tokens": ' + b"9" * draw(st.integers(1, 6000)) + b"}")
        else:
            lines.append(draw(st.binary(max_size=40)))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + newline.join(lines) + newline


@st.composite
def txt_files(draw: st.DrawFn) -> bytes:
    parts = draw(st.lists(st.one_of(TEXT, st.text(max_size=200)), min_size=1, max_size=4))
    separator = draw(st.sampled_from(["\n---\n", "\r\n---\r\n", "\n--- \t\n", "\n"]))
    text = draw(st.sampled_from(["", "\ufeff"])) + separator.join(parts)
    return text.encode("utf-8", "surrogatepass")


@contextlib.contextmanager
def fresh_directory():
    """A new empty directory as the working directory, and stdout and stderr captured."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory() as directory:
        os.chdir(directory)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield Path(directory), out, err
        finally:
            os.chdir(previous)


def assert_accepted_or_one_line(status: int, err: str) -> None:
    assert "Traceback" not in err and "unexpected error" not in err, err
    assert status in (0, 2), err
    if status == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("main.py: error: "), err


@pytest.fixture
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if any(part in name for part in READ_VARIABLES):
            monkeypatch.delenv(name)


PROPERTY = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@PROPERTY
@given(data=st.one_of(jsonl_files().map(lambda d: ("p.jsonl", d)), txt_files().map(lambda d: ("p.txt", d))))
def test_any_prompt_file_is_accepted_or_refused_in_one_line(clean_environment, data):
    name, content = data
    with fresh_directory() as (directory, out, err):
        (directory / name).write_bytes(content)
        status = main(["--simulate", "--dry-run", "--prompts", name])
        assert_accepted_or_one_line(status, err.getvalue())
        assert not (directory / "benchmarks.db").exists()


@settings(PROPERTY, max_examples=12)
@given(content=jsonl_files())
def test_a_prompt_file_is_stored_whole_or_refused_before_any_run_row(clean_environment, content):
    """The real run: a line that gets past the checks must also be sendable and storable (the surrogate did not)."""
    with fresh_directory() as (directory, out, err):
        (directory / "p.jsonl").write_bytes(content)
        status = main(["--simulate", "--providers", "openai", "--prompts", "p.jsonl", "--cache", "off"])
        assert_accepted_or_one_line(status, err.getvalue())
        if status == 2:
            assert not (directory / "benchmarks.db").exists()
        else:
            with sqlite3.connect(directory / "benchmarks.db") as conn:
                stored = conn.execute("select count(*) from benchmark_results").fetchone()[0]
                prompts = len(json.loads(conn.execute("select settings from runs").fetchone()[0])["workload"]
                              ["prompts"])
            assert stored == prompts >= 1


def toml_value(value: object) -> str:
    """A TOML literal for the value (strings as basic strings, with \\u escapes for what is not printable)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's, \ud800 included (which TOML refuses)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return '""'


TOML_SCALARS = st.one_of(st.booleans(), NUMBERS.filter(lambda n: not isinstance(n, int) or abs(n) < 2**63), TEXT,
                         st.sampled_from(["http://127.0.0.1:9/v1", "http://[::1/v1", "https://u:p@h/v1?q=1",
                                          "OPENAI_API_KEY", "tokenize", "usage", "2026-01-01", "72h", "0s"]))
TOML_VALUES = st.recursive(TOML_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(TEXT, inner, max_size=2)),
                           max_leaves=6)
TABLE_KEYS = {
    "providers": ["name", "base_url", "model", "models", "api_key_env", "input_price", "output_price",
                  "cached_input_price", "price_as_of", "headers", "token_count"],
    "slo": ["ttft_ms", "latency_ms", "tokens_per_second", "success_rate", "percentile"],
    "alerts": ["rules", "consecutive_failures", "window", "baseline", "regression_threshold"],
}


@st.composite
def toml_files(draw: st.DrawFn) -> bytes:
    lines = []
    for table, keys in TABLE_KEYS.items():
        if not draw(st.booleans()):
            continue
        lines.append("[[providers]]" if table == "providers" else f"[{table}]")
        if table == "providers":  # mostly valid, so the values after the first check are reached too
            lines += ['name = "x"', 'base_url = "http://127.0.0.1:9/v1"', 'model = "m"']
        chosen = draw(st.lists(st.one_of(st.sampled_from(keys), TEXT.filter(lambda k: k.isidentifier())),
                               max_size=3, unique=True))
        for key in chosen:
            lines = [line for line in lines if not line.startswith(f"{key} = ")]
            lines.append(f"{json.dumps(key)} = {toml_value(draw(TOML_VALUES))}")
    text = "\n".join(lines) + "\n"
    return draw(st.sampled_from(["", "\ufeff"])).encode() + text.encode("utf-8", "surrogatepass")


@PROPERTY
@given(content=toml_files())
def test_any_benchmark_toml_is_accepted_or_refused_in_one_line(clean_environment, content):
    with fresh_directory() as (directory, out, err):
        (directory / "benchmark.toml").write_bytes(content)
        status = main(["--simulate", "--dry-run"])
        assert_accepted_or_one_line(status, err.getvalue())
        assert not (directory / "benchmarks.db").exists()


# \udcff: a byte that is not UTF-8, as the environment gives it to Python
URL_PIECES = st.sampled_from(["[", "]", "::1", "zz", ":", "@", "u", "pw", "%", "%zz", "/", "?", "#", "h", "5432",
                              "99999", "-1", ",", "host=x", "[::1]", "[v1.x]", "\udcff", " ", "é"])


@PROPERTY
@given(scheme=st.sampled_from(["postgresql://", "http://", "https://"]),
       pieces=st.lists(URL_PIECES, min_size=1, max_size=8))
def test_any_database_or_base_url_is_accepted_or_refused_in_one_line(clean_environment, monkeypatch, scheme, pieces):
    url = scheme + "".join(pieces) + "/v1"
    variable = "DATABASE_URL" if scheme == "postgresql://" else "OPENAI_BASE_URL"
    monkeypatch.setenv(variable, url)
    with fresh_directory() as (directory, out, err):
        status = main(["--simulate", "--dry-run", "--providers", "openai"])
        assert_accepted_or_one_line(status, err.getvalue())
        if "pw" in pieces and "pw" not in "".join(p for p in pieces if p != "pw"):
            assert "pw" not in err.getvalue().replace("password", "")
