"""`python main.py watch` and the evaluation after a run, as a user runs them: exit statuses, bad settings refused
before anything is measured, notify URLs never printed, a database that fails during evaluation costs one line."""

from __future__ import annotations

from datetime import timedelta
import json
import sqlite3

import pytest

from benchmarking.measurement import utc_now
from benchmarking.storage.sqlite import SQLiteStorage

from alert_helpers import FAIL, Receiver, Trickler, write_results
from test_cli import run_main

SECRET_TOKEN = "xoxb-0123456789-SECRETtoken"


def seed_outage(tmp_path):
    with SQLiteStorage(tmp_path / "benchmarks.db") as storage:
        write_results(storage, "groq", "m", [FAIL] * 3, utc_now() - timedelta(minutes=1))


def test_watch_prints_the_firing_alert_and_exits_3_only_with_fail_on_firing(tmp_path):
    seed_outage(tmp_path)
    done = run_main(tmp_path, "watch", "--fail-on-firing")
    assert done.returncode == 3, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "alerts: 1 firing, 0 resolved in the last 24 h (rules: outage, slo_breach, regression; " \
                       "window 1h)"
    assert lines[1].startswith("FIRING    outage on groq/m: the last 3 requests failed (server_error) (since ")
    assert run_main(tmp_path, "watch").returncode == 0


def test_watch_with_every_rule_switched_off_says_so(tmp_path):
    (tmp_path / "benchmark.toml").write_text("[alerts]\nrules = []\n")
    seed_outage(tmp_path)
    done = run_main(tmp_path, "watch", "--fail-on-firing")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "alerts: 0 firing, 0 resolved in the last 24 h (rules: none; window 1h)\n"


def test_watch_with_nothing_stored_exits_0(tmp_path):
    done = run_main(tmp_path, "watch", "--fail-on-firing")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("alerts: 0 firing, 0 resolved")


@pytest.mark.parametrize("toml, message", [
    ("[slo]\nttft_msec = 800\n", "unknown key 'ttft_msec' (did you mean ttft_ms?)"),
    ("[slo]\nttft_ms = -5\n", "ttft_ms must be more than 0, not -5"),
    ("[slo]\npercentile = 100\n", "percentile must be a whole number from 1 to 99, like percentile = 90, not 100"),
    ("[slo]\nsuccess_rate = 1.5\n", "success_rate is a fraction from 0 to 1"),
    ('[slo."openai/gpt-4o-mini"]\nlatency = 1\n', "unknown key 'latency'"),
    ('[alerts]\nrules = ["outage", "slowness"]\n', "unknown rule 'slowness'"),
    ('[alerts]\nwindow = "soon"\n', "window takes a duration like 90s"),
    ('[alerts]\nconsecutive_failures = 0\n', "consecutive_failures must be a whole number from 1 to 10,000"),
    # beyond a 64-bit LIMIT: the database refused it at evaluation time (watch exited 1, "datatype mismatch")
    ('[alerts]\nconsecutive_failures = 9223372036854775808\n', "consecutive_failures must be a whole number from 1"),
    # TOML's nan and inf are floats: "must be a number ... not a number" said nothing
    ("[slo]\nttft_ms = nan\n", "ttft_ms must be a finite number, like ttft_ms = 800, not nan"),
    ("[slo]\nsuccess_rate = -inf\n", "success_rate must be a finite number, like success_rate = 0.99, not -inf"),
    ("[alerts]\nregression_threshold = inf\n", "regression_threshold must be a finite number"),
    ('[notify]\nurls = ["tgram://' + SECRET_TOKEN + '"]\n', "URL 1 of 1 (tgram://…) is not a URL Apprise can use"),
    ('[notify]\nurls = ["nonsense-' + SECRET_TOKEN + '"]\n', "URL 1 of 1 (…) is not a URL Apprise can use"),
])
def test_a_bad_watching_setting_is_one_line_and_exit_2_before_anything_is_measured(tmp_path, toml, message):
    (tmp_path / "benchmark.toml").write_text(toml)
    for args in (["--simulate"], ["watch"]):
        done = run_main(tmp_path, *args)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.splitlines()) == 1 and message in done.stderr
        assert SECRET_TOKEN not in done.stderr + done.stdout
        assert not (tmp_path / "benchmarks.db").exists()


def test_a_malformed_benchmark_notify_is_refused_without_printing_it(tmp_path):
    done = run_main(tmp_path, "--simulate", BENCHMARK_NOTIFY=f"json://127.0.0.1:1/ok,discord://{SECRET_TOKEN}")
    assert done.returncode == 2
    assert done.stderr.strip() == ("main.py: error: BENCHMARK_NOTIFY: URL 2 of 2 (discord://…) is not a URL Apprise "
                                   "can use: check it against https://github.com/caronc/apprise/wiki (the URL is not "
                                   "printed: it holds a token)")


@pytest.mark.parametrize("value", [",,", " , ,"])
def test_a_benchmark_notify_of_only_commas_is_refused(tmp_path, value):
    """It named no URL, yet won over [notify] urls: every notification was silently switched off."""
    (tmp_path / "benchmark.toml").write_text('[notify]\nurls = ["json://127.0.0.1:1/hook"]\n')
    for args in (["--simulate"], ["watch"]):
        done = run_main(tmp_path, *args, BENCHMARK_NOTIFY=value)
        assert done.returncode == 2, done.stderr
        assert done.stderr == ("main.py: error: BENCHMARK_NOTIFY names no URL: give Apprise URLs separated by commas, "
                               "or unset it to use [notify] urls in benchmark.toml\n")
    assert not (tmp_path / "benchmarks.db").exists()


def test_a_live_run_evaluates_the_rules_and_notifies_once(tmp_path):
    """Three requests to an endpoint where nothing listens: a real run's failures open an outage alert at once."""
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    (tmp_path / "benchmark.toml").write_text(
        f'[[providers]]\nname = "local"\nbase_url = "http://127.0.0.1:{port}/v1"\nmodel = "m"\n')
    with Receiver() as receiver:
        url = receiver.url(SECRET_TOKEN)
        done = run_main(tmp_path, "--providers", "local", "--repeat", "3", BENCHMARK_NOTIFY=url)
        assert done.returncode == 1, done.stderr  # the failures, not the alert
        assert "alert FIRING: outage on local/m: the last 3 requests failed (connection)" in done.stdout
        (message,) = receiver.messages
        run_id = done.stdout.split("Summary: run ")[1].split()[0]
        assert f"run: {run_id}" in message["message"]
        again = run_main(tmp_path, "watch", BENCHMARK_NOTIFY=url)
        assert "FIRING    outage on local/m" in again.stdout and len(receiver.messages) == 1
        test = run_main(tmp_path, "watch", "--test-notify", BENCHMARK_NOTIFY=url)
        assert test.stdout == "test notification to json://…: sent\n"
        assert receiver.messages[-1]["title"] == "[benchmark-engine] test notification"
        for output in (done, again, test):
            assert SECRET_TOKEN not in output.stdout + output.stderr
    with sqlite3.connect(tmp_path / "benchmarks.db") as db:
        (details,) = db.execute("select details from alerts").fetchone()
        stored = " ".join(str(row) for row in db.execute("select * from alerts"))
    assert json.loads(details)["consecutive_failures"] == 3 and SECRET_TOKEN not in stored


def test_a_database_down_during_evaluation_costs_one_line_and_leaves_the_exit_status(tmp_path):
    done = run_main(tmp_path, "--simulate", "--providers", "groq",
                    DATABASE_URL="postgresql://postgres@127.0.0.1:1/nothing_here")
    assert done.returncode == 1  # as without alerts: the result is only in the outbox
    lines = [line for line in done.stderr.splitlines() if line.startswith("alerts:")]
    assert len(lines) == 1 and lines[0].startswith("alerts: not evaluated after run ")
    assert (tmp_path / "outbox" / "pending.jsonl").read_text().count('"save_result"') == 1


def test_a_receiver_that_trickles_holds_watch_no_longer_than_the_send_bound_in_all(tmp_path):
    """A byte a second never trips a socket timeout: the bound ended our wait, but a worker thread of Apprise's kept
    reading and was joined at interpreter exit (exit came after 154 s; under cron's lock every later tick was
    skipped). The process ends within the bound and a margin for starting up, and the message stays pending."""
    import time

    seed_outage(tmp_path)
    with Trickler(give_up_s=120, byte_every_s=1.0) as trickler:
        started = time.monotonic()
        done = run_main(tmp_path, "watch", timeout=90, BENCHMARK_NOTIFY=trickler.url(SECRET_TOKEN))
        took = time.monotonic() - started
        assert trickler.answering.is_set() and not trickler.stop.is_set(), done.stdout + done.stderr
    assert done.returncode == 0, done.stderr
    assert took < 40, f"watch took {took:.0f} s against a trickling receiver"
    assert "could not be sent to json://…: kept pending" in done.stderr
    assert SECRET_TOKEN not in done.stdout + done.stderr
    with sqlite3.connect(tmp_path / "benchmarks.db") as db:
        assert db.execute("select notified_firing_at, notify_attempts from alerts").fetchall() == [(None, 1)]


def test_watch_on_supabase_without_the_alerts_table_says_to_run_schema_sql(tmp_path, supabase_api):
    """A Supabase database set up before alerts: a run says to run schema.sql; watch said only that PostgREST could not
    find the table."""
    import psycopg

    from conftest import SERVICE_KEY

    with psycopg.connect(supabase_api.dsn, autocommit=True) as conn:
        conn.execute("drop table alerts")
    done = run_main(tmp_path, "watch", SUPABASE_URL=supabase_api.url, SUPABASE_SERVICE_ROLE=SERVICE_KEY)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "'public.alerts'" in done.stderr and "run schema.sql in the Supabase SQL editor" in done.stderr
    assert SERVICE_KEY not in done.stdout + done.stderr


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGKILL"])
def test_a_notification_being_sent_ends_with_watch_killed_mid_send(tmp_path, signum):
    """The message is sent by a child process: it must not outlive watch, killed or ended by SIGTERM mid-send (a
    child left reading from the receiver for minutes is the process left behind that the bound was to prevent)."""
    import signal
    import subprocess
    import sys

    from test_cli import MAIN, clean_env

    seed_outage(tmp_path)
    with Trickler(give_up_s=120, byte_every_s=0.5) as trickler:
        watch = subprocess.Popen([sys.executable, str(MAIN), "watch"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, env=clean_env(BENCHMARK_NOTIFY=trickler.url(SECRET_TOKEN)))
        try:
            assert trickler.answering.wait(60)
            watch.send_signal(getattr(signal, signum))
            assert watch.wait(30) != 0
            assert trickler.hung_up.wait(10)  # the child's connection was closed: it ended with watch
        finally:
            watch.kill()
            watch.wait()
    assert SECRET_TOKEN not in watch.stderr.read().decode()
    watch.stderr.close()


def test_notify_urls_holding_commas_can_be_given_through_the_environment(tmp_path):
    """BENCHMARK_NOTIFY was split at every comma, so a URL holding one (Apprise's mailto://...?to=a@x,b@y) could not
    be given through the environment. Whitespace separates, and a comma or semicolon only before a new scheme://, as
    Apprise itself splits a list of URLs."""
    with Receiver() as receiver:
        base = receiver.url("")
        listed = f" {base}a,b {base}c,{base}d\n{base}e; ,{base}f, "
        done = run_main(tmp_path, "watch", "--test-notify", BENCHMARK_NOTIFY=listed)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "test notification to json://…: sent\n" * 5
        assert sorted(receiver.paths) == ["/a%2Cb", "/c", "/d", "/e", "/f"]


def test_a_benchmark_notify_that_is_not_utf8_is_refused_in_one_line(tmp_path):
    """Bytes that are not UTF-8 reach Python as lone surrogates, on which Apprise's URL parser raised: 'unexpected
    error', exit 1."""
    for value in ("json://127.0.0.1:1/\udcff", f"json://127.0.0.1:1/ok discord://{SECRET_TOKEN}\udcff"):
        for args in (["watch", "--test-notify"], ["--simulate"]):
            done = run_main(tmp_path, *args, BENCHMARK_NOTIFY=value)
            assert done.returncode == 2, done.stderr
            assert done.stderr == ("main.py: error: BENCHMARK_NOTIFY is not UTF-8 text: set it again from a UTF-8 "
                                   "source (the value is not printed: it holds tokens)\n")
    assert not (tmp_path / "benchmarks.db").exists()


def test_a_url_apprise_raises_on_is_refused_like_one_it_cannot_load():
    from benchmarking.errors import ConfigError
    from benchmarking.settings.notify_urls import check_url

    with pytest.raises(ConfigError, match=r"^\[notify\] urls: URL 1 of 1 \(json://…\) is not a URL Apprise can use"):
        check_url("json://127.0.0.1:1/\udcff", "[notify] urls: URL 1 of 1")


def test_test_notify_without_a_url_is_a_usage_error(tmp_path):
    done = run_main(tmp_path, "watch", "--test-notify")
    assert done.returncode == 2
    assert "no notify URL is set" in done.stderr


def test_test_notify_tells_two_urls_of_one_scheme_apart(tmp_path):
    """Failures were told by scheme: one json:// URL refusing made every json:// URL "NOT delivered"."""
    with Receiver() as good, Receiver() as down:
        down.status = 503
        urls = f"{down.url(SECRET_TOKEN)},{good.url(SECRET_TOKEN)}"
        done = run_main(tmp_path, "watch", "--test-notify", BENCHMARK_NOTIFY=urls)
    assert done.returncode == 1
    assert done.stdout == "test notification to json://…: NOT delivered\ntest notification to json://…: sent\n"
    assert len(good.messages) == 1 and SECRET_TOKEN not in done.stdout + done.stderr


def test_report_shows_slo_attainment_and_goodput_per_hour_of_wall_time(tmp_path):
    (tmp_path / "benchmark.toml").write_text("[slo]\nttft_ms = 800\n")
    with SQLiteStorage(tmp_path / "benchmarks.db") as storage:
        # Five requests 30 minutes apart: the first starts 1 s before it is stored, so the wall time is 2 h 1 s.
        write_results(storage, "groq", "m", [{}] * 4 + [{"ttft_ms": 900.0}], utc_now(),
                      spacing=timedelta(minutes=30))
    done = run_main(tmp_path, "report", "--format", "json")
    (summary,) = json.loads(done.stdout)["providers"]
    assert summary["slo_attainment"] == 0.8
    assert summary["goodput_per_hour"] == round(4 / (7201 / 3600), 2)
    table = run_main(tmp_path, "report").stdout
    assert "SLO met %  goodput/h" in table and "80.0        2.0" in table
    (tmp_path / "benchmark.toml").unlink()
    assert "SLO met" not in run_main(tmp_path, "report").stdout


def test_run_scheduled_evaluates_the_rules_after_each_run(tmp_path):
    import socket
    import subprocess
    import sys

    from test_cli import MAIN, clean_env

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    (tmp_path / "benchmark.toml").write_text(
        f'[[providers]]\nname = "local"\nbase_url = "http://127.0.0.1:{port}/v1"\nmodel = "m"\n'
        '[alerts]\nconsecutive_failures = 2\n')
    done = subprocess.run([sys.executable, str(MAIN.parent / "run_scheduled.py"), "--providers", "local", "--runs", "2",
                           "--interval", "1s"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stderr
    # The first run's one failure is not yet 2 in a row; the second run's evaluation opens the alert.
    assert done.stdout.count("alert FIRING: outage on local/m: the last 2 requests failed") == 1


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signal_while_a_runs_notification_is_sent_ends_the_send_at_once_kept_pending(tmp_path, signum):
    """After a run its alert's message is being sent (the receiver trickles): SIGTERM or a first Ctrl-C, a flag while
    the run listens, waited out the whole 15 s bound. It ends the send now; the message waits for the next time."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    from test_cli import MAIN, clean_env

    with socket.socket() as closed:  # the provider: a port nothing listens on, so the request fails at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    (tmp_path / "benchmark.toml").write_text(
        f'[[providers]]\nname = "down"\nbase_url = "http://127.0.0.1:{port}/v1"\nmodel = "m"\n'
        "[alerts]\nconsecutive_failures = 1\n")
    with Trickler(give_up_s=120, byte_every_s=1.0) as trickler:
        process = subprocess.Popen([sys.executable, str(MAIN), "--providers", "down", "--timeout", "2"],
                                   cwd=tmp_path, env=clean_env(BENCHMARK_NOTIFY=trickler.url(SECRET_TOKEN)),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert trickler.answering.wait(60), "the notification was never sent"
            signalled = time.monotonic()
            process.send_signal(getattr(signal, signum))
            _, err = process.communicate(timeout=60)
            took = time.monotonic() - signalled
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == (143 if signum == "SIGTERM" else 130), err
    assert took < 10, f"exit came {took:.1f} s after {signum} (the send's bound is 15 s)"
    with sqlite3.connect(tmp_path / "benchmarks.db") as db:
        assert db.execute("select notified_firing_at from alerts").fetchall() == [(None,)]
