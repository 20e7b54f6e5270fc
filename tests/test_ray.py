"""--engine ray on a real Ray cluster of two nodes on this machine, against the simulator on loopback.

The cluster is started here (`ray start --head`, then a second `ray start --address=...`, one CPU and a resource of its
own each, on loopback addresses of their own so that Ray tells them apart), and stopped after the module's tests by
the ids of the processes it started. Where Ray is not installed these tests are skipped, unless
BENCHMARK_REQUIRE_RAY is set (CI), where they fail.
"""

from __future__ import annotations

import atexit
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
import functools
import json
import os
from pathlib import Path
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from benchmarking.executors.ray_actors import plan_actors
from benchmarking.executors.ray_cluster import ray_installed
from benchmarking.simulator import ModelProfile, Simulator

from test_cli import MAIN, clean_env
from test_load import endpoint, most_in_flight, rows

HEAD_IP, WORKER_IP = "127.0.0.2", "127.0.0.3"  # loopback: Ray would put 127.0.0.1 on the network's address
NODE_PATTERN = re.compile(r"^(?P<host>[^/]+)/(?P<node_id>[0-9a-f]{56})$")


@functools.cache
def auth_token_path() -> str:
    """A token of these tests' own for Ray's token authentication (on by default since Ray 2.5x where a token is
    found), so that neither ~/.ray/auth_token nor its absence decides whether the nodes and the driver agree."""
    descriptor, path = tempfile.mkstemp(prefix="bray-token-")
    os.write(descriptor, secrets.token_hex(32).encode())
    os.close(descriptor)
    atexit.register(os.unlink, path)
    return path


def ray_env(**extra: str) -> dict[str, str]:
    env = clean_env(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=auth_token_path(), **extra)
    env.pop("RAY_ADDRESS", None)
    return env


def run(directory: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *args], cwd=directory, env=ray_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def unavailable(reason: str) -> None:
    if os.environ.get("BENCHMARK_REQUIRE_RAY"):
        pytest.fail(f"Ray is required (BENCHMARK_REQUIRE_RAY is set): {reason}")
    pytest.skip(reason)


# ---- the cluster -----------------------------------------------------------------------------------------------

def processes() -> dict[int, tuple[int, int, list[str]]]:
    """pid -> (parent pid, process group, command line) of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                args = cmdline.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        found[int(entry)] = (int(fields[1]), int(fields[2]), args)
    return found


@dataclass
class Cluster:
    address: str
    groups: tuple[int, ...]  # the process groups of `ray start` (each node's daemons)
    node_ids: dict[str, str]  # node IP -> Ray node id

    def pids(self) -> set[int]:
        """Every process of the cluster: the nodes' daemons and their children (workers start sessions of their
        own, so their process group is not the node's)."""
        table = processes()
        mine = {pid for pid, (_, group, _) in table.items() if group in self.groups}
        children = {pid for pid, (parent, _, _) in table.items() if parent in mine}
        return mine | children

    def actor_pids(self, node_ip: str) -> list[int]:
        """The benchmark's actor processes on one node (children of that node's raylet)."""
        table = processes()
        raylets = [pid for pid, (_, _, args) in table.items() if args[0].endswith("/raylet")
                   and f"--node_ip_address={node_ip}" in args]
        return [pid for pid, (parent, _, args) in table.items()
                if parent in raylets and args[0].startswith("ray::SlotsActor")]


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def ray_start(ray: str, temp_dir: str, log: str, *args: str) -> tuple[subprocess.Popen, Path]:
    """`ray start` in a session of its own, so that its daemons share a process group to stop them by. Its output
    goes to a file: the daemons it leaves running hold on to what it had."""
    command = [ray, "start", "--num-cpus=1", "--disable-usage-stats", "--object-store-memory=100000000", *args]
    path = Path(temp_dir) / log
    with open(path, "w") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   cwd=temp_dir, env=ray_env(), start_new_session=True)
    return process, path


def started(process: subprocess.Popen, log: Path) -> str | None:
    """None once `ray start` has started its node, else why not."""
    try:
        process.wait(timeout=180)
    except subprocess.TimeoutExpired:
        process.kill()
        return "`ray start` took more than 180 s"
    if process.returncode != 0:
        return f"`ray start` failed: {log.read_text().strip().splitlines()[-1:]}"
    return None


def stop(cluster: Cluster) -> set[int]:
    """SIGTERM, then SIGKILL what is left (Ray's daemons may take their time), by process id only; returns the ids
    of those still running."""
    targets = cluster.pids()  # taken first: a worker whose node's raylet is gone is no longer its child
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
        targets |= cluster.pids()
        for pid in targets:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not all(zombie(pid) for pid in targets):
            time.sleep(0.2)
    return {pid for pid in targets if not zombie(pid)}


def zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture(scope="module")
def ray_cluster():
    """A Ray cluster of two nodes on this machine: its address; stopped after the module's tests."""
    if not ray_installed():
        unavailable("Ray is not installed: pip install -r requirements-ray.txt")
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray is None:
        unavailable("Ray is installed but its `ray` command is not on the PATH")
    temp_dir = tempfile.mkdtemp(prefix="bray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    port = free_port(HEAD_IP)
    address = f"{HEAD_IP}:{port}"
    head, head_log = ray_start(ray, temp_dir, "head.log", "--head", f"--port={port}", f"--node-ip-address={HEAD_IP}",
                               "--include-dashboard=false", f"--temp-dir={temp_dir}", '--resources={"bench_head": 1}')
    cluster = Cluster(address, (head.pid,), {})
    try:
        if (problem := started(head, head_log)) is not None:
            unavailable(problem)
        worker, worker_log = ray_start(ray, temp_dir, "worker.log", f"--address={address}",
                                       f"--node-ip-address={WORKER_IP}", '--resources={"bench_worker": 1}')
        cluster.groups = (head.pid, worker.pid)
        if (problem := started(worker, worker_log)) is not None:
            unavailable(problem)
        for _, _, args in processes().values():
            if args[0].endswith("/raylet"):
                options = dict(arg[2:].split("=", 1) for arg in args if arg.startswith("--") and "=" in arg)
                if options.get("node_ip_address") in (HEAD_IP, WORKER_IP) and temp_dir in " ".join(args):
                    cluster.node_ids[options["node_ip_address"]] = options["node_id"]
        assert set(cluster.node_ids) == {HEAD_IP, WORKER_IP}, cluster.node_ids
        yield cluster
    finally:
        left = stop(cluster)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"Ray processes left running: {sorted(left)}"


# ---- runs on the cluster -----------------------------------------------------------------------------------------

def load_rows(directory: Path) -> list:
    return rows(directory, "select * from benchmark_results order by created_at")


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def test_a_load_run_on_two_ray_nodes_stores_every_request_with_its_node(tmp_path, ray_cluster):
    with Simulator(profiles={"m": ModelProfile(ttft_ms=40, itl_ms=2, output_tokens=10)}, default=None) as sim:
        endpoint(tmp_path, sim)
        done = run(tmp_path, "--providers", "local", "--concurrency", "2,4", "--requests", "12",
                   "--engine", "ray", "--ray-address", ray_cluster.address)
        records = [r for r in sim.log if r.model == "m"]
    assert done.returncode == 0, done.stderr
    assert "Ray: 2 actors with 4 slots on 2 nodes" in done.stderr
    stored = load_rows(tmp_path)
    # every request stored once, and the server saw each once: none lost, none sent twice
    assert len(stored) == 24 and all(r["success"] for r in stored)
    assert sorted(r["request_id"] for r in stored) == sorted(r.request_id for r in records)
    # each row names its node: this host and the Ray node id, the cluster's two nodes
    expected = {f"{socket.gethostname()}/{node_id}" for node_id in ray_cluster.node_ids.values()}
    assert {r["node"] for r in stored} == expected
    for level in (2, 4):
        at_level = [r for r in stored if r["concurrency"] == level]
        assert len(at_level) == 12 and {r["node"] for r in at_level} == expected  # both nodes at every level
    # levels in order: every request of the first level ended before the second level started
    first = [r for r in stored if r["concurrency"] == 2]
    second = [r for r in stored if r["concurrency"] == 4]
    second_start = parse(second[0]["level_started_at"])
    assert {r["level_started_at"] for r in second} == {second[0]["level_started_at"]}
    assert max(parse(r["started_at"]) + timedelta(milliseconds=r["latency_ms"]) for r in first) <= second_start
    assert all(parse(r["started_at"]) >= second_start for r in second)
    # the closed loop held the level: never more in flight at the server than the level
    assert most_in_flight([r for r in records if r.request_id in {s["request_id"] for s in first}]) == 2
    assert most_in_flight([r for r in records if r.request_id in {s["request_id"] for s in second}]) == 4
    # the level starts on every node at once: each node's first request within a generous second of the other's
    firsts = [min(parse(r["started_at"]) for r in second if r["node"] == node) for node in expected]
    assert abs(firsts[0] - firsts[1]) < timedelta(seconds=1)
    # start lags are measured on the node that made the request: stored, and small beside a 40 ms request
    assert all(r["start_lag_ms"] is not None and 0 <= r["start_lag_ms"] < 1000 for r in stored)
    (run_row,) = rows(tmp_path, "select kind, settings, summary from runs")
    assert run_row["kind"] == "load" and json.loads(run_row["settings"])["load"]["engine"] == "ray"
    levels = json.loads(run_row["summary"])["load"]["sweeps"][0]["levels"]
    assert [(level["concurrency"], level["requests"]) for level in levels] == [(2, 12), (4, 12)]


def test_an_actor_killed_mid_level_loses_only_its_requests_in_flight_and_the_level_goes_on(tmp_path, ray_cluster):
    slow = ModelProfile(ttft_ms=1200, itl_ms=5, output_tokens=8)  # long enough to be killed while in flight
    with Simulator(profiles={"m": slow}, default=None) as sim:
        endpoint(tmp_path, sim)
        cli = subprocess.Popen(
            [sys.executable, str(MAIN), "--providers", "local", "--concurrency", "4,2", "--requests", "8",
             "--max-error-rate", "1", "--engine", "ray", "--ray-address", ray_cluster.address],
            cwd=tmp_path, env=ray_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while len([r for r in sim.log if r.model == "m"]) < 4:  # the first level's 4 requests in flight
                assert cli.poll() is None and time.monotonic() < deadline, "the run did not start its requests"
                time.sleep(0.02)
            (victim,) = ray_cluster.actor_pids(WORKER_IP)
            os.kill(victim, signal.SIGKILL)
            out, err = cli.communicate(timeout=240)
        finally:
            if cli.poll() is None:
                cli.kill()
        records = [r for r in sim.log if r.model == "m"]
    assert cli.returncode == 1, err  # a failed request fails the run, as any failure does
    stored = load_rows(tmp_path)
    lost_node = f"{socket.gethostname()}/{ray_cluster.node_ids[WORKER_IP]}"
    kept_node = f"{socket.gethostname()}/{ray_cluster.node_ids[HEAD_IP]}"
    first = [r for r in stored if r["concurrency"] == 4]
    second = [r for r in stored if r["concurrency"] == 2]
    assert len(first) == 8 and len(second) == 8  # every request of both levels stored
    lost = [r for r in first if not r["success"]]
    # exactly the killed actor's 2 requests in flight, each a worker_lost failure of its node
    assert len(lost) == 2 and {r["error_type"] for r in lost} == {"worker_lost"}
    for r in lost:
        assert r["node"] == lost_node and r["provider"] == "local" and r["model"] == "m"
        assert r["concurrency"] == 4 and r["level_started_at"] == first[0]["level_started_at"]
        assert r["ttft_ms"] is None and r["latency_ms"] is None
        assert "\n" not in r["error_message"] and "was lost" in r["error_message"]
    # the level went on with the other node: its other 6 requests (the 2 queued on the lost actor among them)
    assert [r["node"] for r in first if r["success"]] == [kept_node] * 6
    # the next level has both nodes again (a new actor on the node whose actor was lost), and no failure
    assert all(r["success"] for r in second) and {r["node"] for r in second} == {lost_node, kept_node}
    # the server saw each request once: the 2 lost ones reached it, the 2 queued behind them were sent once, elsewhere
    assert len(records) == 16
    assert "worker_lost 2" in out
    (run_row,) = rows(tmp_path, "select status, summary from runs")
    assert run_row["status"] == "failed"
    levels = json.loads(run_row["summary"])["load"]["sweeps"][0]["levels"]
    assert [(level["requests"], level["errors"]) for level in levels] == [(8, {"worker_lost": 2}), (8, {})]


@pytest.mark.parametrize("where", ["cluster", "local"])
def test_sigterm_in_a_ray_run_lets_the_requests_in_flight_finish_and_marks_the_run_interrupted(tmp_path, where,
                                                                                              request):
    address = ["--ray-address", request.getfixturevalue("ray_cluster").address] if where == "cluster" else []
    if not ray_installed():
        unavailable("Ray is not installed: pip install -r requirements-ray.txt")
    slow = ModelProfile(ttft_ms=400, itl_ms=5, output_tokens=8)
    with Simulator(profiles={"m": slow}, default=None) as sim:
        endpoint(tmp_path, sim)
        cli = subprocess.Popen([sys.executable, str(MAIN), "--providers", "local", "--concurrency", "2",
                                "--requests", "200", "--engine", "ray", *address], cwd=tmp_path, env=ray_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 180
            while len([r for r in sim.log if r.model == "m"]) < 4:  # mid-level, requests in flight
                assert cli.poll() is None and time.monotonic() < deadline, "the run did not start its requests"
                time.sleep(0.02)
            cli.send_signal(signal.SIGTERM)
            out, err = cli.communicate(timeout=120)
        finally:
            if cli.poll() is None:
                cli.kill()
        sent = [r for r in sim.log if r.model == "m"]
    assert cli.returncode == 143, err
    assert "Traceback" not in err and "SIGTERM: stopping after the current request" in err
    stored = load_rows(tmp_path)
    assert 4 <= len(stored) < 200
    assert len(stored) == len(sent) and all(r["success"] for r in stored)  # every request sent finished, stored
    assert rows(tmp_path, "select status from runs")[0]["status"] == "interrupted"


def ray_daemons() -> set[int]:
    return {pid for pid, (_, _, args) in processes().items()
            if args[0].endswith(("/raylet", "/gcs_server")) and not zombie(pid)}


def test_without_an_address_a_local_ray_runs_the_slots_and_rows_go_to_the_outbox_when_the_database_is_down(
        tmp_path):
    if not ray_installed():
        unavailable("Ray is not installed: pip install -r requirements-ray.txt")
    before = ray_daemons()
    with Simulator(profiles={"m": ModelProfile(ttft_ms=20, itl_ms=2, output_tokens=10)}, default=None) as sim:
        endpoint(tmp_path, sim)
        done = run(tmp_path, "--providers", "local", "--concurrency", "2", "--requests", "4", "--engine", "ray",
                   DATABASE_URL="postgresql://postgres@127.0.0.1:9/nowhere?connect_timeout=2")
        records = [r for r in sim.log if r.model == "m"]
    assert done.returncode == 1, done.stderr  # results only in the outbox: exit 1, as for a sequential run
    assert "Ray: 1 actor with 2 slots on 1 node" in done.stderr
    entries = [json.loads(line) for line in (tmp_path / "outbox" / "pending.jsonl").read_text().splitlines()]
    saved = [entry["row"] for entry in entries if entry["op"] == "save_result"]
    assert len(saved) == 4 == len(records) and all(row["success"] for row in saved)
    assert len({row["node"] for row in saved}) == 1
    assert NODE_PATTERN.match(saved[0]["node"])["host"] == socket.gethostname()
    assert all(row["concurrency"] == 2 and row["start_lag_ms"] is not None for row in saved)
    assert ray_daemons() == before  # the local Ray went with the run


def test_a_ray_head_that_dies_mid_run_ends_the_level_with_lost_rows_and_the_run_with_a_status_and_a_line(
        tmp_path, ray_cluster):
    # Kills the module's cluster's head: the last test on it (ray_cluster stops what is left by pid afterwards).
    slow = ModelProfile(ttft_ms=1500, itl_ms=5, output_tokens=8)
    with Simulator(profiles={"m": slow}, default=None) as sim:
        endpoint(tmp_path, sim)
        cli = subprocess.Popen([sys.executable, str(MAIN), "--providers", "local", "--concurrency", "4",
                                "--requests", "200", "--engine", "ray", "--ray-address", ray_cluster.address],
                               cwd=tmp_path, env=ray_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 180
            while len([r for r in sim.log if r.model == "m"]) < 4:
                assert cli.poll() is None and time.monotonic() < deadline, "the run did not start its requests"
                time.sleep(0.02)
            table = processes()
            head = {pid for pid, (_, group, _) in table.items() if group == ray_cluster.groups[0]}
            head |= {pid for pid, (parent, _, _) in table.items() if parent in head}
            for pid in head:  # the head node, at once: its GCS, raylet and workers
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            out, err = cli.communicate(timeout=90)
            took = time.monotonic() - killed
        finally:
            if cli.poll() is None:
                cli.kill()
    assert took < 30 + 5, took  # within 30 s (and its own line), not Ray's 60 s kill
    assert cli.returncode == 1, err
    assert "Traceback" not in err and "head" in err and "stopped answering" in err, err
    (run_row,) = rows(tmp_path, "select status from runs")
    assert run_row["status"] == "failed"
    stored = load_rows(tmp_path)
    lost = [r for r in stored if r["error_type"] == "worker_lost"]
    assert lost and all(not r["success"] for r in lost)


# ---- refusals ----------------------------------------------------------------------------------------------------

def assert_refused(directory: Path, done: subprocess.CompletedProcess, message: str, prog: str = "main.py") -> None:
    """Exit 2, one line naming the problem, nothing stored."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: ") and message in lines[0], done.stderr
    assert not (directory / "benchmarks.db").exists() and not (directory / "outbox").exists()


@pytest.mark.parametrize("script", ["main.py", "run_scheduled.py"])
def test_an_address_where_nothing_listens_is_one_line_exit_2_and_nothing_written(tmp_path, script):
    if not ray_installed():
        unavailable("Ray is not installed: pip install -r requirements-ray.txt")
    with Simulator(profiles={"m": ModelProfile()}, default=None) as sim:
        endpoint(tmp_path, sim)
        schedule = ["--runs", "1"] if script == "run_scheduled.py" else []
        command = [sys.executable, str(MAIN.with_name(script)), "--providers", "local", *schedule, "--concurrency",
                   "2", "--engine", "ray", "--ray-address", f"{HEAD_IP}:{free_port(HEAD_IP)}"]
        done = subprocess.run(command, cwd=tmp_path, env=ray_env(), capture_output=True, text=True, timeout=60)
        assert not sim.log  # nothing sent, not even a warm-up
    assert_refused(tmp_path, done, f"no Ray cluster answers at {HEAD_IP}:", prog=script)


def test_an_address_that_answers_but_is_no_ray_cluster_is_one_line_after_the_timeout(tmp_path):
    if not ray_installed():
        unavailable("Ray is not installed: pip install -r requirements-ray.txt")
    with socket.socket() as silent:  # accepts connections and says nothing, as a port of another service might
        silent.bind((HEAD_IP, 0))
        silent.listen(8)
        address = f"{HEAD_IP}:{silent.getsockname()[1]}"
        endpoint(tmp_path, Simulator())  # never started: nothing may be sent to it
        code = ("import sys; from benchmarking.executors import ray_cluster; ray_cluster.CONNECT_TIMEOUT_S = 3; "
                "from benchmarking.cli import main; sys.argv[0] = 'main.py'; sys.exit(main(sys.argv[1:]))")
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-c", code, "--providers", "local", "--concurrency", "2",
                               "--engine", "ray", "--ray-address", address], cwd=tmp_path,
                              env=ray_env(PYTHONPATH=str(Path(__file__).parent.parent / "src")),
                              capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 30
    assert_refused(tmp_path, done, f"no Ray cluster answered at {address} within 3 s")


def test_engine_ray_without_ray_installed_says_how_to_install_it(tmp_path):
    # Ray hidden from this process, as where it is not installed
    code = ("import sys; sys.modules['ray'] = None; from benchmarking.cli import main; sys.argv[0] = 'main.py'; "
            "sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "--simulate", "--concurrency", "2", "--engine", "ray"],
                          cwd=tmp_path, env=ray_env(PYTHONPATH=str(Path(__file__).parent.parent / "src")),
                          capture_output=True, text=True, timeout=60)
    assert_refused(tmp_path, done, "--engine ray needs Ray, which is not installed here: "
                                   "pip install -r requirements-ray.txt")


@pytest.mark.parametrize(("args", "message"), [
    (["--engine", "ray", "--ray-address", "head-without-port"],
     "--ray-address (or RAY_ADDRESS) takes HOST:PORT, ray://HOST:PORT or auto, not 'head-without-port'"),
    (["--engine", "ray", "--ray-address", "10.0.0.1:99999"], "takes HOST:PORT"),
    (["--engine", "ray", "--workers", "2"], "--workers is for --engine local"),
    (["--ray-address", "10.0.0.1:6379"], "--ray-address is for --engine ray"),
])
def test_bad_ray_flags_are_one_line_exit_2_and_nothing_sent(tmp_path, args, message):
    done = run(tmp_path, "--simulate", "--concurrency", "2", *args, timeout=60)
    assert_refused(tmp_path, done, message)


def test_actors_are_spread_over_every_node_and_more_where_the_cpus_allow():
    assert plan_actors([("a", 1), ("b", 1)], 16) == [("a", 8), ("b", 8)]
    assert plan_actors([("a", 1), ("b", 1)], 1) == [("a", 1)]  # one slot: one actor
    assert plan_actors([("a", 1), ("b", 1)], 5) == [("a", 3), ("b", 2)]
    assert plan_actors([("a", 4), ("b", 1)], 64) == [("a", 16), ("b", 16), ("a", 16), ("a", 16)]
    assert plan_actors([("a", 8)], 20) == [("a", 10), ("a", 10)]  # 16 slots an actor at most, where CPUs allow


def test_ray_is_imported_only_for_engine_ray(tmp_path):
    code = ("import sys; from benchmarking.cli import main; sys.argv[0] = 'main.py'; status = main(sys.argv[1:]); "
            "print('ray imported' if 'ray' in sys.modules else 'ray not imported'); sys.exit(status)")
    with Simulator(profiles={"m": ModelProfile(ttft_ms=5, itl_ms=1, output_tokens=4)}, default=None) as sim:
        endpoint(tmp_path, sim)
        done = subprocess.run([sys.executable, "-c", code, "--providers", "local", "--concurrency", "2",
                               "--requests", "2"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env=ray_env(PYTHONPATH=str(Path(__file__).parent.parent / "src")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ray not imported")  # a load run on the local engine, Ray installed or not
