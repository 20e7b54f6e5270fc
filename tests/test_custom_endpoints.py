"""Custom endpoints that say what is wrong: a wrong base URL, no key, tokens counted by the server, warnings once."""

from __future__ import annotations

from dataclasses import replace
import json
import os
from pathlib import Path
import sys

import pytest

from benchmarking.cli import main
from benchmarking.settings.model import ProviderSettings
from benchmarking.providers.custom_provider import call_custom

from test_wire_truth import USAGE, chunk, stream
from wire_server import Reply, WireServer


def endpoint(server: WireServer, path: str = "/v1", **changes) -> ProviderSettings:
    """A benchmark.toml entry without api_key_env, as load_settings resolves it."""
    settings = ProviderSettings(name="local", api_key=None, key_env=None, base_url=server.url + path, timeout_s=5,
                                model_hint="change model for 'local' in benchmark.toml or use --model local=MODEL")
    return replace(settings, **changes)


def test_a_404_that_is_not_about_the_model_says_to_check_the_base_url():
    not_found = Reply([(0.0, b'{"detail":"Not Found"}')], 404, {"content-type": "application/json"}, chunked=False)
    with WireServer() as server:
        server.reply(not_found)
        m = call_custom("hello", "m", endpoint(server, path=""))
    assert (m.error_type, m.http_status) == ("not_found", 404)
    assert m.error_message.startswith("HTTP 404: Not Found; check the base URL http://127.0.0.1:")
    assert "(most servers serve the API under /v1)" in m.error_message
    assert "Error code" not in m.error_message and m.error_message.count("HTTP 404") == 1
    assert "retired" not in m.error_message


def test_a_404_for_a_model_names_the_model_and_where_to_change_it():
    gone = Reply([(0.0, json.dumps({"error": {"message": "The model `m` does not exist", "code": "model_not_found"}})
                   .encode())], 404, {"content-type": "application/json"}, chunked=False)
    with WireServer() as server:
        server.reply(gone)
        m = call_custom("hello", "m", endpoint(server))
    assert m.error_message == ("HTTP 404: The model `m` does not exist (model 'm' may be retired: change model for "
                               "'local' in benchmark.toml or use --model local=MODEL)")


def tokenizer_routes(server: WireServer, kind: str) -> None:
    """The tokenizer endpoints of vLLM, llama.cpp's server or llama-cpp-python: one token per word here."""
    words = lambda text: len(str(text or "").split())  # noqa: E731
    if kind == "vllm":
        def tokenize(body):
            if "messages" in body:  # the chat template adds 4 tokens around the one message
                return 200, {"count": words(body["messages"][0]["content"]) + 4, "max_model_len": 8192, "tokens": []}
            return 200, {"count": words(body["prompt"]), "max_model_len": 8192, "tokens": []}
        server.routes["/tokenize"] = tokenize
    elif kind == "llama.cpp":
        server.routes["/apply-template"] = lambda body: (200, {"prompt": f"<u> {body['messages'][0]['content']} <a>"})
        server.routes["/tokenize"] = lambda body: (200, {"tokens": list(range(words(body["content"])
                                                                               + (1 if body.get("add_special") else 0)))})
    else:
        server.routes["/extras/tokenize/count"] = lambda body: (200, {"count": words(body["input"])})


@pytest.mark.parametrize("kind, input_tokens", [("vllm", 6), ("llama.cpp", 5), ("llama-cpp-python", None)])
def test_a_server_that_sends_no_usage_can_count_with_its_own_tokenizer(kind, input_tokens):
    with WireServer() as server:
        tokenizer_routes(server, kind)
        server.reply(stream(chunk({"reasoning_content": "let me think "}), chunk({"content": "one two three"}, "stop"),
                            gap_s=0.04))
        m = call_custom("two words", "m", endpoint(server, token_count="tokenize"))
    assert m.success and m.token_source == "tokenize"
    assert m.output_tokens == 6  # "let me think one two three", counted by the server
    assert m.input_tokens == input_tokens
    assert m.tokens_per_second is not None
    if input_tokens is None:
        assert any("input tokens left empty" in w for w in m.warnings)


def test_without_tokenize_or_when_it_fails_tokens_stay_empty_never_estimated():
    with WireServer() as server:
        server.reply(stream(chunk({"content": "one two three"}, "stop")))
        plain = call_custom("hello", "m", endpoint(server))
        failing = call_custom("hello", "m", endpoint(server, token_count="tokenize"))  # no tokenizer routes
    assert plain.output_tokens is None and plain.token_source is None
    assert any("sent no token usage" in w for w in plain.warnings)
    assert failing.output_tokens is None and failing.token_source is None
    assert any("counted no tokens" in w for w in failing.warnings)


def test_usage_wins_over_tokenize_and_is_marked_as_the_source():
    with WireServer() as server:
        tokenizer_routes(server, "vllm")
        server.reply(stream(chunk({"content": "one two"}, "stop"), chunk(None, usage=USAGE)))
        m = call_custom("hello", "m", endpoint(server, token_count="tokenize"))
    assert (m.token_source, m.output_tokens) == ("usage", 3)


def run_in(directory: Path, *args: str, **env: str):
    import subprocess

    from test_cli import MAIN, clean_env

    return subprocess.run([sys.executable, str(MAIN), *args], cwd=directory, env=clean_env(**env),
                          capture_output=True, text=True, timeout=120)


def test_check_does_not_say_key_set_for_an_endpoint_without_a_key(tmp_path):
    with WireServer() as server:
        (tmp_path / "benchmark.toml").write_text(
            f'[[providers]]\nname = "local"\nbase_url = "{server.url}/v1"\nmodel = "m"\n')
        done = run_in(tmp_path, "check", "--providers", "local")
    assert "ok       local: no key configured, model m is listed" in done.stdout
    assert "key set" not in done.stdout


def test_a_warning_that_repeats_is_printed_once_with_its_count(tmp_path):
    with WireServer() as server:
        server.reply(stream(chunk({"content": "one two"}, "stop"), chunk(None, usage=USAGE)))
        (tmp_path / "benchmark.toml").write_text(
            f'[[providers]]\nname = "local"\nbase_url = "{server.url}/v1"\nmodel = "m"\n')
        done = run_in(tmp_path, "--providers", "local", "--repeat", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Warning: no price for local model 'm'") == 1
    assert "Warning (local / m, 3 of 3 requests): no price for local model 'm'" in done.stdout


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("BENCHMARK_", "DATABASE_URL", "SUPABASE_")):
            monkeypatch.delenv(name)


def test_values_that_make_no_sense_are_dropped_with_a_warning_and_json_stays_json(tmp_path):
    usage = b'{"prompt_tokens": "12", "completion_tokens": 3.5, "total_tokens": NaN, "cost": NaN, ' \
            b'"prompt_tokens_details": {"cached_tokens": -4}}'
    body = (b"data: " + json.dumps(chunk({"content": "ok"}, "stop")).encode() + b"\n\n"
            + b'data: {"id": "chatcmpl-x1", "object": "chat.completion.chunk", "choices": [], "usage": ' + usage
            + b"}\n\ndata: [DONE]\n\n")
    with WireServer() as server:
        server.reply(Reply([(0.005, body)]))
        m = call_custom("hello", "m", endpoint(server))
        (tmp_path / "benchmark.toml").write_text(
            f'[[providers]]\nname = "local"\nbase_url = "{server.url}/v1"\nmodel = "m"\n'
            'input_price = "1"\noutput_price = "2"\n')
        done = run_in(tmp_path, "--providers", "local", "--json")
    assert m.success and (m.input_tokens, m.output_tokens, m.cached_tokens, m.cost_usd) == (None, None, None, None)
    problems = [w for w in m.warnings if "makes no sense" in w or "not a token count" in w or "not an amount" in w]
    assert len(problems) == 4  # prompt, completion and cached tokens, and the cost
    assert done.returncode == 0, done.stderr

    def no_nan(text):
        raise AssertionError(f"bare {text} in --json output")

    payload = json.loads(done.stdout, parse_constant=no_nan)
    assert payload["results"][0]["cost_usd"] is None and payload["results"][0]["success"] is True


def test_a_retry_after_that_is_negative_or_not_a_number_falls_back_to_backoff(monkeypatch):
    from benchmarking.providers import client

    monkeypatch.setattr(client, "BACKOFF_BASE_S", 0.01)
    limited = Reply([(0.0, b'{"error": {"message": "slow down", "code": "rate_limit_exceeded"}}')], 429,
                    {"content-type": "application/json", "retry-after": "-30", "retry-after-ms": "NaN"}, chunked=False)
    with WireServer() as server:
        server.reply(limited, stream(chunk({"content": "ok"}, "stop"), chunk(None, usage=USAGE)))
        m = call_custom("hello", "m", endpoint(server, retries=1))
    assert (m.success, m.attempts) == (True, 2)


def test_a_key_echoed_in_an_error_in_any_form_is_scrubbed():
    from urllib.parse import quote

    from conftest import CANARY_KEY as FAKE_KEY  # changes when URL-encoded: the encoded echo is a form of its own

    assert quote(FAKE_KEY, safe="") != FAKE_KEY
    echoed = (f"bad key {FAKE_KEY.lower()} / {FAKE_KEY.upper()} / {quote(FAKE_KEY, safe='')} / "
              f"{FAKE_KEY[5:25]} / sk-...{FAKE_KEY[-14:]}")
    unauthorised = Reply([(0.0, json.dumps({"error": {"message": echoed}}).encode())], 401,
                         {"content-type": "application/json"}, chunked=False)
    with WireServer() as server:
        server.reply(unauthorised)
        from benchmarking.settings.values import Secret

        m = call_custom("hello", "m", endpoint(server, api_key=Secret(FAKE_KEY), key_env="LOCAL_KEY"))
    assert m.error_type == "auth"
    text = m.error_message.lower()
    for form in (FAKE_KEY, quote(FAKE_KEY, safe="")):
        for start in range(len(form) - 11):
            assert form[start:start + 12].lower() not in text
    assert "(check local_key)" in text
