"""Alert rules fire and resolve on results written through the real storage; state is shared and race-safe;
notifications reach a local webhook through Apprise once at firing and once at resolving."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
import json

import pytest

from benchmarking.watch.alerts import apply, evaluate, notify_pending
from benchmarking.watch.rules import judge_slo
from benchmarking.settings.model import AlertRules, Watching
from benchmarking.settings.values import Secret
from benchmarking.report.selection import Row
from benchmarking.slo import SloConfig, Targets

from alert_helpers import FAIL, NOW, Flooder, Receiver, Trickler, write_results

SLO = SloConfig(defaults=Targets(ttft_ms=800, latency_ms=5000, success_rate=0.9, percentile=90))


def watching(rules=("outage", "slo_breach", "regression"), urls=(), slo=SLO) -> Watching:
    return Watching(slo=slo, alerts=AlertRules(rules=tuple(rules)), notify_urls=tuple(Secret(u) for u in urls))


def firing(storage):
    return sorted((a.rule, a.provider, a.model, a.metric) for a in storage.read_alerts(NOW) if a.state == "firing")


def test_outage_fires_on_consecutive_failures_stays_one_alert_and_resolves(open_backend):
    outage_only = watching(["outage"], slo=SloConfig())  # no success-rate target: only the failures in a row count
    with open_backend() as storage:
        storage.prepare()
        write_results(storage, "groq", "m", [{}, FAIL, FAIL, FAIL], NOW - timedelta(minutes=2))
        first = evaluate(storage, outage_only, now=NOW, say=print)
        assert [(a.rule, a.metric) for a in first.opened] == [("outage", None)]
        assert "the last 3 requests failed (server_error)" in first.opened[0].details["summary"]

        again = evaluate(storage, outage_only, now=NOW + timedelta(minutes=5))
        assert again.opened == () and len(again.firing) == 1  # the same episode, touched, not opened twice
        assert again.firing[0].last_seen_at > again.firing[0].started_at

        write_results(storage, "groq", "m", [{}], NOW + timedelta(minutes=9))
        done = evaluate(storage, outage_only, now=NOW + timedelta(minutes=10))
        assert [a.rule for a in done.resolved] == ["outage"] and done.firing == ()
        (resolved,) = done.recently_resolved
        assert resolved.resolved_at == NOW + timedelta(minutes=10)


def test_outage_fires_on_a_success_rate_under_the_slo(open_backend):
    with open_backend() as storage:
        storage.prepare()
        write_results(storage, "groq", "m", [{}, FAIL, {}, FAIL, {}, {}], NOW - timedelta(minutes=1))
        (alert,) = evaluate(storage, watching(["outage"]), now=NOW).opened
        assert alert.details["window_success_rate"] == pytest.approx(4 / 6, abs=1e-4)
        assert "under the SLO's 90.0%" in alert.details["summary"]


def test_slo_breach_on_the_percentile_fires_and_resolves(open_backend):
    with open_backend() as storage:
        storage.prepare()
        slow = [{"ttft_ms": 300.0}] * 8 + [{"ttft_ms": 1200.0}] * 2  # p90 of TTFT: 1200 ms, above 800
        write_results(storage, "openai", "gpt", slow, NOW - timedelta(minutes=1))
        (alert,) = evaluate(storage, watching(["slo_breach"]), now=NOW).opened
        assert (alert.rule, alert.metric) == ("slo_breach", "ttft_ms")
        assert alert.details["observed"] == pytest.approx(1200.0) and alert.details["target"] == 800

        write_results(storage, "openai", "gpt", [{"ttft_ms": 300.0}] * 5, NOW + timedelta(minutes=65))
        later = evaluate(storage, watching(["slo_breach"]), now=NOW + timedelta(minutes=70))
        assert [(a.rule, a.metric) for a in later.resolved] == [("slo_breach", "ttft_ms")]


def test_slo_breach_judges_the_slow_tail_of_decode_speed_against_its_minimum(storage):
    write_results(storage, "openai", "gpt", [{"tokens_per_second": 90.0}] * 8 + [{"tokens_per_second": 20.0}] * 2,
                  NOW)
    rows = [Row(r, None) for r in storage.read_results()]
    slo = SloConfig(defaults=Targets(tokens_per_second=50, percentile=90))
    (verdict,) = judge_slo(("openai", "gpt"), rows, slo)
    assert verdict.metric == "tokens_per_second" and verdict.firing
    assert verdict.figures["percentile"] == 10 and verdict.figures["observed"] < 50


def test_regression_fires_beyond_the_noise_and_the_threshold_and_resolves(open_backend):
    with open_backend() as storage:
        storage.prepare()
        baseline = [{"latency_ms": 500.0 + (i % 5) * 10} for i in range(30)]
        write_results(storage, "together", "m", baseline, NOW - timedelta(hours=2), spacing=timedelta(minutes=30))
        write_results(storage, "together", "m", [{"latency_ms": 800.0 + (i % 3) * 10} for i in range(8)],
                      NOW - timedelta(minutes=1))
        (alert,) = evaluate(storage, watching(["regression"]), now=NOW).opened
        assert (alert.rule, alert.metric) == ("regression", "latency_ms")
        assert alert.details["slower_by"] >= 0.2 and "baseline" in alert.details

        # An hour on, the window is back at the baseline's speed: resolved.
        write_results(storage, "together", "m", [{"latency_ms": 505.0}] * 8, NOW + timedelta(minutes=59))
        later = evaluate(storage, watching(["regression"]), now=NOW + timedelta(minutes=60))
        assert [(a.rule, a.metric) for a in later.resolved] == [("regression", "latency_ms")]


def test_a_small_slowdown_within_the_threshold_does_not_fire(storage):
    write_results(storage, "together", "m", [{"latency_ms": 500.0 + i} for i in range(30)], NOW - timedelta(hours=2),
                  spacing=timedelta(minutes=30))
    write_results(storage, "together", "m", [{"latency_ms": 560.0 + i} for i in range(8)], NOW)  # 11 % slower
    assert evaluate(storage, watching(["regression"]), now=NOW).opened == ()


def test_simulated_runs_are_not_judged_unless_asked(storage):
    write_results(storage, "groq", "m", [FAIL] * 3, NOW, mode="simulated")
    assert evaluate(storage, watching(["outage"]), now=NOW).opened == ()
    assert len(evaluate(storage, watching(["outage"]), now=NOW, include_simulated=True).opened) == 1


def test_load_runs_are_not_judged_by_the_probe_rules(storage):
    write_results(storage, "groq", "m", [FAIL] * 3, NOW, kind="load")
    assert evaluate(storage, watching(["outage"]), now=NOW).opened == ()
    write_results(storage, "groq", "m", [FAIL] * 3, NOW)
    assert len(evaluate(storage, watching(["outage"]), now=NOW).opened) == 1


def test_one_notification_at_firing_none_while_firing_one_at_resolving(open_backend):
    with Receiver() as receiver, open_backend() as storage:
        storage.prepare()
        config = watching(["outage"], urls=[receiver.url()])
        run_id = write_results(storage, "groq", "m", [FAIL] * 3, NOW)
        evaluate(storage, config, now=NOW, run_id=run_id)
        (fired,) = receiver.messages
        assert fired["title"] == "[benchmark-engine] FIRING: outage groq/m"
        assert fired["type"] == "failure"
        assert f"run: {run_id}" in fired["message"] and "window: 2026-11-29 11:00 to 2026-11-29 12:00 UTC" in \
            fired["message"]

        evaluate(storage, config, now=NOW + timedelta(minutes=15))
        assert len(receiver.messages) == 1  # still firing: nothing more

        write_results(storage, "groq", "m", [{}] * 30, NOW + timedelta(minutes=59))  # 30 of 33 in the hour: 91 %
        evaluate(storage, config, now=NOW + timedelta(minutes=60))
        assert len(receiver.messages) == 2
        assert receiver.messages[1]["title"] == "[benchmark-engine] RESOLVED: outage groq/m"
        assert receiver.messages[1]["type"] == "success"
        evaluate(storage, config, now=NOW + timedelta(minutes=75))
        assert len(receiver.messages) == 2


def test_a_notification_that_cannot_be_sent_stays_pending_and_goes_out_next_time(open_backend, capsys):
    with Receiver() as receiver, open_backend() as storage:
        storage.prepare()
        config = watching(["outage"], urls=[receiver.url("team-secret-token")])
        write_results(storage, "groq", "m", [FAIL] * 3, NOW)
        receiver.status = 503
        evaluate(storage, config, now=NOW)
        lines = capsys.readouterr().out.splitlines()
        assert lines == ["alerts: the firing notification of outage groq/m could not be sent to json://…: kept "
                         "pending, retried at the next evaluation"]
        (alert,) = storage.read_alerts(NOW)
        assert alert.notified_firing_at is None and alert.notify_attempts == 1
        assert alert.notify_error == "not delivered to json://…"

        receiver.status = 200
        evaluate(storage, config, now=NOW + timedelta(minutes=15))
        assert [m["title"] for m in receiver.messages] == ["[benchmark-engine] FIRING: outage groq/m"]
        (alert,) = storage.read_alerts(NOW)
        assert alert.notified_firing_at == NOW + timedelta(minutes=15)
        assert "team-secret-token" not in capsys.readouterr().out


def test_with_one_url_refusing_the_others_get_each_message_once_not_at_every_evaluation(storage, capsys):
    """The pending notification was sent again to every URL at each evaluation: the receiver that took it got the
    same FIRING message every 15 minutes for as long as another URL was down."""
    with Receiver() as good, Receiver() as down:
        down.status = 503
        config = watching(["outage"], urls=[down.url("down-token"), good.url("good-token")])
        write_results(storage, "groq", "m", [FAIL] * 3, NOW)
        for minutes in (0, 15, 30):
            evaluate(storage, config, now=NOW + timedelta(minutes=minutes))
        assert [m["title"] for m in good.messages] == ["[benchmark-engine] FIRING: outage groq/m"]
        (alert,) = storage.read_alerts(NOW)
        assert alert.notified_firing_at is None and alert.notify_attempts == 3  # still owed to the one that is down

        down.status = 200
        evaluate(storage, config, now=NOW + timedelta(minutes=45))
        assert [m["title"] for m in down.messages] == ["[benchmark-engine] FIRING: outage groq/m"]
        assert len(good.messages) == 1
        (alert,) = storage.read_alerts(NOW)
        assert alert.notified_firing_at == NOW + timedelta(minutes=45)
        assert "token" not in json.dumps(alert.details) and "token" not in capsys.readouterr().out
        assert all("delivered" not in m["message"] for m in good.messages + down.messages)


def test_an_unreachable_notify_url_never_fails_the_evaluation(storage, capsys):
    import socket

    with socket.socket() as closed:  # a port that was free a moment ago: nothing listens there
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    write_results(storage, "groq", "m", [FAIL] * 3, NOW)
    result = evaluate(storage, watching(["outage"], urls=[f"json://127.0.0.1:{port}/x"]), now=NOW)
    assert len(result.firing) == 1
    assert "could not be sent to json://…: kept pending" in capsys.readouterr().out
    assert storage.read_alerts(NOW)[0].notified_firing_at is None


def test_a_receiver_that_never_finishes_answering_holds_the_evaluation_no_longer_than_the_send_bound(storage, capsys,
                                                                                                     monkeypatch):
    """A webhook that answers a byte every 0.2 s never trips a socket timeout: before the bound on the whole send,
    it held a run (and its SIGTERM) for as long as it kept answering."""
    from benchmarking.watch import notify

    monkeypatch.setattr(notify, "SEND_TIMEOUT_S", 2.0, raising=False)
    write_results(storage, "groq", "m", [FAIL] * 3, NOW)
    with Trickler(give_up_s=60) as trickler:
        result = evaluate(storage, watching(["outage"], urls=[trickler.url("team-secret-token")]), now=NOW)
        assert not trickler.stop.is_set()  # the bound ended the wait, not the receiver giving up after 60 s
        assert trickler.answering.is_set() and len(result.firing) == 1
    out = capsys.readouterr().out
    assert "the firing notification of outage groq/m could not be sent to json://…: kept pending" in out
    assert "team-secret-token" not in out
    (alert,) = storage.read_alerts(NOW)
    assert alert.notified_firing_at is None and alert.notify_attempts == 1


def test_a_receiver_that_trickles_costs_one_bound_per_evaluation_not_one_per_alert(storage, capsys, monkeypatch):
    """Five alerts opened at once, one receiver that never finishes answering: each message waited the whole bound
    in turn (5 x 15 s). A URL that did not take a message is not tried again in the same evaluation: the others stay
    pending for the next one, each with its line."""
    from benchmarking.watch import notify

    monkeypatch.setattr(notify, "SEND_TIMEOUT_S", 2.0)
    for index in range(5):
        write_results(storage, "groq", f"m{index}", [FAIL] * 3, NOW)
    with Trickler(give_up_s=60) as trickler:
        result = evaluate(storage, watching(["outage"], urls=[trickler.url()]), now=NOW)
        assert trickler.requests == 1
    assert len(result.firing) == 5
    assert capsys.readouterr().out.count("could not be sent to json://…: kept pending") == 5
    assert [(a.notified_firing_at, a.notify_attempts) for a in storage.read_alerts(NOW)] == [(None, 1)] * 5


def test_a_sending_process_that_cannot_start_keeps_the_notification_pending(storage, capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "executable", str(NOW.year) + "-no-such-python")
    write_results(storage, "groq", "m", [FAIL] * 3, NOW)
    with Receiver() as receiver:
        result = evaluate(storage, watching(["outage"], urls=[receiver.url()]), now=NOW)
        assert receiver.messages == []
    assert len(result.firing) == 1
    assert "could not be sent to json://…: kept pending" in capsys.readouterr().out


def test_ctrl_c_while_a_notification_is_sent_gives_it_back_for_the_next_evaluation(storage, monkeypatch):
    """The notification is taken (marked sent) before it is sent; a Ctrl-C mid-send left it marked, so it was never
    sent at all. The send is ended, not left reading from the receiver.

    It failed now and then ("DID NOT RAISE KeyboardInterrupt") where pytest was started with SIGINT ignored (in the
    background of a non-interactive shell, under nohup): Python then leaves SIGINT ignored, the Ctrl-C never came,
    and the send ended at its bound. Here SIGINT raises whatever the test was started with, and the bound is far
    beyond the test's own time, so only the Ctrl-C can end the send."""
    import signal

    from benchmarking.watch import notify

    monkeypatch.setattr(notify, "SEND_TIMEOUT_S", 600.0)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    write_results(storage, "groq", "m", [FAIL] * 3, NOW)
    try:
        with Trickler(give_up_s=600, ctrl_c=True) as trickler:
            with pytest.raises(KeyboardInterrupt):
                evaluate(storage, watching(["outage"], urls=[trickler.url()]), now=NOW)
            assert trickler.answering.is_set()
            assert trickler.hung_up.wait(30)  # the send was killed, not left running
    finally:
        signal.signal(signal.SIGINT, previous)
    (alert,) = storage.read_alerts(NOW)
    assert alert.state == "firing" and alert.notified_firing_at is None


def test_a_receiver_answering_gigabytes_costs_the_send_bounded_memory_and_it_stays_pending():
    """Apprise reads a receiver's whole answer: one sending a body of gigabytes as fast as loopback goes took 1.35 GB
    in the 15 s of the bound (and in a thread of the process, it went on reading after it). The send runs in a
    process of its own whose memory is bounded; measured in a fresh process, so that no other child counts."""
    import subprocess
    import sys
    from pathlib import Path

    script = ("import json, resource, sys\n"
              "from benchmarking.watch.notify import send\n"
              "failed = send([sys.argv[1]], 'title', 'body')\n"
              # VmHWM: this process's own peak (ru_maxrss of SELF keeps pytest's across exec)
              "own = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
              "peak = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
              "print(json.dumps({'failed': len(failed), 'peak_mb': peak / 1024}))\n")
    src = Path(__file__).resolve().parents[1] / "src"
    with Flooder() as flooder:
        done = subprocess.run([sys.executable, "-c", script, flooder.url()], capture_output=True, text=True,
                              timeout=90, env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["failed"] == 1  # not delivered: kept pending
    assert measured["peak_mb"] < 600, measured


def test_two_machines_on_one_postgresql_open_resolve_and_announce_each_alert_once(pg_url):
    """Both machines judge the same data from the same read of the alerts table, and both act on it: the database
    lets exactly one open the alert, one resolve it, and one send each notification."""
    from benchmarking.watch.rules import judge
    from benchmarking.storage.postgres import PostgresStorage

    with Receiver() as receiver, PostgresStorage(pg_url) as a, PostgresStorage(pg_url) as b:
        write_results(a, "groq", "m", [FAIL] * 3, NOW)
        config = watching(["outage"], urls=[receiver.url()])
        latest = {("groq", "m"): [Row(r, None) for r in a.read_latest_results("groq", "m", 3)]}
        verdicts = judge([], [], latest, [("groq", "m")], config)
        stale = a.read_alerts(NOW)  # what both read before either wrote
        details = lambda verdict: {"summary": verdict.summary}  # noqa: E731
        opened = [apply(s, verdicts, stale, NOW, details, None, host)[0] for s, host in ((a, "east"), (b, "west"))]
        assert [len(o) for o in opened] == [1, 0]
        both_see = a.read_alerts(NOW)
        for storage in (a, b):
            notify_pending(storage, both_see, [receiver.url()], NOW, print)
        assert len(receiver.messages) == 1

        resolving = [replace(v, firing=False) for v in verdicts]
        stale = b.read_alerts(NOW)
        resolved = [apply(s, resolving, stale, NOW, details, None, "x")[1] for s in (a, b)]
        assert [len(r) for r in resolved] == [1, 0]
        both_see = b.read_alerts(NOW)
        for storage in (b, a):
            notify_pending(storage, both_see, [receiver.url()], NOW, print)
        assert [m["title"].split(":")[0] for m in receiver.messages] == ["[benchmark-engine] FIRING",
                                                                         "[benchmark-engine] RESOLVED"]
        (row,) = a.read_alerts(NOW)
        assert (row.state, row.host) == ("resolved", "east")


def test_the_database_keeps_one_firing_alert_per_key_even_when_two_insert_at_once(pg_url):
    import threading
    from uuid import uuid4

    from benchmarking.storage.postgres import PostgresStorage

    storages = [PostgresStorage(pg_url) for _ in range(2)]
    for s in storages:
        s.prepare()
    barrier, wins = threading.Barrier(2), []

    def open_one(storage):
        barrier.wait()
        wins.append(storage.insert_alert({"id": uuid4(), "rule": "outage", "provider": "p", "model": "m",
                                          "metric": None, "state": "firing", "started_at": NOW,
                                          "last_seen_at": NOW, "details": {}}))

    threads = [threading.Thread(target=open_one, args=(s,)) for s in storages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in storages:
        s.close()
    assert sorted(wins) == [False, True]
