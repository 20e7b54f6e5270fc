"""The secret registry and its scrubber (issue 17, section 1): every form of a registered secret is removed from every
output; a URL gives up its credentials and tokens, not its address; what a terminal shows is inert."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
import html
import io
import json
import logging
import os
from pathlib import Path
import string
import subprocess
import sys
from urllib.parse import quote, quote_plus
from uuid import uuid4

from hypothesis import given, settings, strategies as st
import pytest

from benchmarking import redaction
from benchmarking.errors import ConfigError
from benchmarking.settings.environment import storage_settings
from benchmarking.settings.urls import checked_base_url
from benchmarking.settings.values import Secret
from benchmarking.measurement import Measurement
from benchmarking.redaction import ScrubbedStream, inert, register, register_url, scrub, scrubbed_output, shown
from benchmarking.storage.outbox.entries import encode_save_result
from benchmarking.storage.schema import result_row

SRC = Path(__file__).resolve().parent.parent / "src"
# Changes when URL-encoded (/ + =), when case-folded, and long enough to be cut in two.
SECRET = "Rq7vXk/Lm9Tz+Pw4Ns=Hb2Yc8Jd"


@pytest.fixture(autouse=True)
def registered_secret():
    register(SECRET)


def test_the_canary_secret_changes_in_every_form_it_is_tested_in():
    assert quote(SECRET, safe="") != SECRET and quote_plus(SECRET) != SECRET and SECRET.lower() != SECRET
    assert len(SECRET) // 2 >= redaction.SECRET_RUN_CHARS


@pytest.mark.parametrize("form", [
    SECRET, quote(SECRET, safe=""), quote_plus(SECRET), SECRET.lower(), SECRET.upper(), SECRET.swapcase(),
    quote(SECRET, safe="").lower(), json.dumps(SECRET)[1:-1], html.escape(SECRET), SECRET[:14], SECRET[-13:],
])
def test_a_registered_secret_is_scrubbed_in_every_form(form):
    text = f"error: the server said {form!s}, twice: {form}."
    clean = scrub(text)
    assert form not in clean and clean.startswith("error: the server said ****")


def test_a_secret_cut_in_two_is_scrubbed_in_both_halves_and_the_text_around_it_is_kept():
    half = len(SECRET) // 2
    clean = scrub(f"key {SECRET[:half]} and {SECRET[half:]} end\nnext line")
    assert clean == "key **** and **** end\nnext line"


def test_a_secret_object_registers_itself_when_it_is_made():
    key = "Secret-Made-Here/9xQ+zz"
    Secret(key)
    assert scrub(f"echo {key.upper()}") == "echo ****"


def test_a_url_gives_its_credentials_and_tokens_not_its_address():
    register_url("https://az.example.com/openai/deployments/gpt4o-2024-08-06?api-version=2024-10-21&key=Zx81Qw7Ee5Rt")
    register("slack://Tq3Wbot1Zx/B08Hk2Lm9P/Xy7Vz3Qd5Kf9Lp2R?format=markdown")
    register_url("postgresql://bench:p%2Fss-Word-99@db.example:5432/results")
    registered = redaction.registered()
    for secret in ("Zx81Qw7Ee5Rt", "Tq3Wbot1Zx", "B08Hk2Lm9P", "Xy7Vz3Qd5Kf9Lp2R", "p%2Fss-Word-99"):
        assert secret in registered
    for plain in ("2024-10-21", "gpt4o-2024-08-06", "markdown", "az.example.com", "db.example", "bench"):
        assert plain not in registered
    assert scrub("password was p/ss-Word-99") == "password was ****"


@pytest.mark.parametrize("dsn, password", [("host=db password=Kv8-Np3-Qs1 dbname=d", "Kv8-Np3-Qs1"),
                                           ("host=db password='Qu0 ted Pw9' dbname=d", "Qu0 ted Pw9")])
def test_a_key_value_database_string_gives_its_password(dsn, password):
    redaction.register_database_url(dsn)
    assert password in redaction.registered()


def test_a_credential_header_is_registered_with_and_without_its_scheme_word():
    redaction.register_header("Authorization", "Bearer Hd7Tok3nValue")
    redaction.register_header("X-Title", "my-benchmark-app")
    assert {"Bearer Hd7Tok3nValue", "Hd7Tok3nValue"} <= set(redaction.registered())
    assert "my-benchmark-app" not in redaction.registered()


def test_values_too_short_to_scrub_safely_are_not_registered():
    register("admin")
    assert "admin" not in redaction.registered() and scrub("admin") == "admin"


def test_key_shapes_nobody_registered_are_scrubbed_too():
    text = "Authorization: Basic dXNlcjpwYXNz; password=hunter2hunter; api_key=abc123"
    assert scrub(text) == "Authorization: Basic ****; password=****; api_key=****"
    google = "AIzaSyD" + "x7Q-2b_Kp9" * 3 + "Lm"  # the shape of a Google API key, 39 characters
    assert scrub(f"API key not valid: {google}. Please pass a valid API key.") == \
        "API key not valid: ****. Please pass a valid API key."


def test_inert_removes_escape_sequences_and_control_characters_keeping_newline_tab_and_crlf():
    text = "a\x1b[31mred\x1b[0m \x1b]0;title\x07 b\r\nc\rd\x00e\tf\x1b[2J\x9b1mg\x07 \u202egnp.exe"
    assert inert(text) == "ared  b\r\ncde\tfg gnp.exe"


def test_an_escape_sequence_inside_a_secret_does_not_hide_it():
    assert shown(f"key {SECRET[:10]}\x1b[0m{SECRET[10:]}") == "key ****"


def test_a_scrubbed_stream_sees_a_secret_written_in_pieces_and_passes_its_own_controls():
    out = io.StringIO()
    stream = ScrubbedStream(out)
    for piece in ("key ", SECRET[:5], SECRET[5:17], SECRET[17:], " \x1b[2J", "end\n", "progress"):
        stream.write(piece)
    stream.control("\r\x1b[K")
    stream.write(f"tail {SECRET}")
    stream.flush()
    assert out.getvalue() == "key **** end\nprogress\r\x1b[Ktail ****"


def test_library_log_lines_and_tracebacks_are_scrubbed_on_every_handler(capsys):
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with scrubbed_output():
            logging.getLogger("psycopg.pool").warning("connect failed for %s", SECRET)
            try:
                raise ValueError(f"bad key {SECRET.lower()}")
            except ValueError:
                logging.getLogger("httpx").exception("request failed")
            print(f"printed {quote(SECRET, safe='')}")
            print(f"stderr {SECRET}", file=sys.stderr)
    finally:
        root.removeHandler(handler)
        handler.removeFilter(redaction._FILTER)
    captured = capsys.readouterr()
    logged = buffer.getvalue()
    assert "connect failed for ****" in logged and "ValueError: bad key ****" in logged
    assert captured.out == "printed ****\n" and captured.err == "stderr ****\n"
    assert not isinstance(sys.stdout, ScrubbedStream)  # put back after the block


def test_a_log_line_through_the_last_resort_handler_is_scrubbed():
    # A process of its own: under pytest the root logger has handlers, so Python's last resort is never used.
    code = ("import logging; from benchmarking.redaction import register, scrubbed_output\n"
            f"register({SECRET!r})\n"
            "with scrubbed_output():\n"
            f"    logging.getLogger('apprise.unhandled').error('posting to %s failed', {SECRET.lower()!r})\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert done.stderr == "posting to **** failed\n"


def test_stored_rows_and_outbox_lines_are_scrubbed_at_the_one_storage_boundary():
    m = Measurement(provider="openai", model="m", success=False, started_at=datetime.now(timezone.utc), stream=True,
                    error_message=f"HTTP 401: key {SECRET.lower()} refused", request_id=SECRET[:15],
                    response_text=f"the bearer of news said {SECRET}")
    row = result_row(uuid4(), uuid4(), datetime.now(timezone.utc), m)
    assert row["error_message"] == "HTTP 401: key **** refused" and row["request_id"] == "****"
    # An answer keeps what only looks like a key, and loses the registered one.
    assert row["response_text"] == "the bearer of news said ****"
    line = json.dumps(encode_save_result(uuid4(), uuid4(), datetime.now(timezone.utc), replace(m, model=SECRET)))
    assert SECRET[:12].lower() not in line.lower()


def test_a_key_value_database_string_is_refused_without_printing_it():
    with pytest.raises(ConfigError) as caught:
        storage_settings({"DATABASE_URL": "host=x password=PwNotShown99 dbname=d"})
    assert "PwNotShown99" not in str(caught.value) and "host=x" not in str(caught.value)
    assert str(caught.value).startswith("DATABASE_URL must start with sqlite:/// or postgresql://")


def test_a_bad_percent_escape_in_the_database_password_is_refused_by_us_without_printing_it():
    with pytest.raises(ConfigError) as caught:
        storage_settings({"DATABASE_URL": "postgresql://u:Pw%zzNotShown@127.0.0.1:5432/d"})
    assert "NotShown" not in str(caught.value) and "%25" in str(caught.value)


@pytest.mark.parametrize("url", ["http://user:Pw9Secret99@127.0.0.1:8000/v1", "https://Tok9Secret99@h.example/v1"])
def test_credentials_in_a_base_url_are_refused_naming_where_the_key_goes(url):
    with pytest.raises(ConfigError) as caught:
        checked_base_url(url, "OPENAI_BASE_URL", "OPENAI_API_KEY")
    message = str(caught.value)
    assert message.startswith("OPENAI_BASE_URL holds a user name or password") and "OPENAI_API_KEY" in message
    assert "Secret99" not in message


def test_a_notification_leaves_the_process_scrubbed():
    from echo_server import EchoServer
    from benchmarking.watch.notify import send

    with EchoServer(status=200) as receiver:
        send([f"json://{receiver.url[7:]}/hook"], f"alert {SECRET}", f"error: {quote(SECRET, safe='')} refused")
    (body,) = receiver.bodies
    assert "alert ****" in body and "error: **** refused" in body


@settings(max_examples=150, deadline=None)
@given(secret=st.text(alphabet=string.ascii_letters + string.digits + "/+=-_.~!$%&*", min_size=12, max_size=60),
       before=st.text(max_size=40), after=st.text(max_size=40),
       form=st.sampled_from(["raw", "quote", "quote_plus", "lower", "upper", "json"]))
def test_no_run_of_a_known_secret_survives_in_any_form(secret, before, after, form):
    echoed = {"raw": secret, "quote": quote(secret, safe=""), "quote_plus": quote_plus(secret), "lower": secret.lower(),
              "upper": secret.upper(), "json": json.dumps(secret)[1:-1]}[form]
    # Given, not registered: a registered "000000000000" would be scrubbed from every later test's output.
    clean = scrub(before + echoed + after, secrets=(secret,)).lower()
    echoed = echoed.lower()
    assert not any(echoed[i : i + 12] in clean for i in range(len(echoed) - 11))


def test_an_isolated_registry_forgets_what_was_registered_in_it_and_what_was_remembered():
    assert scrub("text Iso8Lated-Secret-77 text") == "text Iso8Lated-Secret-77 text"
    with redaction.isolated_registry():
        register("Iso8Lated-Secret-77")
        assert scrub("text Iso8Lated-Secret-77 text") == "text **** text"
    assert scrub("text Iso8Lated-Secret-77 text") == "text Iso8Lated-Secret-77 text"
    assert SECRET in redaction.registered()  # what was there before stays


@pytest.mark.parametrize("piece", [5, 7, 11])
def test_a_secret_echoed_in_short_pieces_one_a_line_is_scrubbed_whole(piece):
    secret = "ZcanSplitKey/+=%zz!abcdef0123"
    register(secret)
    echo = "\n".join(secret[i : i + piece] for i in range(0, len(secret), piece))
    for text in (f"echo:\n{echo}\nend", f"echo: {echo.replace(chr(10), ' ')} end", f"echo:\r\n{echo}\r\nend"):
        shown_text = scrub(text)
        assert "".join(shown_text.split()).find(secret[:12]) == -1, shown_text
        assert shown_text.startswith("echo:") and shown_text.endswith("end") and "****" in shown_text


def test_ordinary_text_around_white_space_is_left_alone():
    register("ZcanSplitKey/+=%zz!abcdef0123")
    text = "the quick brown fox jumps over the lazy dog\nand a second line with spaces"
    assert scrub(text) == text


@pytest.mark.parametrize("prefix", ["", "Bearer ", "user:", "x", "xy"])
def test_the_base64_of_a_secret_behind_any_prefix_is_scrubbed(prefix):
    import base64

    secret = "ZcanB64Secret0123456789abcdef"
    register(secret)
    encoded = base64.b64encode((prefix + secret + "\n").encode()).decode()
    shown_text = scrub(f"Authorization: Basic-ish {encoded} seen")
    assert "****" in shown_text
    # What is left of the encoding decodes to no run of SECRET_RUN_CHARS of the secret.
    left = "".join(part for part in shown_text.split("****"))
    for start in range(len(secret) - 11):
        assert base64.b64encode(secret[start : start + 12].encode()).decode()[:12] not in left
