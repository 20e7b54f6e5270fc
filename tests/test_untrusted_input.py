"""Untrusted input, bounded: expect patterns, prompt files, stored names in CSV and charts, base URLs, database URLs.

Each input gets a bound, and hitting it is one line and exit 2 before anything is stored, never a hang, a traceback
or a lost row. The property-based tests over the same inputs are in test_untrusted_properties.py.
"""

from __future__ import annotations

import csv
from dataclasses import replace
import io
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

from benchmarking.cli import main
from benchmarking.settings.model import ProviderSettings
from benchmarking.settings.values import Secret
from benchmarking.errors import ConfigError
from benchmarking.providers.custom_provider import call_custom
from benchmarking.providers.groq_provider import call_groq
from benchmarking.providers.together_provider import call_together
from benchmarking.workloads import Expectation, load_prompt_file

from conftest import FAKE_KEY
from test_bad_input import assert_refused, cli  # noqa: F401  (cli is a fixture)
from test_cli import rows, run_main
from test_custom_endpoints import tokenizer_routes
from test_wire_truth import USAGE, chunk, stream
from wire_server import WireServer

SRC = Path(__file__).resolve().parent.parent / "src"


# ---- expect: no pattern can backtrack ---------------------------------------------------------------------------

def test_a_pattern_that_backtracks_in_python_is_judged_at_once():
    """The reported "/(a+)+$/" against a long run of a's: linear in RE2, 2**40 steps in Python's re."""
    code = ("from benchmarking.workloads import Expectation\n"
            "e = Expectation.parse('/(a+)+$/', 'p.jsonl line 1')\n"
            "print(e.met_by('a' * 40 + 'b'), e.met_by('a' * 40))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=SRC, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "True"], done.stderr


def test_a_run_judges_a_backtracking_pattern_and_stores_the_result(tmp_path):
    (tmp_path / "set.jsonl").write_text('{"id": "bad", "prompt": "say a", "expect": "/(a+)+$/"}\n')
    answer = stream(chunk({"content": "a" * 5000 + "b"}, "stop"), chunk(None, usage=USAGE))
    with WireServer() as server:
        server.reply(answer)
        (tmp_path / "benchmark.toml").write_text(
            f'[[providers]]\nname = "local"\nbase_url = "{server.url}/v1"\nmodel = "m"\n')
        done = run_main(tmp_path, "--providers", "local", "--prompts", "set.jsonl", "--cache", "off", timeout=120)
    assert done.returncode == 0, done.stderr
    assert [(r["prompt_id"], r["answer_ok"]) for r in rows(tmp_path / "benchmarks.db",
                                                           "select prompt_id, answer_ok from benchmark_results")] \
        == [("bad", 0)]


@pytest.mark.parametrize("expect, why", [
    ("/(a)\\\\1/", "backreference"),
    ("/(?=a)b/", "lookaround"),
    ("/(?<!a)b/", "lookaround"),
    ("/[/", "not a valid regular expression"),
])
def test_patterns_re2_cannot_run_are_refused_at_load_naming_file_and_line(cli, tmp_path, expect, why):
    files = {"p.jsonl": b'{"prompt": "fine"}\n' + ('{"prompt": "x", "expect": "%s"}\n' % expect).encode()}
    status, out, err = cli("--simulate", "--prompts", "p.jsonl", files=files)
    assert_refused(tmp_path, status, out, err, "p.jsonl line 2: expect ")
    assert why in err


def test_a_refused_pattern_is_one_line_on_the_real_stderr_with_no_engine_log(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"prompt": "x", "expect": "/(a)\\\\1/"}\n')
    done = run_main(tmp_path, "--simulate", "--prompts", "p.jsonl")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "p.jsonl line 1: expect" in done.stderr, done.stderr


@pytest.mark.parametrize("text", ["/abc/zz", "/abc/iz", "/abc/I", "/a/g"])
def test_unknown_flags_are_refused_not_read_as_a_substring(text):
    with pytest.raises(ConfigError, match=r"p line 3: expect .* unknown flag '.'.* i, m, s or x"):
        Expectation.parse(text, "p line 3")


def test_the_flags_known_today_still_work():
    assert Expectation.parse("/A.C/is", "x").met_by("a\nc")
    assert not Expectation.parse("/A.C/i", "x").met_by("a\nc")
    assert Expectation.parse("/^b$/m", "x").met_by("a\nb\nc")
    assert not Expectation.parse("/^b$/", "x").met_by("a\nb\nc")
    verbose = Expectation.parse("/ a b [ ] c  # a comment\n d /x", "x")
    assert verbose.met_by("xab cd") and not verbose.met_by("abcd")
    assert Expectation.parse("/a\\ b/x", "x").met_by("a b")
    assert Expectation.parse("/a\u00a0b c/x", "x").met_by("a\u00a0bc")  # as re.X: a no-break space is pattern
    assert Expectation.parse("a/b", "x").pattern is None and Expectation.parse("a/b", "x").met_by("xa/by")
    assert Expectation.parse("/a/1", "x").met_by("/a/1")  # not letters after the slash: a substring
    assert Expectation.parse("/Ünï/i", "x").met_by("üNÏ")  # unicode, case-folded


def test_an_expectation_survives_the_trip_to_a_worker_process():
    import pickle

    expect = pickle.loads(pickle.dumps(Expectation.parse("/^a+$/i", "x")))
    assert expect.met_by("AAA") and not expect.met_by("AAB")


# ---- prompt files: a bound for every format, regular files only, validated before any run row -------------------

def test_the_5_mb_limit_holds_for_a_txt_prompt_file(cli, tmp_path):
    files = {"big.txt": b"word " * 1_200_000}  # 6 MB: under the old 50 MB file limit, over the 5 MB prompt limit
    status, out, err = cli("--simulate", "--prompts", "big.txt", files=files)
    assert_refused(tmp_path, status, out, err, "--prompts big.txt is over 5 MB")


def test_the_5_mb_limit_holds_for_the_whole_jsonl_file(cli, tmp_path):
    line = json.dumps({"prompt": "w " * 500_000}).encode() + b"\n"  # 1 MB a line, each fine alone
    files = {"big.jsonl": b"".join(line.replace(b'"prompt"', b'"id": %d, "prompt"' % i) for i in range(6))}
    status, out, err = cli("--simulate", "--prompts", "big.jsonl", files=files)
    assert_refused(tmp_path, status, out, err, "--prompts big.jsonl is over 5 MB")


@pytest.mark.parametrize("flag", ["--prompts", "--prompt-file"])
def test_a_fifo_is_refused_before_anything_reads_it(tmp_path, flag):
    os.mkfifo(tmp_path / "p.txt")  # nothing ever writes to it: reading would wait for ever
    done = run_main(tmp_path, "--simulate", flag, "p.txt", timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"main.py: error: {flag} p.txt is not a regular file (a FIFO): give a file"
    assert not (tmp_path / "benchmarks.db").exists()


@pytest.mark.parametrize("flag", ["--prompts", "--prompt-file"])
def test_a_device_behind_a_file_name_is_refused_before_anything_reads_it(cli, tmp_path, flag):
    (tmp_path / "zero.txt").symlink_to("/dev/zero")  # endless: reading it would fill the memory
    status, out, err = cli("--simulate", flag, "zero.txt")
    assert_refused(tmp_path, status, out, err, f"{flag} zero.txt is not a regular file (a character device)")


@pytest.mark.parametrize("flag", ["--prompts", "--prompt-file"])
def test_a_directory_is_refused(cli, tmp_path, flag):
    (tmp_path / "d.txt").mkdir()
    status, out, err = cli("--simulate", flag, "d.txt")
    assert_refused(tmp_path, status, out, err, f"{flag} d.txt is not a regular file (a directory)")


@pytest.mark.parametrize("escaped", ["\\ud800", "\\udfff", "ok \\udc80 ok"])
@pytest.mark.parametrize("key", ["prompt", "system", "expect", "id"])
def test_a_lone_surrogate_is_exit_2_with_the_line_number_and_no_run_row(cli, tmp_path, escaped, key):
    bad = {"prompt": "p", key: "__X__"}
    line = json.dumps(bad).replace("__X__", escaped)
    files = {"p.jsonl": b'{"prompt": "fine"}\n\n' + line.encode() + b"\n"}
    status, out, err = cli("--simulate", "--prompts", "p.jsonl", files=files)
    assert_refused(tmp_path, status, out, err, "p.jsonl line 3: ")
    assert "surrogate" in err


def test_a_lone_surrogate_in_messages_is_refused(cli, tmp_path):
    files = {"p.jsonl": b'{"messages": [{"role": "user", "content": "a\\ud83d"}]}\n'}
    status, out, err = cli("--simulate", "--prompts", "p.jsonl", files=files)
    assert_refused(tmp_path, status, out, err, "p.jsonl line 1: ")


def test_a_bom_is_handled_the_same_in_txt_and_jsonl(tmp_path):
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbfhello\r\n---\r\nworld\r\n")
    (tmp_path / "b.jsonl").write_bytes(b'\xef\xbb\xbf{"prompt": "hello"}\r\n{"prompt": "world"}\r\n')
    texts = [[p.text for p in load_prompt_file(str(tmp_path / name)).prompts] for name in ("b.txt", "b.jsonl")]
    assert texts == [["hello", "world"], ["hello", "world"]]


def test_a_bom_in_a_single_prompt_file_is_not_sent(tmp_path):
    from benchmarking.settings.values import read_utf8

    (tmp_path / "p.txt").write_bytes(b"\xef\xbb\xbfExplain TCP")
    assert read_utf8(tmp_path / "p.txt", "--prompt-file", max_bytes=100) == "Explain TCP"


@pytest.mark.parametrize("value", ["1e400", "10000000000", "1000000000000000000000000000000", "-1", "0", "2.5",
                                   "NaN", "Infinity", "-Infinity", "true", "\"5\"", "[5]"])
def test_max_tokens_out_of_range_or_of_the_wrong_type_is_refused(cli, tmp_path, value):
    files = {"p.jsonl": b'{"prompt": "x", "max_tokens": %s}\n' % value.encode()}
    status, out, err = cli("--simulate", "--prompts", "p.jsonl", files=files)
    assert_refused(tmp_path, status, out, err, "p.jsonl line 1: ")


def test_deep_nesting_and_huge_numbers_are_one_line(cli, tmp_path):
    files = {"p.jsonl": b'{"prompt": "x", "id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
                        + b'{"prompt": "y", "max_tokens": ' + b"9" * 5000 + b"}\n"}
    status, out, err = cli("--simulate", "--prompts", "p.jsonl", files=files)
    assert_refused(tmp_path, status, out, err, "p.jsonl line 1: ")
    (tmp_path / "p.jsonl").write_bytes(b'{"prompt": "y", "max_tokens": ' + b"9" * 5000 + b"}\n")
    status, out, err = cli("--simulate", "--prompts", "p.jsonl")
    assert_refused(tmp_path, status, out, err, "p.jsonl line 1: ")


# ---- stored names in CSV and charts -----------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def _simulated_run_with_models(cli, models: list[str]) -> None:
    args = ["--simulate", "--providers", "openai", "--cache", "off"]
    for model in models:
        args += ["--model", f"openai={model}"]
    status, _, err = cli(*args)
    assert status == 0, err


def test_formula_cells_are_neutralised_in_every_csv_and_numbers_stay_numbers(cli, tmp_path):
    _simulated_run_with_models(cli, FORMULAS)
    status, _, err = cli("report", "--include-simulated", "--export", "rows.csv")
    assert status == 0, err
    with open(tmp_path / "rows.csv", newline="", encoding="utf-8") as file:
        exported = list(csv.DictReader(file))
    assert sorted(r["model"] for r in exported) == sorted("'" + m for m in FORMULAS)
    assert all(float(r["latency_ms"]) > 0 and r["success"] == "True" for r in exported)
    status, out, err = cli("report", "--include-simulated", "--format", "csv")
    assert status == 0, err
    summary = list(csv.DictReader(io.StringIO(out, newline="")))  # as print() wrote it
    # What is printed is inert (redaction.inert: a lone CR would move a terminal's cursor back over the line); the
    # file above keeps the name as stored. Either way the cell starts with the quote.
    from benchmarking.redaction import inert

    assert sorted(r["model"] for r in summary) == sorted("'" + inert(m) for m in FORMULAS)
    assert all(r["provider"] == "openai" and float(r["success_rate"]) == 1.0 for r in summary)


def test_the_cell_rule_leaves_numbers_and_plain_text_alone():
    from benchmarking.csv_cells import safe_cell

    numbers = (-1.5, -3, 0, None, True, "gpt-4o", "a=b", "", "-0.00012", "+1.5e-3", "-7")  # Decimals come as text
    assert [safe_cell(v) for v in numbers] == list(numbers)
    assert [safe_cell(v) for v in ("=1", "+1+1", "-1+1", "@a", "\tb", "\rc", "-", "-Infinity", "=-1")] == \
        ["'=1", "'+1+1", "'-1+1", "'@a", "'\tb", "'\rc", "'-", "'-Infinity", "'=-1"]


@pytest.mark.parametrize("plot", ["chart.png", "chart.html"])
def test_names_holding_dollars_never_break_a_chart(cli, tmp_path, plot):
    _simulated_run_with_models(cli, ["$\\frac{a}{$", "$x$", "a$b"])
    status, _, err = cli("report", "--include-simulated", "--plot", plot)
    assert status == 0, err
    data = (tmp_path / plot).read_bytes()
    assert data.startswith(b"\x89PNG") if plot.endswith(".png") else b"data:image/png;base64," in data


def test_mathtext_stays_on_for_other_figures_of_the_process(cli, tmp_path):
    import matplotlib

    _simulated_run_with_models(cli, ["$x$"])
    assert cli("report", "--include-simulated", "--plot", "chart.png")[0] == 0
    assert matplotlib.rcParams["text.parse_math"] is True


# ---- a base URL's query string is kept on every request ---------------------------------------------------------

def _recording(server: WireServer) -> list[tuple[str, str]]:
    """Every request line the server receives, as (method, path with its query)."""
    seen: list[tuple[str, str]] = []
    handler = server._server.RequestHandlerClass

    class Recording(handler):  # type: ignore[misc, valid-type]
        def parse_request(self) -> bool:
            ok = super().parse_request()
            seen.append((self.command, self.path))
            return ok

    server._server.RequestHandlerClass = Recording
    return seen


QUERY = "api-version=2024-10-21&token=abc"


@pytest.mark.parametrize("call, name, path, api_root", [
    (call_custom, "local", "/v1", "/v1"),
    (call_groq, "groq", "", "/openai/v1"),
    (call_together, "together", "/v1", "/v1"),
])
def test_a_base_url_with_a_query_keeps_it_on_every_request(call, name, path, api_root):
    with WireServer() as server:
        seen = _recording(server)
        tokenizer_routes(server, "vllm")
        server.reply(stream(chunk({"content": "one two three"}, "stop")))  # no usage: the server's count
        settings = ProviderSettings(name=name, api_key=Secret(FAKE_KEY), key_env=f"{name.upper()}_API_KEY",
                                    base_url=f"{server.url}{path}/?{QUERY}", timeout_s=5, model_hint="",
                                    token_count="tokenize")
        m = call("hello", "m", settings)
    assert m.success, m.error_message
    assert ("GET", f"{api_root}/models?{QUERY}") in seen
    assert ("POST", f"{api_root}/chat/completions?{QUERY}") in seen
    if name == "local":
        assert m.token_source == "tokenize" and m.output_tokens == 3
        assert ("POST", f"/tokenize?{QUERY}") in seen
    assert all(p.endswith("?" + QUERY) for _, p in seen), seen


# ---- URLs that cannot be parsed -----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["postgresql://u@[::1/db", "postgresql://[zz]/d", "postgresql://u:pw@[::1]x/d",
                                 "postgresql://[::1/d?sslmode=require"])
@pytest.mark.parametrize("command", [[], ["report"], ["flush"]])
def test_a_malformed_ipv6_database_url_is_a_configuration_error(cli, tmp_path, url, command):
    status, out, err = cli(*command, *([] if command else ["--simulate"]), DATABASE_URL=url)
    assert_refused(tmp_path, status, out, err, "DATABASE_URL ")
    assert "IPv6" in err and "pw" not in err


@pytest.mark.parametrize("url", ["http://[::1/v1", "http://[zz]/v1", "http://u@[::1/v1"])
def test_a_malformed_ipv6_base_url_is_a_configuration_error(cli, tmp_path, url):
    status, out, err = cli("--simulate", "--providers", "openai", OPENAI_BASE_URL=url)
    assert_refused(tmp_path, status, out, err, "OPENAI_BASE_URL ")
    toml = f'[[providers]]\nname = "x"\nbase_url = "{url}"\nmodel = "m"\n'.encode()
    status, out, err = cli("--simulate", files={"benchmark.toml": toml})
    assert_refused(tmp_path, status, out, err, "benchmark.toml [[providers]] #1: base_url ")


def test_an_answer_holding_a_lone_surrogate_is_judged_not_crashed():
    """A provider's JSON may escape half a character (\\ud800): the answer is still judged, and the row kept."""
    assert Expectation.parse("/^ok/", "x").met_by("ok \ud800")
    assert not Expectation.parse("/^no/", "x").met_by("ok \ud800")


@pytest.mark.parametrize("name, one", [("many.jsonl", '{{"prompt": "p{}"}}\n'), ("many.txt", "p{}\n---\n")])
def test_a_prompt_file_of_more_prompts_than_a_run_can_send_is_refused_at_once(cli, tmp_path, name, one):
    """4.7 MB of tiny prompts were 400,000 prompts: a dry run took a minute and 700 MB before it said anything."""
    files = {name: "".join(one.format(i) for i in range(10_001)).encode()}
    status, out, err = cli("--simulate", "--dry-run", "--prompts", name, files=files)
    assert_refused(tmp_path, status, out, err,
                   f"--prompts {name} holds more than 10,000 prompts: split it into several runs")


def test_a_repeated_prompt_id_is_still_refused_by_name(cli, tmp_path):
    files = {"p.jsonl": b'{"id": "a", "prompt": "x"}\n{"id": "b", "prompt": "y"}\n{"id": "a", "prompt": "z"}\n'}
    status, out, err = cli("--simulate", "--dry-run", "--prompts", "p.jsonl", files=files)
    assert_refused(tmp_path, status, out, err, "p.jsonl: prompt id 'a' appears twice")


def test_control_characters_in_names_draw_without_a_library_warning(cli, tmp_path):
    """A name holding an escape (ESC has no glyph) made matplotlib print a UserWarning of its own on stderr."""
    import warnings

    toml = ('[[providers]]\nname = "x"\nbase_url = "http://127.0.0.1:9/v1"\n'
            'models = ["c\\u001b[31md", "e\\u0007f", "\\\\frac{$"]\n').encode()
    status, _, err = cli("--simulate", "--providers", "x", files={"benchmark.toml": toml})
    assert status == 0, err
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would now be an exception, and the report's exit 1
        status, _, err = cli("report", "--include-simulated", "--plot", "chart.png")
    assert status == 0, err
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("line", [
    '{"prompt": "x", "expect": "/' + "a|" * 400_000 + 'b/"}',  # too large for RE2: its text is not echoed whole
    '{"prompt": "x", "expect": "/abc/' + "z" * 100_000 + '"}',
    '{"prompt": "x", "' + "k" * 100_000 + '": 1}',
    '{"id": "' + "i" * 100_000 + '", "prompt": "x"}\n{"id": "' + "i" * 100_000 + '", "prompt": "y"}',
])
def test_what_a_refusal_quotes_from_the_file_is_cut_short(cli, tmp_path, line):
    status, out, err = cli("--simulate", "--dry-run", "--prompts", "p.jsonl", files={"p.jsonl": line.encode()})
    assert_refused(tmp_path, status, out, err, "p.jsonl")
    assert len(err) < 500 and "characters)" in err, err[:500]


@pytest.mark.parametrize("price", ['"1e400"', "1e300", '"10001"'])
def test_a_price_beyond_any_model_is_refused_not_stored_as_infinity(cli, tmp_path, price):
    """input_price = "1e400" was stored as a cost of inf (SQLite), one PostgreSQL's double precision cannot hold."""
    toml = ('[[providers]]\nname = "x"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
            f'input_price = "1"\noutput_price = {price}\n').encode()
    status, out, err = cli("--simulate", "--providers", "x", files={"benchmark.toml": toml})
    assert_refused(tmp_path, status, out, err, "benchmark.toml [[providers]] #1: output_price must be at most 10,000 "
                                               "USD per 1M tokens")
