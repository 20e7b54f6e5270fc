"""The simulator's own surface: its routes (one table, anything else a 404) and its command line."""

import http.client
import json
from pathlib import Path
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from benchmarking.simulator import ModelProfile, Simulator, exchange, state
from benchmarking.simulator.state import RequestRecord

ROOT = Path(__file__).resolve().parent.parent


def call(url: str, data: bytes | None = None) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_models_are_listed_under_any_prefix_and_every_get_is_logged():
    with Simulator() as sim:
        status, body = call(sim.base_url("groq") + "/openai/v1/models")
        missing, error = call(sim.url + "/v1/nothing")
    assert status == 200 and {m["id"] for m in body["data"]} == set(sim.profiles)
    assert "shutdown_date" not in body["data"][0]  # only OpenAI's list announces shutdowns
    assert (missing, error["error"]["message"]) == (404, "no route for GET /v1/nothing")
    assert [r.path for r in sim.log] == ["/groq/openai/v1/models", "/v1/nothing"]


@pytest.mark.parametrize("path, data, status, message", [
    ("/v1/completions", b"{}", 404, "no route for POST /v1/completions"),
    ("/v1/chat/completions", b"not json", 400, "request body is not JSON"),
])
def test_a_post_it_cannot_answer_is_refused_and_not_logged(path, data, status, message):
    with Simulator() as sim:
        answer = call(sim.url + path, data)
    assert answer == (status, {"error": {"message": message}})
    assert sim.log == []


def test_the_command_line_checks_its_flags():
    command = [sys.executable, "-m", "benchmarking.simulator"]
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env, timeout=30)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: simulator.py")
    refused = subprocess.run([*command, "--over-capacity-429"], capture_output=True, text=True, env=env, timeout=30)
    assert refused.returncode == 2 and "--over-capacity-429 needs --capacity N" in refused.stderr


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
# Keys each API reads, so that the bodies drawn reach the code that reads them.
KEYS = st.sampled_from(["model", "stream", "messages", "max_tokens", "max_completion_tokens", "stream_options",
                        "system", "input", "instructions", "max_output_tokens", "reasoning", "contents",
                        "systemInstruction", "generationConfig", "content", "parts", "text"])
BODIES = st.dictionaries(KEYS, JSON, max_size=6) | JSON
PATHS = ["/v1/chat/completions", "/anthropic/v1/messages", "/v1/responses",
         "/gemini/v1beta/models/m:streamGenerateContent?alt=sse", "/gemini/v1/models/m:generateContent"]


@pytest.fixture(scope="module")
def quick_sim():
    with Simulator(profiles={}, default=ModelProfile(ttft_ms=0, itl_ms=0, output_tokens=3)) as sim:
        yield sim


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, path=st.sampled_from(PATHS))
def test_any_json_body_gets_a_whole_answer_from_every_api(quick_sim, body, path):
    host, port = quick_sim.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        text = answer.read()  # the whole body, streamed or not: a handler that broke would cut it short
    finally:
        connection.close()
    assert answer.status in (200, 400), (answer.status, text[:200])
    if answer.status == 400:  # only a body that is not a JSON object is refused, and said so in the API's shape
        assert not isinstance(body, dict) and b"request body is not a JSON object" in text


def raw_post(url: str, path: str, head: bytes, body: bytes, timeout_s: float = 10) -> tuple[int, dict, float]:
    """POST with hand-made headers (`head`, each line ending CRLF) over a socket: (status, JSON answer, seconds)."""
    host, port = url.removeprefix("http://").split(":")
    began = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout_s) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sConnection: close\r\n\r\n"
                     % (path.encode(), head) + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_text, _, answer = data.partition(b"\r\n\r\n")
    return int(head_text.split(b" ", 2)[1]), json.loads(answer), time.monotonic() - began


GOOD = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()
# An unreadable body (its length unsaid, impossible, too large, or never all sent) or a parse the stack cannot hold:
# each is refused with the API's own error, at once, the connection closed, nothing thrown in the server.
HOSTILE = {
    "length not a number": (b"Content-Length: abc\r\n", GOOD, 400),
    "negative length": (b"Content-Length: -1\r\n", GOOD, 400),
    "two lengths": (b"Content-Length: 5\r\nContent-Length: 6\r\n", GOOD, 400),
    "chunked": (b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n", 400),
    "length past the bound": (b"Content-Length: 99999999999999\r\n", GOOD, 413),
    "body past the bound": (b"Content-Length: %d\r\n" % (2 * 1024 * 1024), b"x" * (2 * 1024 * 1024), 413),
    "body shorter than its length": (b"Content-Length: 100000\r\n", GOOD, 400),
    "nested deep (lists)": (None, b"[" * 100_000 + b"]" * 100_000, 400),
    "nested deep (objects)": (None, b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400),
}


def error_message(path: str, answer: dict) -> str:
    """The message of an error answer in the shape of the API at `path`."""
    if "/anthropic/" in path:
        assert answer["type"] == "error" and answer["error"]["type"] in ("invalid_request_error", "request_too_large")
    if "/gemini/" in path:
        assert isinstance(answer["error"]["code"], int) and answer["error"]["status"] == "INVALID_ARGUMENT"
    return answer["error"]["message"]


@pytest.mark.parametrize("case", HOSTILE)
@pytest.mark.parametrize("path", PATHS)
def test_an_unreadable_body_gets_the_apis_error_at_once_and_nothing_is_thrown(path, case, monkeypatch, capsys):
    monkeypatch.setattr(exchange, "MAX_BODY_BYTES", 1024 * 1024)
    monkeypatch.setattr(exchange, "BODY_READ_TIMEOUT_S", 0.5)
    head, body, expected = HOSTILE[case]
    with Simulator(profiles={}, default=ModelProfile(ttft_ms=0, itl_ms=0, output_tokens=3)) as sim:
        status, answer, took_s = raw_post(sim.url, path, head or b"Content-Length: %d\r\n" % len(body), body)
        ok, _ = call(sim.url + "/v1/chat/completions", GOOD)  # the server still answers
    assert (status, ok) == (expected, 200) and error_message(path, answer) and took_s < 3
    assert [r.path for r in sim.log] == ["/v1/chat/completions"]
    assert "Traceback" not in capsys.readouterr().err


def ask(sim: Simulator, content: str, model: str = "m") -> RequestRecord:
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 1}
    status, _ = call(sim.url + "/v1/chat/completions", json.dumps(body).encode())
    assert status == 200
    return sim.log[-1]


def test_the_log_keeps_the_newest_records_and_only_the_newest_bodies(monkeypatch):
    monkeypatch.setattr(state, "LOG_RECORDS", 5)
    monkeypatch.setattr(state, "BODY_BYTES", 300)  # about three of these bodies
    with Simulator(profiles={}, default=ModelProfile(ttft_ms=0, itl_ms=0, output_tokens=1)) as sim:
        for i in range(8):
            ask(sim, f"question {i}")
        assert [r.request_id for r in sim.log] == [f"req_sim_{i}" for i in range(4, 9)]
        assert sim.request("req_sim_1") is None and sim.request("req_sim_8") is sim.log[-1]
        bodies = [r.body for r in sim.log]
        big = ask(sim, "x " * 1000)  # past the budget alone: the newest body is kept all the same
    assert bodies[:2] == [None, None] and [b["messages"][0]["content"] for b in bodies[2:]] == [
        "question 5", "question 6", "question 7"]
    assert big.body["messages"][0]["content"] == "x " * 1000 and [r.body for r in sim.log[:-1]] == [None] * 4


def test_the_prompt_cache_forgets_expired_prefixes_and_the_least_recent_past_its_bound(monkeypatch):
    monkeypatch.setattr(state, "MAX_PREFIXES", 10)
    monkeypatch.setattr(state, "PREFIX_SWEEP_S", 0.01)
    prompt = {name: " ".join(f"{name}{i}" for i in range(9 * state.CACHE_BLOCK_TOKENS)) for name in "ab"}
    profiles = {"m": ModelProfile(ttft_ms=0, itl_ms=0, output_tokens=1),
                "brief": ModelProfile(ttft_ms=0, itl_ms=0, output_tokens=1, cache_window_s=0.05)}
    with Simulator(profiles=profiles, default=None) as sim:
        first_a, first_b, again_b, again_a = (ask(sim, prompt[name]).cached_tokens for name in "abba")
        assert (first_a, first_b, again_b, again_a) == (0, 0, 9 * 128, 0)  # a's blocks made way for b's
        assert len(sim._prefixes) == 10
        ask(sim, prompt["a"], "brief")
        time.sleep(0.1)
        ask(sim, "too short to cache", "brief")
        assert len(sim._prefixes) == 10 - 9  # the brief model's blocks expired and are gone
