"""A request goes where its base URL says, with the query its SDK built: a redirect is answered as what it is
(never followed to another host with the key and the configured headers, nor timed as this endpoint's answer), and a
base URL's own query is added to the SDK's (Gemini's ?alt=sse), never put in its place."""

from __future__ import annotations

import pytest

from benchmarking.providers.anthropic_provider import call_anthropic
from benchmarking.providers.gemini_provider import call_gemini
from benchmarking.providers.openai_provider import call_openai

from conftest import settings_for
from test_wire_gemini import At, gemini_server, recorded
from wire_server import Reply, WireServer

CALLS = {"openai": (call_openai, "/v1"), "anthropic": (call_anthropic, ""), "gemini": (call_gemini, "")}


@pytest.mark.parametrize("status", [302, 307, 308])
@pytest.mark.parametrize("provider", sorted(CALLS))
def test_a_redirect_to_another_host_is_a_failure_and_nothing_reaches_that_host(provider, status):
    call, root = CALLS[provider]
    with WireServer() as elsewhere, WireServer() as endpoint:
        for server in (gemini_server(elsewhere), gemini_server(endpoint)):
            server.answer_paths += ("/chat/completions", "/v1/messages")
        elsewhere.reply(recorded("text"))
        endpoint.reply(Reply([(0, b"")], status=status, chunked=False,
                             headers={"location": elsewhere.url + "/steal" + root + "/anything"}))
        m = call("hello", "m", settings_for(At(endpoint.url + root), provider,
                                             headers=(("x-api-key", "HDRCANARY-123456"),)))
        assert elsewhere.served == [] and elsewhere.listed == []
    assert not m.success and m.http_status == status and m.error_type == "bad_request"


def test_a_base_urls_query_is_added_to_the_sdks_own():
    with WireServer() as server:
        gemini_server(server).reply(recorded("text"))
        m = call_gemini("hello", "gemini-3.5-flash-lite", settings_for(At(server.url + "/?x=1"), "gemini"))
        (served,) = server.served
    assert m.success, m.error_message
    assert sorted(served.query.split("&")) == ["alt=sse", "x=1"]
