"""The simulator's own surface: its routes (one table, anything else a 404) and its command line."""

import http.client
import json
from pathlib import Path
import subprocess
import sys
import urllib.error
import urllib.request

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from benchmarking.simulator import ModelProfile, Simulator

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
