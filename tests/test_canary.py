"""The canary (issue 17, section 1): every kind of secret set to a marker of its own, every command driven through its
failure paths against a server that echoes what it was sent, and every output searched for any form of any marker.

Each marker changes when URL-encoded (it holds / + =), when case-folded (mixed case), and is long enough that a cut
half of it is still a dozen characters: a scrubber that misses any of those forms fails here. One hit fails the test.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import random
import string
import subprocess
import sys
from urllib.parse import quote, quote_plus

import pytest

from echo_server import EchoServer
from test_cli import MAIN, clean_env, rows

SCHEDULED = MAIN.parent / "run_scheduled.py"
INPUTS = ("benchmark.toml", ".env")  # where the secrets are set, not an output
RUN_CHARS = 12  # a run this long of a marker, in any case, counts as the marker shown


def marker(kind: str) -> str:
    """Four random runs of mixed-case letters and digits joined by / + = (no two markers share a run of 12)."""
    pick = random.Random(kind)
    runs = ["".join(pick.choice(string.ascii_letters + string.digits) for _ in range(7)) for _ in range(4)]
    return f"{runs[0]}/{runs[1]}+{runs[2]}={runs[3]}"


MARKERS = {kind: marker(kind) for kind in (
    "OpenAi", "GroqKy", "TogeTh", "OpnRtr", "Anthrp", "CustKy", "HdrAuth", "HdrApiK", "NotifPw", "NotifQ", "SupaRl", "DbPass",
    "DbKeyVal", "DbPct", "BaseCred", "TomlCred")}


def forms(secret: str) -> set[str]:
    return {f.lower() for f in (secret, quote(secret, safe=""), quote_plus(secret, safe=""))}


def hits(text: str) -> list[str]:
    """Which markers show in text, in any form, in any case, or as any run of RUN_CHARS of them."""
    lowered = text.lower()
    found = []
    for kind, secret in MARKERS.items():
        for form in forms(secret):
            if any(form[i : i + RUN_CHARS] in lowered for i in range(len(form) - RUN_CHARS + 1)):
                found.append(f"{kind} ({form[:6]}...)")
                break
    return found


def files_leaking(root: Path) -> list[str]:
    """Every file under root (the database and its WAL, the outbox, exports, charts, metrics) with a marker in it."""
    leaking = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in INPUTS):
        found = hits(path.read_bytes().decode("utf-8", "replace"))
        if found:
            leaking.append(f"{path.relative_to(root)}: {found}")
    return leaking


class Commands:
    """Runs main.py / run_scheduled.py in one directory with one environment, collecting every leak and status."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.leaks: list[str] = []
        self.statuses: dict[str, int] = {}

    def __call__(self, *args: str, script: Path = MAIN, timeout: float = 90) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, str(script), *args], cwd=self.cwd, env=clean_env(**self.env),
                              capture_output=True, text=True, timeout=timeout)
        name = f"{script.name} {' '.join(args)}"
        self.statuses[name] = done.returncode
        for stream, text in (("stdout", done.stdout), ("stderr", done.stderr)):
            found = hits(text)
            if found:
                self.leaks.append(f"{name}: {stream}: {found}: {text[-600:]!r}")
        assert "Traceback" not in done.stderr, (name, done.stderr[-2000:])
        return done


    def many(self, *commands: tuple[str, ...]) -> None:
        """Commands that do not depend on each other, a few at a time (the test stays within a minute or so)."""
        with ThreadPoolExecutor(max_workers=3) as pool:
            for done in pool.map(lambda args: self(*args), commands):
                assert done.returncode in (0, 1, 2, 3), done.stderr[-2000:]


def provider_env(echo: EchoServer) -> dict[str, str]:
    env = {"DATABASE_URL": "sqlite:///bench.db", "CUSTOM_ECHO_KEY": MARKERS["CustKy"],
           "BENCHMARK_NOTIFY": f"json://notify:{quote(MARKERS['NotifPw'], safe='')}@{echo.url[7:]}/hook"
                               f"?token={quote(MARKERS['NotifQ'], safe='')}"}
    for name, kind in (("OPENAI", "OpenAi"), ("GROQ", "GroqKy"), ("TOGETHER", "TogeTh"), ("OPENROUTER", "OpnRtr"),
                       ("ANTHROPIC", "Anthrp")):
        env.update({f"{name}_API_KEY": MARKERS[kind], f"{name}_BASE_URL": f"{echo.url}/v1",
                    f"{name}_MODEL": "echo-ok,echo-fail"})
    return env


TOML = """
[[providers]]
name = "custom-echo"
base_url = "{url}/v1"
models = ["echo-ok", "echo-fail"]
api_key_env = "CUSTOM_ECHO_KEY"
input_price = "1"
output_price = "1"
headers = {{ Authorization = "Bearer {auth}", "X-Api-Key" = "{apikey}" }}

[alerts]
consecutive_failures = 1
"""


def test_no_marker_reaches_any_output_of_any_command(tmp_path):
    with EchoServer(status=500) as echo:
        (tmp_path / "benchmark.toml").write_text(TOML.format(url=echo.url, auth=MARKERS["HdrAuth"],
                                                             apikey=MARKERS["HdrApiK"]))
        run = Commands(tmp_path, provider_env(echo))
        live = run("--timeout", "10", "--max-cost", "100")
        run("--timeout", "10", "--max-cost", "100", "--json", "--providers", "openai,custom-echo")
        run("--timeout", "10", "--max-cost", "100", "--retries", "1", "--providers", "groq", "--no-stream")
        run.many(("check",), ("report",), ("report", "--format", "json"), ("report", "--format", "csv"),
                 ("report", "--export", "rows.csv"), ("report", "--export", "rows.jsonl"),
                 ("report", "--plot", "chart.png"), ("report", "--plot", "chart.html"), ("watch", "--test-notify"),
                 ("report", "--site", "site"))
        run("watch")
        run("flush")
        run("--runs", "1", "--interval", "1s", "--timeout", "10", "--max-cost", "100", "--providers", "openai",
            "--metrics-file", "metrics.prom", script=SCHEDULED)
        assert echo.requests > 20  # the secrets were really sent, and echoed

        # What echoed the secrets reached the database and every file, and was shown (a run with failures: exit 1).
        assert live.returncode == 1 and "****" in live.stdout + live.stderr
        for name in ("bench.db", "rows.csv", "rows.jsonl", "chart.png", "chart.html", "metrics.prom", "site/data.js"):
            assert (tmp_path / name).is_file(), name
    assert not run.leaks, "\n".join(run.leaks)
    assert not files_leaking(tmp_path), "\n".join(files_leaking(tmp_path))


def test_no_marker_of_the_supabase_service_role_is_shown_when_the_server_echoes_it(tmp_path):
    with EchoServer(status=500) as echo:
        run = Commands(tmp_path, {"SUPABASE_URL": echo.url, "SUPABASE_SERVICE_ROLE": "sb_secret_" + MARKERS["SupaRl"],
                                  "BENCHMARK_OUTBOX": "outbox"})
        first = run("--simulate")
        run.many(("check",), ("flush",), ("report",), ("watch",))
        run("--simulate", "--runs", "1", "--interval", "1s", "--metrics-file", "metrics.prom", script=SCHEDULED)
        # The database refuses the rows: they go to outbox/rejected.jsonl, with its reason.
        echo.status, echo.code = 400, "22P02"
        run("--simulate")
        run("flush")
        assert echo.requests > 5 and (tmp_path / "outbox" / "rejected.jsonl").is_file()
    assert not run.leaks, "\n".join(run.leaks)
    assert first.returncode == 1  # results kept in the outbox: a run with failures
    assert not files_leaking(tmp_path), "\n".join(files_leaking(tmp_path))


@pytest.mark.parametrize("database_url", [
    f"host=127.0.0.1 password={MARKERS['DbKeyVal']} dbname=d",
    f"postgresql://bench:{MARKERS['DbPct'].replace('/', '%zz')}@127.0.0.1:1/db",
    f"postgresql://bench:{quote(MARKERS['DbPass'], safe='')}@127.0.0.1:1/db",
])
def test_no_marker_of_the_database_password_is_shown(tmp_path, database_url):
    run = Commands(tmp_path, {"DATABASE_URL": database_url})
    run("--simulate")
    run.many(("check",), ("flush",), ("report",), ("watch",))
    assert not run.leaks, "\n".join(run.leaks)
    assert all(status in (1, 2) for status in run.statuses.values()), run.statuses
    assert not files_leaking(tmp_path), "\n".join(files_leaking(tmp_path))


def test_credentials_in_a_base_url_are_refused_unshown_naming_the_key_variable(tmp_path):
    with EchoServer() as echo:
        userinfo = f"user:{quote(MARKERS['BaseCred'], safe='')}@"
        run = Commands(tmp_path, {"OPENAI_API_KEY": MARKERS["OpenAi"],
                                  "OPENAI_BASE_URL": f"http://{userinfo}{echo.url[7:]}/v1"})
        refused = run("--providers", "openai")
        (tmp_path / "benchmark.toml").write_text(
            f'[[providers]]\nname = "mine"\nbase_url = "http://u:{quote(MARKERS["TomlCred"], safe="")}@'
            f'{echo.url[7:]}/v1"\nmodel = "m"\napi_key_env = "MINE_KEY"\n')
        refused_toml = Commands(tmp_path, {"MINE_KEY": MARKERS["CustKy"]})("--providers", "mine")
        assert echo.requests == 0
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "OPENAI_BASE_URL" in refused.stderr and "OPENAI_API_KEY" in refused.stderr
    assert refused_toml.returncode == 2 and "MINE_KEY" in refused_toml.stderr
    assert not run.leaks and not hits(refused_toml.stderr + refused_toml.stdout)


def test_terminal_escapes_in_a_provider_error_are_shown_inert_and_stored_as_sent(tmp_path):
    said = "\x1b]0;pwned\x07\x1b[2J\x1b[31mRED\x1b[0m\rSuccess (openai)\x08\x00 "
    with EchoServer(status=500, said=said) as echo:
        env = {"OPENAI_API_KEY": MARKERS["OpenAi"], "OPENAI_BASE_URL": f"{echo.url}/v1",
               "DATABASE_URL": "sqlite:///b.db"}
        done = Commands(tmp_path, env)("--providers", "openai", "--timeout", "10")
    shown = done.stdout + done.stderr
    assert done.returncode == 1 and "HTTP 500: RED" in done.stdout
    assert not any(c in shown for c in "\x1b\x07\x08\x00\r"), repr(shown)
    (stored,) = rows(tmp_path / "b.db", "select error_message from benchmark_results")
    assert "\x1b[31mRED" in stored["error_message"]  # the record keeps what the server said
