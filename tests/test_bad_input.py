"""Bad input through the real command line: one line naming the problem, exit status 2, nothing measured or stored.

Most cases call the CLI's entry points in this process (the same guard and exit statuses as main.py); a few run
main.py and run_scheduled.py as subprocesses end to end. Keys and passwords in the input must never be printed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarking.cli import main, scheduled_main

from conftest import FAKE_KEY
from test_cli import READ_VARIABLES, run_main

TOML_ENTRY = '[[providers]]\nname = "x"\nbase_url = "http://127.0.0.1:8000/v1"\nmodel = "m"\n'
PASSWORD = "Pw" + "Secr3t"  # in a DATABASE_URL below; it must never be printed
UNREACHABLE = "http://127.0.0.1:9/v1"  # a live case that got past validation would fail fast here, not hang


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run main.py's or run_scheduled.py's entry point in tmp_path with only the given variables set."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if any(part in name for part in READ_VARIABLES):
            monkeypatch.delenv(name)

    def run(*args: str, entry=main, files: dict[str, bytes] | None = None, **env: str):
        for name, data in (files or {}).items():
            (tmp_path / name).write_bytes(data)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        status = entry(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def assert_refused(tmp_path: Path, status: int, out: str, err: str, message: str, prog: str = "main.py") -> None:
    """Exit 2, one line on stderr naming the problem, no traceback, nothing measured or stored."""
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: ") and message in lines[0], err
    assert "unexpected error" not in err and "Traceback" not in err
    assert "Testing" not in out and "Summary" not in out
    assert not (tmp_path / "benchmarks.db").exists() and not (tmp_path / "outbox").exists()


RUN_CASES = [
    # --timeout that no clock can wait for
    (["--timeout", "inf"], {}, {}, "--timeout must be at most 86400 seconds, not inf"),
    (["--timeout", "1e300"], {}, {}, "--timeout must be at most 86400 seconds, not 1e300"),
    (["--timeout", "nan"], {}, {}, "--timeout must be a number of seconds, not 'nan'"),
    # files that are not UTF-8
    (["--prompt-file", "p.txt"], {}, {"p.txt": b"Explain \xe9t\xe9"},
     "--prompt-file p.txt is not UTF-8 text (line 1): save it as UTF-8"),
    ([], {}, {"benchmark.toml": b"# \xff\n" + TOML_ENTRY.encode()},
     "config file benchmark.toml is not UTF-8 text (line 1): save it as UTF-8"),
    ([], {}, {".env": b"BENCHMARK_REGION=eu\nBENCHMARK_HOST=caf\xe9\n"},
     "the file .env is not UTF-8 text (line 2): save it as UTF-8"),
    # text no variable can hold, and a file nested past any parser's depth
    ([], {}, {".env": b"BENCHMARK_REGION=eu\nBENCHMARK_HOST=a\x00b\n"},
     ".env line 2 holds a NUL byte, which no variable can hold: remove it"),
    ([], {}, {"benchmark.toml": b"x = " + b"[" * 5000}, "benchmark.toml is nested too deeply"),
    # a prompt over 5 MB
    (["--prompt-file", "big.txt"], {}, {"big.txt": b"a" * 5_000_001},
     "--prompt-file big.txt is 5.0 MB; prompts are limited to 5 MB (a 10,000-token prompt is about 40 kB)"),
    # benchmark.toml values of the wrong type, and a typo
    ([], {}, {"benchmark.toml": b"providers = 5\n"}, "benchmark.toml: providers must be [[providers]] tables"),
    ([], {}, {"benchmark.toml": b'[[providers]]\nname = 7\nbase_url = "http://a"\nmodel = "m"\n'},
     "benchmark.toml [[providers]] #1: name must be one string in quotes"),
    ([], {}, {"benchmark.toml": b'[[providers]]\nname = "x"\nbase_url = "http://a"\nmodel = ["a", "b"]\n'},
     "benchmark.toml [[providers]] #1: model must be one string in quotes, like model = \"llama3.2\", not a list"),
    ([], {}, {"benchmark.toml": TOML_ENTRY.encode() + b"api_key_env = 5\n"},
     "benchmark.toml [[providers]] #1: api_key_env must be one string in quotes"),
    ([], {}, {"benchmark.toml": TOML_ENTRY.replace("base_url", "baseurl").encode()},
     "benchmark.toml [[providers]] #1: unknown key 'baseurl' (did you mean base_url?); allowed: api, api_key_env, "
     "base_url, cached_input_price, headers, input_price, model, models, name, output_price, price_as_of, token_count"),
    # the API an endpoint or a provider speaks
    ([], {}, {"benchmark.toml": TOML_ENTRY.encode() + b'api = "grpc"\n'},
     "benchmark.toml [[providers]] #1: api must be one of chat_completions, responses, messages, generate_content, "
     "not 'grpc'"),
    ([], {}, {"benchmark.toml": TOML_ENTRY.encode() + b'api = ["responses"]\n'},
     "benchmark.toml [[providers]] #1: api must be one of chat_completions, responses, messages, generate_content, "
     "not ['responses']"),
    (["--api", "openai=grpc"], {}, {}, "--api openai=API: API must be one of chat_completions, responses, not 'grpc'"),
    (["--api", "groq=responses"], {}, {}, "--api groq=...: groq speaks one API (chat_completions)"),
    (["--api", "nobody=responses"], {}, {}, "--api: unknown provider 'nobody'"),
    (["--api", "openai"], {}, {}, "--api takes provider=api, like --api openai=responses, not 'openai'"),
    ([], {"OPENAI_API": "Responses"}, {}, "OPENAI_API must be one of chat_completions, responses, not 'Responses'"),
    ([], {"GROQ_API": "responses"}, {}, "GROQ_API is set, but groq speaks one API (chat_completions): unset it"),
    # prices
    ([], {}, {"benchmark.toml": TOML_ENTRY.encode() + b'input_price = -0.1\noutput_price = "1"\n'},
     "input_price must be a number of USD per 1M tokens, 0 or more, like input_price = \"0.10\", not -0.1"),
    ([], {}, {"benchmark.toml": TOML_ENTRY.encode() + b'input_price = "NaN"\noutput_price = "1"\n'},
     "input_price must be a number of USD per 1M tokens, 0 or more, like input_price = \"0.10\", not 'NaN'"),
    ([], {}, {"benchmark.toml": TOML_ENTRY.encode() + b'input_price = "1"\noutput_price = inf\n'},
     "output_price must be a number of USD per 1M tokens, 0 or more, like output_price = \"0.10\", not inf"),
    # ports out of range in every kind of base URL
    ([], {}, {"benchmark.toml": TOML_ENTRY.replace(":8000", ":99999").encode()},
     "benchmark.toml [[providers]] #1: base_url has a port that is not a number from 1 to 65535"),
    (["--providers", "openai"], {"OPENAI_BASE_URL": "http://127.0.0.1:99999/v1", "OPENAI_API_KEY": FAKE_KEY}, {},
     "OPENAI_BASE_URL has a port that is not a number from 1 to 65535: fix the number after the host"),
    (["--providers", "groq"], {"GROQ_BASE_URL": "http://127.0.0.1:-1", "GROQ_API_KEY": FAKE_KEY}, {},
     "GROQ_BASE_URL has a port that is not a number from 1 to 65535"),
    # API keys that cannot go into an HTTP header
    (["--providers", "openai"], {"OPENAI_API_KEY": FAKE_KEY + "\u2019", "OPENAI_BASE_URL": UNREACHABLE}, {},
     "OPENAI_API_KEY contains a character that is not ASCII"),
    (["--providers", "openai"], {"OPENAI_API_KEY": f" {FAKE_KEY}", "OPENAI_BASE_URL": UNREACHABLE}, {},
     "OPENAI_API_KEY contains a space or a line break: set it to the key exactly as the provider shows it"),
    (["--providers", "x"], {"X_KEY": f"{FAKE_KEY}\n"},
     {"benchmark.toml": TOML_ENTRY.replace(":8000", ":9").encode() + b'api_key_env = "X_KEY"\n'},
     "X_KEY contains a space or a line break"),
    # storage variables
    (["--simulate"], {"DATABASE_URL": f"postgresql://bench:{PASSWORD}/x@127.0.0.1:5432/db"}, {},
     "DATABASE_URL: the password (or user name) holds a /, ? or # that is not percent-encoded: write / as %2F, "
     "? as %3F and # as %23"),
    (["--simulate"], {"DATABASE_URL": f"postgresql://bench:{PASSWORD}?x@127.0.0.1:5432/db"}, {}, "%3F"),
    (["--simulate"], {"DATABASE_URL": f"postgresql://bench:{PASSWORD}#x@127.0.0.1:5432/db"}, {}, "%23"),
    (["--simulate"], {"DATABASE_URL": "postgresql://"}, {},
     "DATABASE_URL has no host: give one, like postgresql://user:password@host:5432/dbname"),
    (["--simulate"], {"DATABASE_URL": f"postgresql://bench:{PASSWORD}@127.0.0.1:65536/db"}, {},
     "DATABASE_URL has a port that is not a number from 1 to 65535"),
    (["--simulate"], {"DATABASE_URL": "sqlite:///:memory:"}, {},
     "DATABASE_URL=sqlite:///:memory: would keep nothing after the run: give a file, like sqlite:///benchmarks.db"),
    (["--simulate"], {"BENCHMARK_NO_MIGRATE": "maybe"}, {},
     "BENCHMARK_NO_MIGRATE takes 1, true or yes, or 0, false or no, not 'maybe'"),
    # an output inside the site's directory, which every rebuild replaces whole
    (["--simulate", "--site", "site", "--metrics-file", "site/metrics.prom"], {}, {},
     "--metrics-file site/metrics.prom is in the site directory, which the tool keeps"),
    (["--simulate", "--site", "site", "--metrics-file", "site/assets/m.prom"], {}, {}, "is in the site directory"),
    # names longer than 200 characters
    (["--simulate", "--model", "groq=" + "m" * 201], {}, {},
     "--model groq=MODEL: the model name is 201 characters long; names are limited to 200: shorten it"),
    (["--simulate"], {"GROQ_MODEL": "m" * 3000}, {}, "GROQ_MODEL is 3000 characters long; names are limited to 200"),
    (["--simulate"], {}, {"benchmark.toml": TOML_ENTRY.replace('"m"', '"' + "m" * 201 + '"').encode()},
     "benchmark.toml [[providers]] #1: model is 201 characters long; names are limited to 200"),
    (["--simulate"], {}, {"benchmark.toml": TOML_ENTRY.replace('"x"', '"' + "x" * 201 + '"').encode()},
     "benchmark.toml [[providers]] #1: name is 201 characters long; names are limited to 200"),
    (["--simulate", "--run-name", "r" * 201], {}, {}, "--run-name is 201 characters long; names are limited to 200"),
    (["--simulate", "--triggered-by", "t" * 201], {}, {}, "--triggered-by is 201 characters long"),
]


@pytest.mark.parametrize("args, env, files, message", RUN_CASES)
def test_bad_run_input_is_one_line_exit_2_and_nothing_stored(cli, tmp_path, args, env, files, message):
    status, out, err = cli(*args, files=files, **env)
    assert_refused(tmp_path, status, out, err, message)
    assert FAKE_KEY not in out + err and PASSWORD not in out + err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "99999999w"], "--since 99999999w is out of the calendar's range (years 1 to 9999): give a later "
                                   "or shorter time, like 4h, 7d or 2026-11-01"),
        (["--since", "9" * 30 + "d"], "out of the calendar's range"),
        (["--until", "0001-01-01T00:00:00+01:00"], "--until 0001-01-01T00:00:00+01:00 is out of the calendar's range"),
        (["--compare", "99999999w..1h", "1h"], "--compare 99999999w is out of the calendar's range"),
        (["--export", "a-file/rows.csv"], "--export: a-file is not a directory: choose another path"),
        (["--plot", "a-file/missing/chart.png"], "--plot: a-file is not a directory: choose another path"),
        (["--export", "/sys/missing/rows.csv"], "--export: cannot write /sys/missing/rows.csv: "),
        (["--plot", "a-dir.html"], "--plot a-dir.html is a directory: give a file name"),
        (["--window", "1000000d"], "--window must be at most 365d, not '1000000d'"),
        (["--window", "1h", "--until", "0001-01-01"], "--window reaches back before year 1 from 0001-01-01"),
        # an empty value (a shell variable that was not set) is refused, not taken as "no such flag"
        (["--window", ""], "--window takes a duration like 90s, 15m, 4h, 7d, 2w or 1h30m, not ''"),
        (["--since", ""], "--since takes a time like 4h, 7d or 2026-11-01 (UTC), not ''"),
        (["--until", ""], "--until takes a time like 4h, 7d or 2026-11-01 (UTC), not ''"),
        (["--run", ""], "--run takes a run id (a UUID, as printed by `Run started:`), not ''"),
        (["--plot", ""], "--plot writes .png or .html files, not ''"),
        (["--export", ""], "--export writes .csv or .jsonl files, not ''"),
    ],
)
def test_bad_report_input_is_one_line_exit_2_before_any_work(cli, tmp_path, args, message):
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-dir.html").mkdir()
    status, out, err = cli("report", *args)
    assert_refused(tmp_path, status, out, err, message)


def test_report_refuses_a_directory_it_cannot_write_to(cli, tmp_path):
    if os.geteuid() == 0:
        locked = Path("/sys")  # root may write anywhere its permission bits say no, but not into sysfs
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
    status, out, err = cli("report", "--export", f"{locked}/rows.csv")
    assert_refused(tmp_path, status, out, err, f"--export: cannot write {locked}/rows.csv: ")


def test_report_checks_a_writable_path_leaves_no_file_behind_and_keeps_an_existing_one(cli, tmp_path):
    (tmp_path / "old.csv").write_text("kept\n")
    status, out, err = cli("report", "--export", "old.csv", "--plot", "new/dir/new.png")
    assert status == 0, err
    assert "no results match" in out
    assert (tmp_path / "old.csv").read_text() == "kept\n" and not (tmp_path / "new").exists()
    assert sorted(os.listdir(tmp_path)) == ["benchmarks.db", "old.csv"]  # the probe's temporary file is gone


@pytest.mark.parametrize(
    "args, message",
    [
        (["--interval", "99999999999999d"], "--interval must be at most 365d, not '99999999999999d'"),
        (["--duration", "9" * 40 + "h"], "--duration must be at most 365d"),
        (["--timeout", "inf"], "--timeout must be at most 86400 seconds, not inf"),
        (["--run-name", "r" * 201], "--run-name is 201 characters long"),
        (["--site", "s", "--metrics-file", "s/m.prom"], "--metrics-file s/m.prom is in the site directory"),
    ],
)
def test_bad_schedule_input_is_one_line_exit_2(cli, tmp_path, args, message):
    status, out, err = cli("--simulate", "--runs", "1", *args, entry=scheduled_main)
    assert_refused(tmp_path, status, out, err, message, prog="run_scheduled.py")


def test_storage_variables_are_checked_by_report_flush_and_check_too(cli, tmp_path):
    url = f"postgresql://bench:{PASSWORD}/x@127.0.0.1:5432/db"
    for command in ("report", "flush", "check"):
        status, out, err = cli(command, DATABASE_URL=url)
        assert_refused(tmp_path, status, out, err, "percent-encoded")
        assert PASSWORD not in out + err


# ---- end to end: main.py and run_scheduled.py as a user runs them ------------------------------------------------

def test_end_to_end_a_key_with_whitespace_is_named_and_never_printed(tmp_path):
    done = run_main(tmp_path, "--providers", "openai", OPENAI_API_KEY=f"{FAKE_KEY} ", OPENAI_BASE_URL=UNREACHABLE)
    assert done.returncode == 2
    assert done.stderr == ("main.py: error: OPENAI_API_KEY contains a space or a line break: set it to the key "
                           "exactly as the provider shows it\n")
    assert FAKE_KEY not in done.stdout + done.stderr and not (tmp_path / "benchmarks.db").exists()


def test_end_to_end_a_password_with_a_slash_says_to_percent_encode_it(tmp_path):
    done = run_main(tmp_path, "--simulate", DATABASE_URL=f"postgresql://postgres:{PASSWORD}/x@127.0.0.1:5432/x")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "percent-encoded" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr and not (tmp_path / "benchmarks.db").exists()


def test_end_to_end_timeout_inf_toml_typo_and_env_file_not_utf8(tmp_path):
    done = run_main(tmp_path, "--simulate", "--timeout", "inf")
    assert (done.returncode, done.stderr) == (2, "main.py: error: --timeout must be at most 86400 seconds, not inf\n")
    (tmp_path / "benchmark.toml").write_text(TOML_ENTRY.replace("model", "modle"))
    done = run_main(tmp_path, "--simulate")
    assert done.returncode == 2 and "unknown key 'modle' (did you mean model?)" in done.stderr
    (tmp_path / "benchmark.toml").unlink()
    (tmp_path / ".env").write_bytes(b"OPENAI_API_KEY=\xff\n")
    done = run_main(tmp_path, "--simulate")
    assert (done.returncode, done.stderr) == (2, "main.py: error: the file .env is not UTF-8 text (line 1): save it "
                                                 "as UTF-8\n")
    assert not (tmp_path / "benchmarks.db").exists()


def test_end_to_end_report_since_an_overflowing_time(tmp_path):
    done = run_main(tmp_path, "report", "--since", "99999999w")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--since 99999999w is out of the calendar's range" in done.stderr and "Traceback" not in done.stderr


def test_env_file_with_a_byte_order_mark_has_its_first_variable_read(tmp_path, monkeypatch):
    from benchmarking.settings.environment import load_dotenv_file

    monkeypatch.delenv("BENCHMARK_REGION", raising=False)
    (tmp_path / ".env").write_bytes("\ufeffBENCHMARK_REGION=eu-west\n".encode())
    load_dotenv_file(tmp_path / ".env")
    assert os.environ.get("BENCHMARK_REGION") == "eu-west"


@pytest.mark.parametrize("kind, message", [
    ("directory", ".env is not a regular file (a directory)"),
    ("fifo", ".env is not a regular file (a FIFO)"),
    ("device", ".env is not a regular file (a character device)"),
    ("dangling", ".env is a symbolic link to missing-target, which does not exist"),
])
def test_env_file_that_is_not_a_regular_file_is_refused_never_opened(cli, tmp_path, kind, message):
    env = tmp_path / ".env"
    if kind == "directory":
        env.mkdir()
    elif kind == "fifo":
        os.mkfifo(env)  # no writer: opening it for reading would wait for ever
    elif kind == "device":
        env.symlink_to("/dev/null")
    else:
        env.symlink_to("missing-target")
    status, out, err = cli("--simulate")
    assert_refused(tmp_path, status, out, err, message)


def test_a_refused_number_is_echoed_cut_in_its_one_line(tmp_path):
    """A 5,000-digit --seed was refused as "not a whole number" (int() stops at 4,300 digits) with every digit echoed:
    the line says what is wrong and shows a bounded piece."""
    done = run_main(tmp_path, "--simulate", "--providers", "groq", "--dry-run", "--rate", "1", "--arrivals", "poisson",
                    "--seed", "9" * 5000)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and len(done.stderr) < 300
    assert "--seed must be a whole number of at most 40 digits" in done.stderr and "(5,000 characters)" in done.stderr
