"""Prometheus metrics from stored results, on every backend; the textfile; the flags and their refusals.

A real Prometheus server scraping a real run is in test_prometheus_scrape.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
import socket
from urllib.request import urlopen
from uuid import uuid4

import pytest
from prometheus_client.parser import text_string_to_metric_families

from benchmarking.cli import scheduled_main
from benchmarking.watch.exposition import serve, write_textfile
from benchmarking.watch.metrics import (
    DECODE_BUCKETS, SECONDS_BUCKETS, FiringAlert, Metrics, firing_alerts, history_metrics,
)

from conftest import FAKE_KEY
from test_bad_input import assert_refused, cli  # noqa: F401 (a fixture)
from test_storage_sqlite import full_measurement, run_info

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

T0 = datetime(2026, 11, 28, 16, 0, tzinfo=timezone.utc)
def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, keyed by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def labels(**values: str) -> frozenset:
    return frozenset(values.items())


def stored_rows():
    """Five results of openai/gpt-4o-mini in a live run: three successes, a rate limit, a timeout; one simulated."""
    ok = full_measurement()
    return [
        (T0, replace(ok, ttft_ms=10.0, latency_ms=40.0, tokens_per_second=100.0, cost_usd=Decimal("0.0001"))),
        (T0 + timedelta(minutes=1), replace(ok, ttft_ms=20.0, latency_ms=640.0, tokens_per_second=5.0,
                                            cost_usd=Decimal("0.0003"))),
        (T0 + timedelta(minutes=2), replace(ok, ttft_ms=1000.0, latency_ms=90000.0, tokens_per_second=None,
                                            cost_usd=None)),
        (T0 + timedelta(minutes=3), replace(ok, success=False, error_type="rate_limit", ttft_ms=None,
                                            latency_ms=None, tokens_per_second=None, cost_usd=None)),
        (T0 + timedelta(minutes=4), replace(ok, success=False, error_type="timeout", ttft_ms=None,
                                            latency_ms=60000.0, tokens_per_second=None, cost_usd=None)),
    ]


def create_alerts(storage) -> None:
    """Two firing alerts and a resolved one, opened and resolved through the storage as the alert rules do."""
    for rule, provider, model, metric, state in (("slo_breach", "openai", "gpt-4o-mini", "ttft_ms", "firing"),
                                                 ("outage", "groq", "gone", None, "firing"),
                                                 ("regression", "openai", "gpt-4o-mini", "latency_ms", "resolved")):
        alert_id = uuid4()
        assert storage.insert_alert({"id": alert_id, "rule": rule, "provider": provider, "model": model,
                                     "metric": metric, "state": "firing", "started_at": T0, "last_seen_at": T0,
                                     "details": {}})
        if state == "resolved":
            assert storage.update_alert(alert_id, {"state": "resolved", "resolved_at": T0}, {"state": "firing"})


def test_metrics_over_the_stored_history_match_the_rows_on_every_backend(open_backend, request, tmp_path):
    backend = request.node.callspec.params["open_backend"]
    live, simulated = run_info(mode="live"), run_info(mode="simulated")
    with open_backend() as storage:
        storage.prepare()
        storage.create_run(live)
        storage.create_run(simulated)
        for created_at, m in stored_rows():
            storage.save_result(live.id, uuid4(), created_at, m)
        storage.save_result(simulated.id, uuid4(), T0, replace(full_measurement(), ttft_ms=5.0))
        assert firing_alerts(storage) == []  # no alerts table yet: no alert, no error
        create_alerts(storage)
        path = tmp_path / "benchmark.prom"
        write_textfile(path, history_metrics(storage))

    got = samples(path.read_text())
    key = dict(provider="openai", model="gpt-4o-mini", mode="live")
    assert got["benchmark_engine_requests_total", labels(**key, outcome="success", error_type="")] == 3
    assert got["benchmark_engine_requests_total", labels(**key, outcome="failure", error_type="rate_limit")] == 1
    assert got["benchmark_engine_requests_total", labels(**key, outcome="failure", error_type="timeout")] == 1
    # Successes only, in seconds; 90 s lands above the last bound (81.92), 20 ms exactly on one (le is inclusive).
    assert got["benchmark_engine_ttft_seconds_count", labels(**key)] == 3
    assert got["benchmark_engine_ttft_seconds_sum", labels(**key)] == pytest.approx(1.03)
    assert got["benchmark_engine_ttft_seconds_bucket", labels(**key, le="0.02")] == 2
    assert got["benchmark_engine_ttft_seconds_bucket", labels(**key, le="0.01")] == 1
    assert got["benchmark_engine_latency_seconds_sum", labels(**key)] == pytest.approx(90.68)
    assert got["benchmark_engine_latency_seconds_bucket", labels(**key, le="81.92")] == 2
    assert got["benchmark_engine_latency_seconds_bucket", labels(**key, le="+Inf")] == 3
    assert got["benchmark_engine_decode_tokens_per_second_count", labels(**key)] == 2
    assert got["benchmark_engine_decode_tokens_per_second_bucket", labels(**key, le="5.0")] == 1
    # The newest cost (the third success had none), the newest success.
    assert got["benchmark_engine_last_cost_usd", labels(**key)] == pytest.approx(0.0003)
    assert got["benchmark_engine_last_success_timestamp_seconds", labels(**key)] == (
        T0 + timedelta(minutes=2)).timestamp()
    # The simulated run's row is its own series, never mixed into the live one.
    assert got["benchmark_engine_ttft_seconds_sum", labels(provider="openai", model="gpt-4o-mini",
                                                            mode="simulated")] == pytest.approx(0.005)
    # Firing alerts only, from the alerts table.
    firing = {k[1] for k, v in got.items() if k[0] == "benchmark_engine_alert_firing" and v == 1}
    assert firing == {labels(rule="slo_breach", provider="openai", model="gpt-4o-mini", metric="ttft_ms"),
                      labels(rule="outage", provider="groq", model="gone", metric="")}


def test_the_buckets_are_sorted_and_cover_llm_times():
    assert list(SECONDS_BUCKETS) == sorted(SECONDS_BUCKETS) and SECONDS_BUCKETS[-1] > 60  # the default timeout
    assert list(DECODE_BUCKETS) == sorted(DECODE_BUCKETS) and DECODE_BUCKETS[-1] >= 1000


def test_the_textfile_is_replaced_whole_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "benchmark.prom"
    path.write_text("old content\n")
    metrics = Metrics()
    metrics.add("groq", "m", "live", True, None, 50.0, 100.0, 300.0, Decimal("0.01"), T0)
    write_textfile(path, metrics)
    assert samples(path.read_text())["benchmark_engine_requests_total", labels(
        provider="groq", model="m", mode="live", outcome="success", error_type="")] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["benchmark.prom"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_endpoint_serves_what_is_added_while_it_runs():
    metrics = Metrics()
    metrics.declare("openai", "gpt-4o-mini", "live")
    port = free_port()
    server = serve(metrics, "127.0.0.1", port)
    try:
        def scrape():
            with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                return samples(answer.read().decode())

        key = dict(provider="openai", model="gpt-4o-mini", mode="live")
        assert scrape()["benchmark_engine_requests_total", labels(**key, outcome="success", error_type="")] == 0
        metrics.add_measurement(T0, replace(full_measurement(), success=False, error_type="auth"), "live")
        metrics.set_alerts([FiringAlert("outage", "openai", "gpt-4o-mini", None)])
        got = scrape()
        assert got["benchmark_engine_requests_total", labels(**key, outcome="failure", error_type="auth")] == 1
        assert got["benchmark_engine_alert_firing", labels(rule="outage", provider="openai", model="gpt-4o-mini",
                                                           metric="")] == 1
    finally:
        server.shutdown()
        server.server_close()


# ---- bad input: one line, exit 2, before anything is measured ----------------------------------------------------

def test_a_metrics_port_in_use_is_refused_before_anything_is_measured(cli, tmp_path):  # noqa: F811
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, out, err = cli("--simulate", "--runs", "1", "--metrics-port", f"127.0.0.1:{port}",
                               entry=scheduled_main)
    assert_refused(tmp_path, status, out, err, f"--metrics-port 127.0.0.1:{port}: cannot listen there: "
                   "Address already in use", prog="run_scheduled.py")


@pytest.mark.parametrize("value", ["abc", "0", "70000", "127.0.0.1:", ""])
def test_an_invalid_metrics_port_is_refused(cli, tmp_path, value):  # noqa: F811
    status, out, err = cli("--simulate", "--runs", "1", "--metrics-port", value, entry=scheduled_main)
    assert_refused(tmp_path, status, out, err, f"--metrics-port takes a port from 1 to 65535 (or HOST:PORT), not "
                   f"{value!r}", prog="run_scheduled.py")


def test_a_metrics_address_not_on_this_machine_is_refused(cli, tmp_path):  # noqa: F811
    status, out, err = cli("--simulate", "--runs", "1", "--metrics-port", "192.0.2.1:9464", entry=scheduled_main)
    assert_refused(tmp_path, status, out, err, "--metrics-port 192.0.2.1:9464: cannot listen there",
                   prog="run_scheduled.py")


def test_a_metrics_file_in_a_directory_that_does_not_exist_is_refused(cli, tmp_path):  # noqa: F811
    status, out, err = cli("--simulate", "--metrics-file", str(tmp_path / "nowhere" / "b.prom"))
    assert_refused(tmp_path, status, out, err, f"directory {tmp_path / 'nowhere'} does not exist")


def test_a_metrics_file_that_is_a_directory_is_refused(cli, tmp_path):  # noqa: F811
    status, out, err = cli("--simulate", "--metrics-file", str(tmp_path), entry=scheduled_main)
    assert_refused(tmp_path, status, out, err, f"--metrics-file {tmp_path} is a directory", prog="run_scheduled.py")


def test_a_metrics_file_that_is_not_a_regular_file_is_refused_and_left_as_it_is(cli, tmp_path):  # noqa: F811
    """Each run renames a new file over the path: given /dev/null (as root, from cron), it replaced the device with
    a regular file. A FIFO stands in for the device here."""
    import os
    import stat

    fifo = tmp_path / "pipe.prom"
    os.mkfifo(fifo)
    status, out, err = cli("--simulate", "--metrics-file", str(fifo))
    assert_refused(tmp_path, status, out, err, f"--metrics-file {fifo} is not a regular file")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_an_empty_metrics_file_is_refused(cli, tmp_path):  # noqa: F811
    status, out, err = cli("--simulate", "--metrics-file", "")
    assert_refused(tmp_path, status, out, err, "--metrics-file needs a path, like benchmark.prom")


def test_a_metrics_file_in_a_directory_that_takes_no_writes_is_refused(cli, tmp_path, read_only_dir):  # noqa: F811
    status, out, err = cli("--simulate", "--metrics-file", str(read_only_dir / "b.prom"))
    assert_refused(tmp_path, status, out, err, f"cannot write in {read_only_dir}: Read-only file system")


def test_main_writes_the_textfile_after_its_run(cli, tmp_path):  # noqa: F811
    path = tmp_path / "benchmark.prom"
    status, out, err = cli("--simulate", "--providers", "openai,groq", "--repeat", "2", "--metrics-file", str(path),
                           OPENAI_API_KEY=FAKE_KEY)
    assert status == 0, err
    got = samples(path.read_text())
    requests = {dict(k[1])["provider"]: v for k, v in got.items() if k[0] == "benchmark_engine_requests_total"}
    assert requests == {"openai": 2, "groq": 2}
    assert FAKE_KEY not in path.read_text()
