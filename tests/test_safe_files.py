"""The one safe writer of every output file (report --export, report --plot, --metrics-file).

The tool's own files are refused as targets by their real path (directly and through a symlink): one line, exit 2,
the file unchanged. A write that fails (a full tmpfs) leaves the earlier file whole, no temporary file, one line
naming the file and the reason, exit 1. A symlinked target is written through: the link stays.
"""

from __future__ import annotations

import os
from pathlib import Path
import sqlite3
import stat

import pytest

from benchmarking.cli import main
from benchmarking.storage.sqlite import SQLiteStorage

from conftest import fill_disk
from test_bad_input import cli  # noqa: F401 (a fixture)
from test_report import known_rows, report_here  # noqa: F401 (a fixture)

pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning")

# Each output, as the command line that writes it to TARGET (main.py's argv), and a file name it accepts.
OUTPUTS = {
    "export": (["report", "--export", "TARGET"], "rows.csv"),
    "plot": (["report", "--plot", "TARGET"], "chart.png"),
    "metrics-file": (["--simulate", "--providers", "openai", "--metrics-file", "TARGET"], "benchmark.prom"),
}
# The files the tool keeps in its directory, each with the content it starts with.
OWN = {
    "benchmarks.db-wal": b"a write-ahead log\n",
    "outbox/pending.jsonl": b'{"kind": "result", "waiting": true}\n',
    ".env": b"BENCHMARK_REGION=eu-test\n",
    "benchmark.toml": b"# the config\n",
    "logs/benchmark.lock": b"",  # cron_example.sh's: a new file renamed over it would let the next tick overlap
}


def argv(output: str, target: str) -> list[str]:
    return [target if arg == "TARGET" else arg for arg in OUTPUTS[output][0]]


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every regular file under the directory and its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and not p.is_symlink()}


@pytest.fixture
def kept(report_here):
    """tmp_path holding a database with the known rows and each of the tool's own files."""
    with SQLiteStorage(report_here / "benchmarks.db") as storage:
        known_rows(storage)
    for name, data in OWN.items():
        (report_here / name).parent.mkdir(exist_ok=True)
        (report_here / name).write_bytes(data)
    return report_here


def assert_one_line(err: str, status: int, expected_status: int, *parts: str) -> None:
    lines = err.strip().splitlines()
    assert status == expected_status, err
    assert len(lines) == 1 and lines[0].startswith("main.py: error: "), err
    assert all(part in lines[0] for part in parts), err
    assert "unexpected error" not in err and "Traceback" not in err


@pytest.mark.parametrize("output", list(OUTPUTS))
@pytest.mark.parametrize("own", ["benchmarks.db", *OWN])
@pytest.mark.parametrize("through_link", [False, True], ids=["direct", "symlink"])
def test_the_tools_own_files_are_refused_as_a_target_and_left_as_they_are(kept, capsys, output, own, through_link):
    """`--metrics-file benchmarks.db` replaced the database with Prometheus text (exit 0); `report --export
    outbox/pending.jsonl` overwrote the writes waiting there. Through a symlink named like an output, the same."""
    target = own
    if through_link:
        target = f"link-{OUTPUTS[output][1]}"
        (kept / target).symlink_to(kept / own)
    before = snapshot(kept)
    status = main(argv(output, target))
    err = capsys.readouterr().err
    if through_link or output == "metrics-file" or (output, own) == ("export", "outbox/pending.jsonl"):
        assert_one_line(err, status, 2, f"--{output} {target}", "which the tool keeps")
    else:  # a name the output refuses by its extension already
        assert_one_line(err, status, 2, f"--{output} writes")
    assert snapshot(kept) == before
    assert not list(kept.glob("*.tmp")) and not list(kept.glob(".*.tmp"))


@pytest.mark.parametrize("flag", ["--prompt-file", "--prompts"])
def test_a_prompt_file_of_the_run_is_refused_as_the_metrics_file(cli, tmp_path, flag):  # noqa: F811
    prompt = tmp_path / "prompts.txt"
    prompt.write_text("Say hello.\n")
    status, out, err = cli("--simulate", "--providers", "openai", flag, "prompts.txt", "--metrics-file",
                           "prompts.txt")
    assert_one_line(err, status, 2, "--metrics-file prompts.txt is a prompt file of this run")
    assert prompt.read_text() == "Say hello.\n" and not (tmp_path / "benchmarks.db").exists()


def test_files_named_by_the_environment_and_config_flag_are_refused(kept, capsys, monkeypatch):
    """The database, outbox and config file where the settings put them, not only where they are by default; and
    a SQLite database the settings do not name (another cron job's) by its first bytes."""
    (kept / "data").mkdir()
    with SQLiteStorage(kept / "data" / "results.db") as storage:
        known_rows(storage)
    (kept / "data" / "results.db-journal").write_bytes(b"journal")
    (kept / "spool").mkdir()
    (kept / "spool" / "waiting.csv").write_bytes(b"waiting")
    (kept / "other.toml").write_bytes(b"# another config\n")
    with sqlite3.connect(kept / "another.db") as other:  # another job's database, which these settings do not name
        other.execute("create table t (x)")
    other.close()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{kept / 'data' / 'results.db'}")
    monkeypatch.setenv("BENCHMARK_OUTBOX", "spool")
    before = snapshot(kept)
    cases = [
        (["report", "--export", "spool/waiting.csv"], "in the outbox directory"),
        (["report", "--export", "link.csv", "--config", "other.toml"], "the config file"),
        (["report", "--plot", "other.png"], "a SQLite database"),
        (["--simulate", "--metrics-file", "data/results.db-journal"], "the SQLite database's journal file"),
        (["--simulate", "--metrics-file", "benchmarks.db"], "the SQLite database"),  # the default one, too
    ]
    (kept / "link.csv").symlink_to("other.toml")
    (kept / "other.png").symlink_to(kept / "another.db")
    for args, what in cases:
        status = main(args)
        assert_one_line(capsys.readouterr().err, status, 2, f"is {what}, which the tool keeps")
    assert snapshot(kept) == before


@pytest.mark.parametrize("output", ["export", "plot"])
def test_a_device_behind_an_output_name_is_refused_not_replaced(kept, capsys, output):
    """The writer renames a new file over the target: a device would be replaced by it. A private null device
    stands in for /dev/null."""
    device = kept / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    link = kept / OUTPUTS[output][1]
    link.symlink_to(device)
    status = main(argv(output, link.name))
    assert_one_line(capsys.readouterr().err, status, 2, "is not a regular file")
    assert stat.S_ISCHR(device.lstat().st_mode) and link.is_symlink()


@pytest.mark.parametrize("output", list(OUTPUTS))
def test_a_full_disk_leaves_the_earlier_file_whole_and_says_so(kept, capsys, small_disk, output):
    """Exports and plots on a full disk said "unexpected error" and left 0-byte files; --metrics-file said a warning
    and exit 0."""
    target = small_disk / OUTPUTS[output][1]
    target.write_bytes(b"the earlier file\n")
    fill_disk(small_disk)
    status = main(argv(output, str(target)))
    err = capsys.readouterr().err
    message = f"error: --{output} {target} not written: No space left on device; any earlier file there is left as"
    if output == "metrics-file":  # after a run, whose own lines come before it
        assert status == 1 and sum(message in line for line in err.splitlines()) == 1, err
        assert "unexpected error" not in err and "Traceback" not in err
    else:
        assert_one_line(err, status, 1, message)
    assert target.read_bytes() == b"the earlier file\n"
    assert sorted(p.name for p in small_disk.iterdir()) == sorted([target.name, "filler"])  # no temporary file


@pytest.mark.parametrize("output", list(OUTPUTS))
def test_a_symlinked_target_is_written_through_and_the_link_kept(kept, capsys, output):
    """--metrics-file replaced the link, --export wrote through it: now every output writes through it."""
    (kept / "shared").mkdir()
    real = kept / "shared" / OUTPUTS[output][1]
    real.write_bytes(b"old")
    real.chmod(0o640)
    link = kept / f"link-{OUTPUTS[output][1]}"
    link.symlink_to(real)
    assert main(argv(output, link.name)) == 0, capsys.readouterr().err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() != b"old" and len(real.read_bytes()) > 100
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # the file's permissions are kept
    assert not list((kept / "shared").glob(".*"))


def test_a_failure_while_writing_leaves_the_earlier_file_and_no_temporary(tmp_path):
    from benchmarking.safe_files import atomic_file, write_file

    target = tmp_path / "out.csv"
    target.write_text("earlier")
    with pytest.raises(RuntimeError):
        with atomic_file(target, "--export") as out:
            out.write("half a file")
            raise RuntimeError("the renderer failed")
    assert target.read_text() == "earlier" and os.listdir(tmp_path) == ["out.csv"]
    write_file(target, b"whole", "--export")
    assert target.read_bytes() == b"whole" and os.listdir(tmp_path) == ["out.csv"]


def test_a_read_only_directory_is_an_output_error_not_a_traceback(read_only_dir):
    from benchmarking.errors import OutputUnwritable
    from benchmarking.safe_files import write_file

    with pytest.raises(OutputUnwritable, match=r"--plot .*chart.png not written: Read-only file system"):
        write_file(read_only_dir / "chart.png", b"png", "--plot")


def test_own_files_are_judged_by_real_path_and_hard_link(tmp_path, monkeypatch):
    from benchmarking.safe_files import OwnFiles, check_target

    monkeypatch.chdir(tmp_path)
    own = OwnFiles.of(database="data/b.db", outbox="spool", prompt_files=["p.txt"])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "b.db").write_bytes(b"x")
    os.link(tmp_path / "data" / "b.db", tmp_path / "hard.csv")
    assert own.owner("data/../data/b.db") == "the SQLite database"
    assert own.owner(tmp_path / "hard.csv") == "the SQLite database"
    assert own.owner("spool/deep/x.csv") == "in the outbox directory"
    assert own.owner("spool") == "the outbox directory"
    assert own.owner("spoolish.csv") is None and own.owner("benchmarks.db-shm") == "the SQLite database's shm file"
    with pytest.raises(Exception, match="a prompt file of this run"):
        check_target("./p.txt", "--site", own)
    assert check_target("fresh/dir/out.html", "--site", own) == Path("fresh/dir/out.html")


def test_the_tmpfs_fixture_fails_instead_of_skipping_when_ci_requires_it(tmp_path, monkeypatch):
    """The full-disk and read-only tests skipped silently where `mount` was refused, in CI too."""
    import conftest

    monkeypatch.delenv("BENCHMARK_REQUIRE_TMPFS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="cannot mount a tmpfs"):
        conftest._mount_tmpfs(tmp_path / "refused", "size=not-a-size")
    monkeypatch.setenv("BENCHMARK_REQUIRE_TMPFS", "1")
    with pytest.raises(pytest.fail.Exception, match="BENCHMARK_REQUIRE_TMPFS is set.*cannot mount a tmpfs"):
        conftest._mount_tmpfs(tmp_path / "refused", "size=not-a-size")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.fail.Exception, match="needs root"):
        conftest._mount_tmpfs(tmp_path / "not-root", "size=64k")


def test_a_directory_symlink_into_the_outbox_and_a_symlink_loop_are_refused(kept, capsys):
    (kept / "spool").symlink_to(kept / "outbox")
    (kept / "loop.csv").symlink_to("loop.csv")
    before = snapshot(kept)
    assert main(["report", "--export", "spool/pending.jsonl"]) == 2
    assert "is in the outbox directory, which the tool keeps" in capsys.readouterr().err
    assert main(["report", "--export", "spool/new.csv"]) == 2  # a new file in it too: the outbox reads every file
    assert "is in the outbox directory" in capsys.readouterr().err
    status = main(["report", "--export", "loop.csv"])
    assert_one_line(capsys.readouterr().err, status, 2, "--export: cannot write loop.csv",
                    "Too many levels of symbolic links")
    assert snapshot(kept) == before and not (kept / "outbox" / "new.csv").exists()


def test_a_long_name_that_fits_is_written_though_its_temporary_name_is_longer(kept, capsys):
    name = "r" * 247 + ".jsonl"  # 253 bytes: a name may take 255, the temporary file's `.NAME.XXXXXXXX.tmp` not
    assert main(["report", "--export", name]) == 0, capsys.readouterr().err
    assert (kept / name).read_text().count("\n") == 11


def test_a_killed_writers_temporary_file_is_removed_and_a_fresh_one_kept(tmp_path):
    from benchmarking.safe_files import STALE_TEMPORARY_S, write_file

    stale, fresh, other = (tmp_path / ".m.prom.abcd1234.tmp", tmp_path / ".m.prom.efgh5678.tmp",
                           tmp_path / ".m.prom.notours.tmp")
    for path in (stale, fresh, other):
        path.write_text("left by a writer")
    old = os.path.getmtime(stale) - STALE_TEMPORARY_S - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    write_file(tmp_path / "m.prom", "metrics\n", "--metrics-file")
    assert not stale.exists() and fresh.exists() and other.exists()
    assert (tmp_path / "m.prom").read_text() == "metrics\n"


def test_a_file_root_rewrites_keeps_its_owner_and_permissions(tmp_path):
    from benchmarking.safe_files import write_file

    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    target = tmp_path / "rows.csv"
    target.write_text("old")
    os.chown(target, 4321, 4322)
    target.chmod(0o604)
    write_file(target, "new", "--export")
    info = target.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), target.read_text()) == (4321, 4322, 0o604, "new")


def test_a_schedule_refuses_its_database_and_exits_1_after_a_full_disk(cli, tmp_path, small_disk):  # noqa: F811
    from benchmarking.cli import scheduled_main

    with SQLiteStorage(tmp_path / "benchmarks.db") as storage:
        known_rows(storage)
    database = (tmp_path / "benchmarks.db").read_bytes()
    status, out, err = cli("--simulate", "--runs", "1", "--metrics-file", "benchmarks.db", entry=scheduled_main)
    assert status == 2 and err.startswith("run_scheduled.py: error: --metrics-file benchmarks.db is the SQLite "
                                          "database, which the tool keeps"), err
    assert (tmp_path / "benchmarks.db").read_bytes() == database

    target = small_disk / "benchmark.prom"
    target.write_text("# the earlier metrics\n")
    fill_disk(small_disk)
    status, out, err = cli("--simulate", "--providers", "openai,groq", "--runs", "1", "--metrics-file", str(target),
                           entry=scheduled_main)
    assert status == 1, err  # every run completed: the file is what failed
    assert err.count(f"error: --metrics-file {target} not written: No space left on device") == 1, err
    assert "schedule: 1 of 1 runs made, 0 not completed" in err and "Traceback" not in err
    assert target.read_text() == "# the earlier metrics\n"


def test_a_file_name_that_is_not_utf8_is_written_like_any_other(kept):
    """Linux names are bytes: one that is not UTF-8 (\\xff) reaches Python as a lone surrogate."""
    from test_cli import run_main

    name = os.fsdecode(b"\xff" * 240 + b".csv")  # long too: its temporary name is cut in bytes, not characters
    done = run_main(kept, "report", "--export", name)
    assert done.returncode == 0 and "Traceback" not in done.stderr and "unexpected" not in done.stderr, done.stderr
    assert (kept / name).read_text().count("\n") == 12  # the header and 11 rows


def test_a_new_file_gets_the_permissions_of_the_umask(tmp_path):
    from benchmarking.safe_files import write_file

    previous = os.umask(0o027)
    try:
        write_file(tmp_path / "new.csv", "rows", "--export")
        assert os.umask(0o027) == 0o027  # the writer left the umask as it was
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o640


def test_the_outbox_through_a_bind_mount_is_refused(kept, capsys, tmp_path_factory):
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root (CI runs the suite as root)")
    other = tmp_path_factory.mktemp("bound")
    done = subprocess.run(["mount", "--bind", str(kept / "outbox"), str(other)], capture_output=True, text=True)
    if done.returncode != 0:
        if os.environ.get("BENCHMARK_REQUIRE_TMPFS"):
            pytest.fail(f"mount --bind is required here (BENCHMARK_REQUIRE_TMPFS is set): {done.stderr.strip()}")
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    try:
        before = snapshot(kept)
        # Another name of the outbox directory: its real path is not under the outbox's, the directory is the same.
        assert main(["report", "--export", str(other / "pending.jsonl")]) == 2
        assert "is in the outbox directory" in capsys.readouterr().err
        assert snapshot(kept) == before
    finally:
        subprocess.run(["umount", "-l", str(other)], capture_output=True)
