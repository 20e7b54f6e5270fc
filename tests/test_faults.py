"""Each fault the simulator plays gives the right row, with no key text in it, and nothing stops the run."""

from __future__ import annotations

import time

import pytest

from benchmarking.simulator import ModelProfile

from conftest import CALLS, FAKE_KEY, settings_for

QUICK = dict(ttft_ms=5, itl_ms=1, output_tokens=6)


def first_use_of_the_sdk(sim, provider: str) -> None:
    """One request, untimed: the SDK's import on first use (~0.3 s, over 1 s on a busy machine) is not what a bound
    on a request's cost is about, and it lands in whichever test of this process happens to call the SDK first."""
    assert CALLS[provider]("hello", "m", settings_for(sim, provider)).success


def no_key_in(m) -> bool:
    text = " ".join(str(v) for v in (m.error_message, m.response_text, m.request_id, m.warnings))
    return FAKE_KEY not in text and FAKE_KEY[8:] not in text


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_bad_key_is_an_auth_failure_whose_message_is_scrubbed(sim, provider):
    sim.set_profile("m", ModelProfile(fault="auth", **QUICK))
    m = CALLS[provider]("hello", "m", settings_for(sim, provider))
    assert (m.success, m.error_type, m.http_status) == (False, "auth", 401)
    assert "Incorrect API key provided: ****" in m.error_message  # the simulator echoed the whole key
    assert f"check {provider.upper()}_API_KEY" in m.error_message
    assert no_key_in(m)
    assert m.latency_ms is None and m.ttft_ms is None and m.output_tokens is None and m.cost_usd is None


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_retired_model_404_says_which_variable_to_change(sim, provider):
    sim.set_profile("gone", ModelProfile(fault="not_found", **QUICK))
    m = CALLS[provider]("hello", "gone", settings_for(sim, provider))
    assert (m.error_type, m.http_status) == ("not_found", 404)
    assert f"set {provider.upper()}_MODEL" in m.error_message
    assert "'gone'" in m.error_message


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_rate_limit_is_recorded_and_retried_after_the_servers_retry_after(sim, provider):
    sim.set_profile("busy", ModelProfile(fault="rate_limit", retry_after_ms=120, **QUICK))
    failed = CALLS[provider]("hello", "busy", settings_for(sim, provider))
    assert (failed.error_type, failed.http_status, failed.attempts) == ("rate_limit", 429, 1)
    assert failed.request_id is not None and failed.request_id.startswith("req_sim_")

    sim.set_profile("busy", ModelProfile(fault="rate_limit", fail_first=1, retry_after_ms=120, **QUICK))
    began = time.perf_counter()
    m = CALLS[provider]("hello", "busy", settings_for(sim, provider, retries=2))
    assert (m.success, m.attempts) == (True, 2)
    chats = sim.requests_for("busy")[-2:]
    assert chats[1].received_at - chats[0].received_at >= 0.120  # the wait honoured retry-after-ms
    assert time.perf_counter() - began < 2.0
    assert m.output_tokens == 6  # the successful attempt is what was measured


def test_server_error_is_recorded_and_not_retried_by_the_sdk(sim):
    sim.set_profile("m", ModelProfile(fault="server", **QUICK))
    m = CALLS["openai"]("hello", "m", settings_for(sim, "openai"))
    assert (m.error_type, m.http_status, m.attempts) == ("server", 500, 1)
    assert len(sim.requests_for("m")) == 1  # max_retries=0: the SDK did not retry behind our back


def test_a_failure_that_is_not_transient_is_not_retried(sim):
    sim.set_profile("m", ModelProfile(fault="auth", **QUICK))
    m = CALLS["groq"]("hello", "m", settings_for(sim, "groq", retries=3))
    assert (m.error_type, m.attempts) == ("auth", 1)
    assert len(sim.requests_for("m")) == 1


@pytest.mark.parametrize("provider", ["openai", "groq"])
def test_a_hung_provider_costs_at_most_its_timeout(sim, provider):
    sim.set_profile("hang", ModelProfile(fault="hang", hang_s=5, **QUICK))
    first_use_of_the_sdk(sim, provider)
    began = time.perf_counter()
    m = CALLS[provider]("hello", "hang", settings_for(sim, provider, timeout_s=0.3))
    elapsed = time.perf_counter() - began
    assert (m.success, m.error_type) == (False, "timeout")
    assert "0.3 s" in m.error_message
    assert elapsed < 1.5


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_malformed_sse_is_a_bad_response(sim, provider):
    sim.set_profile("m", ModelProfile(fault="malformed", **QUICK))
    m = CALLS[provider]("hello", "m", settings_for(sim, provider))
    assert (m.success, m.error_type) == (False, "bad_response")
    # What came before the broken event was measured and is kept; nothing is derived from a failed answer.
    assert m.ttft_ms is not None and m.response_text == "lorem "
    assert m.output_tokens is None and m.tokens_per_second is None


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_connection_cut_mid_stream_is_a_connection_failure(sim, provider):
    sim.set_profile("m", ModelProfile(fault="cut", cut_after_tokens=2, **QUICK))
    m = CALLS[provider]("hello", "m", settings_for(sim, provider))
    assert (m.success, m.error_type) == (False, "connection")
    assert m.output_tokens is None and m.cost_usd is None


def test_unreachable_endpoint_is_a_connection_failure(sim):
    settings = settings_for(sim, "openai", base_url="http://127.0.0.1:9/v1", timeout_s=2)
    m = CALLS["openai"]("hello", "m", settings)
    assert (m.success, m.error_type) == (False, "connection")
    assert "127.0.0.1:9" in m.error_message


@pytest.mark.parametrize("provider", ["openai", "groq", "together"])
def test_missing_usage_leaves_tokens_and_cost_empty_never_counted(sim, provider):
    sim.set_profile("gpt-4o-mini", ModelProfile(fault="no_usage", **QUICK))
    m = CALLS[provider]("hello", "gpt-4o-mini", settings_for(sim, provider))
    assert m.success
    assert m.ttft_ms is not None and m.latency_ms is not None
    assert m.input_tokens is None and m.output_tokens is None and m.tokens_per_second is None
    assert m.cost_usd is None
    assert any("no token usage" in w for w in m.warnings)


def test_an_endpoint_that_accepts_but_never_answers_costs_at_most_its_timeout(sim):
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        first_use_of_the_sdk(sim, "openai")
        began = time.perf_counter()
        m = CALLS["openai"]("hello", "m", settings_for(sim, "openai", base_url=f"http://127.0.0.1:{port}/v1",
                                                       timeout_s=0.3))
        assert (m.error_type, m.attempts) == ("timeout", 1)
        assert time.perf_counter() - began < 1.5


def test_connection_errors_are_retried_with_backoff_and_counted(sim, monkeypatch):
    from benchmarking.providers import client

    monkeypatch.setattr(client, "BACKOFF_BASE_S", 0.01)
    m = CALLS["groq"]("hello", "m", settings_for(sim, "groq", base_url="http://127.0.0.1:9", retries=2))
    assert (m.success, m.error_type, m.attempts) == (False, "connection", 3)
