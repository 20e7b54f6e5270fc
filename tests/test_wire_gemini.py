"""Gemini's own API through the real google-genai SDK: recorded streams (tests/fixtures/gemini/, sources in
sources.json and README.md) replayed byte for byte on loopback over HTTP and TLS, timed against the server's clock."""

from __future__ import annotations

from decimal import Decimal
import json

import pytest

from benchmarking.providers import client
from benchmarking.providers.client import ModelListError, list_models
from benchmarking.providers.gemini_provider import WIRE, call_gemini

from conftest import FAKE_KEY, settings_for
from wire_server import FIXTURES, Reply, WireServer, sse_parts

GEMINI_FIXTURES = FIXTURES.parent / "gemini"
MODEL = "gemini-3.5-flash-lite"


class At:
    def __init__(self, url: str) -> None:
        self.url = url

    def base_url(self, provider: str) -> str:
        return self.url


def gemini_server(server: WireServer) -> WireServer:
    server.answer_paths = (":streamGenerateContent", ":generateContent")
    server.listing = lambda models: {"models": [{"name": f"models/{m}", "displayName": m} for m in models]}
    return server


def measure(server: WireServer, model: str = MODEL, **changes):
    return call_gemini("hello", model, settings_for(At(server.url), "gemini", **changes))


def recorded(name: str, gap_s: float = 0.002) -> Reply:
    return Reply(sse_parts((GEMINI_FIXTURES / f"{name}.sse").read_bytes(), gap_s))


# fixture: (success, error_type, http_status, finish_reason, input, output, cached, reasoning, text starts with)
EXPECT = {
    "text": (True, None, None, "stop", 13, 8, 0, 0, "The capital of France is Paris.\n"),
    "thoughts": (True, None, None, "stop", 34, 1256, 0, 787, "This is a great question! Safely crossing"),
    "function_call": (True, None, None, "stop", 29, 212, 0, 202, ""),
    "cached_content": (True, None, None, "stop", 3520, 44, 3512, 42, "Paris."),
    "max_tokens": (True, None, None, "length", 15, 5, 0, 0, "The capital of France is"),
    "max_tokens_all_thoughts": (False, "empty_answer", None, "length", 15, 2, 0, 2, ""),
    "safety": (False, "bad_request", None, "safety", 14, None, 0, 0, ""),
    "prompt_blocked": (False, "bad_request", None, None, None, None, 0, 0, ""),
    "cut": (False, "incomplete", None, None, 15, None, 0, 0, "The capital of France"),
    "error_in_stream": (False, "server", 503, None, 15, None, 0, 0, "The capital of France"),
}


def test_every_fixture_has_its_source_and_an_expectation():
    sources = json.loads((GEMINI_FIXTURES / "sources.json").read_text())
    assert sorted(e["name"] for e in sources) == sorted(EXPECT)
    for entry in sources:
        assert (GEMINI_FIXTURES / entry["file"]).is_file()
        assert entry["source"]["repo"] and len(entry["source"]["commit"]) == 40


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_every_recorded_gemini_shape_is_stored_as_what_it_was(name):
    success, error_type, status, finish, input_tokens, output_tokens, cached, reasoning, text = EXPECT[name]
    with gemini_server(WireServer()) as server:
        server.reply(recorded(name))
        m = measure(server)
        served = server.served[0]
    assert (m.success, m.error_type, m.http_status) == (success, error_type, status), m.error_message
    assert (m.finish_reason, m.api) == (finish, "generate_content")
    assert (m.input_tokens, m.output_tokens, m.cached_tokens, m.reasoning_tokens) == (
        input_tokens, output_tokens, cached, reasoning)
    assert (m.response_text or "").startswith(text) and (text or not m.response_text)
    assert m.request_id  # Gemini's responseId
    # the SDK chose the API version; the key went in x-goog-api-key, the prompt as contents, the cap as config
    assert served.path.endswith(f"/models/{MODEL}:streamGenerateContent")
    assert served.body["contents"] == [{"role": "user", "parts": [{"text": "hello"}]}]
    assert served.body["generationConfig"]["maxOutputTokens"] == 256
    if name == "safety" or name == "prompt_blocked":
        assert ("SAFETY" if name == "safety" else "blockReason MODEL_ARMOR") in m.error_message
    if success:
        assert 0 < m.ttft_ms <= m.answer_ttft_ms <= m.latency_ms and m.cost_usd is not None
    else:  # what was billed is kept; nothing is derived
        assert m.tokens_per_second is None and (m.cost_usd is None) == (m.output_tokens is None) and m.error_message
        assert FAKE_KEY not in m.error_message


def test_cached_tokens_are_billed_at_the_cached_price_and_thoughts_as_output():
    with gemini_server(WireServer()) as server:
        server.reply(recorded("cached_content"))
        m = measure(server)
    # (3520 - 3512) * 0.30 + 3512 * 0.03 + (2 + 42) * 2.50, per 1M tokens
    expected = (Decimal(8) * Decimal("0.30") + Decimal(3512) * Decimal("0.03") + Decimal(44) * Decimal("2.50")) \
        / Decimal(1_000_000)
    assert m.cost_usd == expected and m.price_cached_input_per_mtok == Decimal("0.03")


def test_the_first_output_is_the_first_chunk_with_a_part_and_thoughts_come_before_the_answer():
    # 40 ms between the chunks that matter: a time shifted onto a neighbour would show, even on a busy machine.
    no_part = {"candidates": [{"content": {"role": "model"}}], "usageMetadata": {"promptTokenCount": 4}}
    thought = {"candidates": [{"content": {"parts": [{"text": "hmm", "thought": True}], "role": "model"}}]}
    answer = {"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}}]}
    last = {"candidates": [{"content": {"parts": [{"text": " there"}], "role": "model"}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 5}}
    parts = [(0.01 if i == 0 else 0.04, b"data: " + json.dumps(c).encode() + b"\r\n\r\n")
             for i, c in enumerate((no_part, thought, answer, last))]
    with gemini_server(WireServer()) as server:
        server.reply(Reply(parts))
        m = measure(server)
        served = server.served[0]
    first, answered, final = ((served.part_sent_at[i] - served.received_at) * 1000 for i in (1, 2, 3))
    assert m.success and m.response_text == "Hi there" and m.output_tokens == 7 and m.reasoning_tokens == 5
    assert first <= m.ttft_ms < first + 30  # not the chunk with no part, 40 ms before
    assert answered <= m.answer_ttft_ms < answered + 30
    assert final <= m.latency_ms < final + 30


@pytest.mark.parametrize("status, body, error_type", [
    (429, {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                     "status": "RESOURCE_EXHAUSTED"}}, "rate_limit"),
    (503, {"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                     "status": "UNAVAILABLE"}}, "server"),
    (400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                     "status": "INVALID_ARGUMENT"}}, "bad_request"),
    (404, {"error": {"code": 404, "message": "models/nope is not found for API version v1beta",
                     "status": "NOT_FOUND"}}, "not_found"),
])
def test_http_errors_raised_by_the_sdk_keep_their_status_and_type(status, body, error_type):
    # error bodies as the Gemini API sends them (ai.google.dev/gemini-api/docs/troubleshooting)
    reply = Reply([(0.005, json.dumps(body).encode())], status, {"content-type": "application/json"}, chunked=False)
    with gemini_server(WireServer()) as server:
        server.reply(reply)
        m = measure(server)
        assert len(server.served) == 1  # the SDK's own retries are off
    assert (m.success, m.error_type, m.http_status) == (False, error_type, status)
    assert m.error_message.startswith(f"HTTP {status}: {body['error']['message'][:20]}")


@pytest.mark.parametrize("first", ["error_in_stream", "http_429"])
def test_a_busy_answer_is_retried_by_the_engine_and_counted(first, monkeypatch):
    monkeypatch.setattr(client, "BACKOFF_BASE_S", 0.01)
    busy = recorded("error_in_stream") if first == "error_in_stream" else Reply(
        [(0.005, b'{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}')], 429,
        {"content-type": "application/json"}, chunked=False)
    with gemini_server(WireServer()) as server:
        server.reply(busy, recorded("text"))
        m = measure(server, retries=2)
        assert len(server.served) == 2
    assert (m.success, m.attempts, m.response_text) == (True, 2, "The capital of France is Paris.\n")


def test_a_model_named_with_or_without_its_prefix_is_the_same_model():
    with gemini_server(WireServer()) as server:
        server.reply(recorded("text"))
        plain, prefixed = measure(server), measure(server, model=f"models/{MODEL}")
        paths = [s.path for s in server.served]
    assert plain.model == prefixed.model == MODEL and plain.cost_usd == prefixed.cost_usd
    assert paths[0] == paths[1] and paths[0].endswith(f"/models/{MODEL}:streamGenerateContent")


def test_a_system_message_is_the_system_instruction():
    with gemini_server(WireServer()) as server:
        server.reply(recorded("text"))
        m = call_gemini([("system", "be brief"), ("user", "hi"), ("assistant", "hello"), ("user", "again")], MODEL,
                        settings_for(At(server.url), "gemini"))
        body = server.served[0].body
    assert m.success
    assert body["systemInstruction"]["parts"] == [{"text": "be brief"}]
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]


def test_a_plain_request_reads_the_whole_body():
    body = (GEMINI_FIXTURES / "max_tokens.sse").read_bytes().removeprefix(b"data: ").strip()
    with gemini_server(WireServer()) as server:
        server.reply(Reply([(0.005, body)], headers={"content-type": "application/json"}, chunked=False))
        m = measure(server, stream=False)
        path = server.served[0].path
    assert path.endswith(":generateContent")
    assert (m.success, m.finish_reason, m.output_tokens, m.ttft_ms) == (True, "length", 5, None)
    assert m.response_text == "The capital of France is" and m.latency_ms > 0


def test_the_model_listing_is_read_in_gemini_shape_under_the_sdks_api_version():
    with gemini_server(WireServer()) as server:
        server.models = [MODEL, "gemini-3.1-flash-lite"]
        models = list_models(WIRE, settings_for(At(server.url), "gemini"))
    assert models == {MODEL: None, "gemini-3.1-flash-lite": None}


def test_the_warm_up_lists_models_under_the_api_version_the_sdk_posts_to():
    with gemini_server(WireServer()) as server:
        server.reply(recorded("text"))
        settings = settings_for(At(server.url), "gemini")
        assert measure(server).success
        posted = server.served[0].path
        made = client._Client(WIRE, settings)
        try:
            listing = made.models_url
        finally:
            made.close()
    assert listing == server.url + posted.split("/models/")[0] + "/models"


@pytest.mark.parametrize("event, error_type", [
    (b"data: not json\r\n\r\n", "bad_response"),
    (b'data: {"candidates": [{"content": {"parts": [{"text": "Hi"}]}}]}\r\n\r\ndata: {"candidates": 5}\r\n\r\n',
     "bad_response"),
    (b'data: {"candidates": []}\r\n\r\n', "empty_answer"),
])
def test_a_stream_no_one_can_read_is_a_failure_through_the_sdk(event, error_type):
    with gemini_server(WireServer()) as server:
        server.reply(Reply(sse_parts(event)))
        m = measure(server)
    assert (m.success, m.error_type) == (False, error_type), m.error_message
    assert "\n" not in m.error_message


def test_a_listing_in_another_shape_is_a_clear_error():
    with WireServer() as server:  # OpenAI's shape, not Gemini's
        with pytest.raises(ModelListError, match="did not answer with a model list"):
            list_models(WIRE, settings_for(At(server.url), "gemini"))


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    import ssl

    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    with gemini_server(WireServer(tls=server_context)) as server:
        yield server


def test_https_answers_are_timed_at_the_wire_through_a_burst_of_800_chunks(tls_server):
    def chunk(text: str, finish: str | None = None) -> bytes:
        candidate = {"content": {"parts": [{"text": text}], "role": "model"}}
        usage = {"promptTokenCount": 3, "candidatesTokenCount": 802}
        return b"data: " + json.dumps({"candidates": [dict(candidate, finishReason=finish) if finish else candidate],
                                       "usageMetadata": usage}).encode() + b"\r\n\r\n"

    parts = [(0.02, chunk("first"))] + [(0.05 if i == 0 else 0.0, chunk(" x")) for i in range(800)]
    parts += [(0.0, chunk(" last", "STOP"))]
    tls_server.reply(Reply(parts))
    m = measure(tls_server)
    served = tls_server.served[0]
    first, last = ((served.part_sent_at[i] - served.received_at) * 1000 for i in (0, len(parts) - 1))
    assert m.success and m.endpoint.startswith("https://") and m.response_text.endswith(" x last")
    assert first <= m.ttft_ms < first + 25
    assert last <= m.latency_ms < last + 25  # not when the SDK got round to the last of 800 chunks


def test_a_key_never_reaches_a_stored_message():
    with gemini_server(WireServer()) as server:
        server.reply(Reply([(0.005, json.dumps({"error": {"code": 400, "message": f"API key {FAKE_KEY} not valid",
                                                          "status": "INVALID_ARGUMENT"}}).encode())], 400,
                           {"content-type": "application/json"}, chunked=False))
        m = measure(server)
    assert m.error_type == "bad_request" and FAKE_KEY not in m.error_message and "****" in m.error_message



def test_main_measures_gemini_and_check_finds_its_model_by_either_name(tmp_path):
    from test_cli import rows, run_main

    with gemini_server(WireServer()) as server:
        server.models = [MODEL]
        server.reply(recorded("thoughts"))
        env = {"GEMINI_API_KEY": FAKE_KEY, "GEMINI_BASE_URL": server.url, "GEMINI_MODEL": f"models/{MODEL}"}
        ran = run_main(tmp_path, "--providers", "gemini", **env)
        checked = run_main(tmp_path, "check", "--providers", "gemini", **env)
        missing = run_main(tmp_path, "check", "--providers", "gemini", **{**env, "GEMINI_MODEL": "gemini-nope"})
    assert ran.returncode == 0, ran.stderr
    stored = rows(tmp_path / "benchmarks.db", "select provider, model, api, success, output_tokens, reasoning_tokens "
                                              "from benchmark_results")
    assert [tuple(r) for r in stored] == [("gemini", MODEL, "generate_content", 1, 1256, 787)]
    assert f"ok       gemini: key set (GEMINI_API_KEY), model models/{MODEL} is listed" in checked.stdout
    assert "PROBLEM  gemini: model gemini-nope is not among the 1 models" in missing.stdout
    for done in (ran, checked, missing):
        assert "Traceback" not in done.stderr and FAKE_KEY not in done.stdout + done.stderr


def test_a_stalled_stream_is_cut_at_the_timeout_and_a_closed_port_is_a_connection_failure():
    import socket
    import time

    first = (GEMINI_FIXTURES / "text.sse").read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    with gemini_server(WireServer()) as server:
        server.reply(Reply([(0.005, first), (3.0, b"")]))
        started = time.perf_counter()
        m = measure(server, timeout_s=0.5)
        elapsed = time.perf_counter() - started
    assert (m.success, m.error_type, m.response_text) == (False, "timeout", "The")
    assert elapsed < 2.5  # 0.5 s and the set-up around it, not the server's 3 s
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    refused = call_gemini("hello", MODEL, settings_for(At(f"http://127.0.0.1:{port}"), "gemini"))
    assert (refused.success, refused.error_type) == (False, "connection")


@pytest.mark.parametrize("written", [MODEL, f"models/{MODEL}"])
def test_a_model_with_or_without_its_prefix_is_planned_and_bounded_in_cost_under_one_name(written):
    from benchmarking.benchmark_runner import PROVIDERS, cost_bound, plan
    from benchmarking.settings.load import load_settings

    settings = load_settings(prompt="hi", builtin=[(name, model) for name, _, model in PROVIDERS],
                             environ={"GEMINI_API_KEY": FAKE_KEY, "GEMINI_MODEL": written},
                             provider_selection="gemini")
    cells = plan(settings)
    bound = cost_bound(cells, 1, "off")
    assert [(c.provider, c.model) for c in cells] == [("gemini", MODEL)]
    assert bound.unpriced == () and bound.usd > 0  # a prefixed name must not slip past --max-cost unpriced


def test_hidden_thoughts_are_output_tokens_but_not_decoded_after_the_first_visible_one():
    def chunk(text: str, finish: str | None = None) -> bytes:
        candidate = {"content": {"parts": [{"text": text}], "role": "model"}, **({"finishReason": finish} if finish
                                                                                else {})}
        usage = {"promptTokenCount": 4, "candidatesTokenCount": 10, "thoughtsTokenCount": 50}
        return b"data: " + json.dumps({"candidates": [candidate], "usageMetadata": usage}).encode() + b"\r\n\r\n"

    with gemini_server(WireServer()) as server:
        server.reply(Reply([(0.01, chunk("one")), (0.03, chunk(" two", "STOP"))]))
        m = measure(server)
    assert m.success and (m.output_tokens, m.reasoning_tokens) == (60, 50)
    assert m.tokens_per_second == pytest.approx(9 / ((m.latency_ms - m.ttft_ms) / 1000))


@pytest.mark.parametrize("where", ["http", "stream"])
def test_the_wait_google_asks_for_in_retry_info_is_the_engines_backoff(where, monkeypatch):
    # the 429 body as Gemini sends it: QuotaFailure and RetryInfo in `details`
    error = {"code": 429, "message": "You exceeded your current quota, please retry in 0.05s.",
             "status": "RESOURCE_EXHAUSTED", "details": [
                 {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                     {"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                 {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.05s"}]}
    waits: list[float] = []
    monkeypatch.setattr(client, "pause", lambda s: waits.append(s) or False)
    busy = Reply([(0.005, json.dumps({"error": error}).encode())], 429, {"content-type": "application/json"},
                 chunked=False) if where == "http" else Reply(sse_parts(b"data: " + json.dumps({"error": error}).encode()
                                                                        + b"\r\n\r\n"))
    with gemini_server(WireServer()) as server:
        server.reply(busy, recorded("text"))
        m = measure(server, retries=1)
    assert (m.success, m.attempts, waits) == (True, 2, [0.05])


def test_an_endpoint_declared_with_api_generate_content_is_measured_through_google_genai(tmp_path):
    # a Gemini-compatible server (a proxy, LiteLLM) in benchmark.toml, measured in its own dialect
    from benchmarking.benchmark_runner import plan
    from benchmarking.settings.load import load_settings

    with gemini_server(WireServer()) as server:
        server.reply(recorded("text"))
        toml = tmp_path / "benchmark.toml"
        toml.write_text(f'[[providers]]\nname = "gemini-proxy"\nbase_url = "{server.url}/proxy"\n'
                        f'model = "models/{MODEL}"\napi = "generate_content"\napi_key_env = "PROXY_KEY"\n'
                        'input_price = "0.10"\noutput_price = "0.40"\nprice_as_of = "2026-12-07"\n')
        settings = load_settings(prompt="hello", builtin=[], environ={"PROXY_KEY": FAKE_KEY},
                                 config_path=str(toml), provider_selection="gemini-proxy")
        [cell] = plan(settings)
        m = cell.call_fn(cell.prompt.messages, cell.model, cell.settings)
        served = server.served[0]
    assert (cell.model, m.model, m.api, m.success) == (MODEL, MODEL, "generate_content", True)
    assert served.path.startswith("/proxy/") and served.path.endswith(f"/models/{MODEL}:streamGenerateContent")
    assert m.cost_usd == (Decimal(13) * Decimal("0.10") + Decimal(8) * Decimal("0.40")) / Decimal(1_000_000)


def test_a_count_the_bill_rests_on_that_makes_no_sense_leaves_the_cost_empty_never_a_guess():
    chunk = {"candidates": [{"content": {"parts": [{"text": "Paris."}], "role": "model"}, "finishReason": "STOP"}],
             "usageMetadata": {"promptTokenCount": 1000, "cachedContentTokenCount": 1001, "candidatesTokenCount": 100}}
    with WireServer() as server:
        gemini_server(server).reply(Reply(sse_parts(b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")))
        m = measure(server)
    assert m.success and (m.input_tokens, m.output_tokens, m.cached_tokens) == (1000, 100, None)
    # Priced, every prompt token would have been billed at the full input price: a cost no one was charged.
    assert m.cost_usd is None and m.price_input_per_mtok is not None
    assert any("cost left empty" in w for w in m.warnings) and any("cached_tokens = 1001" in w for w in m.warnings)


@pytest.mark.parametrize("name", ["..", "a/b", "x#frag", "x?alt=json", "%2e%2e%2fadmin", "x\r\nX-Injected: 1",
                                  "models/../../v1/models", "models/", "gém"])
def test_a_model_name_that_would_leave_its_path_segment_is_one_line_exit_2_nothing_sent(tmp_path, name):
    from test_cli import run_main

    done = run_main(tmp_path, "--simulate", "--providers", "gemini", "--model", f"gemini={name}")
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert done.stderr.startswith("main.py: error: gemini model ") and done.stderr.count("\n") == 1
    assert not (tmp_path / "benchmarks.db").exists() or "gemini" not in (tmp_path / "benchmarks.db").read_bytes().decode(
        "latin-1")


def test_a_model_name_with_or_without_models_is_the_same_model():
    from benchmarking.providers.dialects.generate_content import bare_model

    assert bare_model("models/gemini-3.5-flash-lite") == bare_model("gemini-3.5-flash-lite") == "gemini-3.5-flash-lite"


def test_check_follows_the_listings_pages_and_passes_over_an_item_without_a_name():
    others = [{"name": f"models/other-{i}"} for i in range(50)]

    def page(path: str) -> object:
        if "pageToken=p2" in path:
            return {"models": [{"displayName": "no name"}, {"name": f"models/{MODEL}"}]}
        return {"models": others, "nextPageToken": "p2"}

    with WireServer() as server:
        gemini_server(server).model_list = page
        listed = list_models(WIRE, settings_for(At(server.url), "gemini"))
        assert len(server.listed) == 2
    assert MODEL in listed and "other-49" in listed and len(listed) == 51


@pytest.mark.parametrize("suffix", ["/v1", "/v1beta", "/v1alpha/"])
def test_a_base_url_ending_in_an_api_version_is_not_sent_it_twice(suffix):
    with WireServer() as server:
        gemini_server(server).reply(recorded("text"))
        m = measure(server, base_url=server.url + suffix)
        (served,) = server.served
    assert m.success, m.error_message
    assert served.path.count("/v1") == 1 and served.path.endswith(f"/models/{MODEL}:streamGenerateContent")


def test_a_finish_reason_the_sdk_does_not_know_is_stored_and_the_sdk_says_nothing(tmp_path):
    from test_cli import rows, run_main

    chunk = {"candidates": [{"content": {"parts": [{"text": "Paris."}], "role": "model"}, "finishReason": "FOO_NEW"}],
             "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2}}
    with WireServer() as server:
        gemini_server(server).reply(Reply(sse_parts(b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n")))
        server.models = [MODEL]
        done = run_main(tmp_path, "--providers", "gemini", GEMINI_API_KEY=FAKE_KEY, GEMINI_BASE_URL=server.url)
    (row,) = rows(tmp_path / "benchmarks.db", "select finish_reason from benchmark_results")
    assert row["finish_reason"] is not None and "foo_new" in row["finish_reason"].lower()
    assert "not a valid" not in done.stderr and "Warning" not in done.stderr, done.stderr
