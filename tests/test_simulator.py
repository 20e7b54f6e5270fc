"""The simulator's own surface: its routes (one table, anything else a 404) and its command line."""

import json
from pathlib import Path
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from benchmarking.simulator import Simulator

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
