"""app/ says everything through the Reporter that cli/ gives it: it never prints, and a use case run with a reporter
that keeps its lines leaves this process's stdout and stderr empty."""

from __future__ import annotations

import ast
from contextlib import ExitStack
import io
import json
from pathlib import Path
import sqlite3

from benchmarking import benchmark_runner
from benchmarking.app.plan import show_plan
from benchmarking.app.runs import one_run, prepare_runs
from benchmarking.console import ConsoleReporter
from benchmarking.settings.load import load_settings

APP = Path(__file__).resolve().parent.parent / "src" / "benchmarking" / "app"


class KeptLines:
    """A Reporter that keeps what it is given, each kind apart; the run's progress goes to a text buffer."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.warned: list[str] = []
        self.json: list[str] = []
        self.progress_text = io.StringIO()

    def say(self, line: str = "") -> None:
        self.said.append(line)

    def warn(self, line: str) -> None:
        self.warned.append(line)

    def data(self, text: str) -> None:
        self.json.append(text)

    def progress(self) -> ConsoleReporter:
        return ConsoleReporter(self.progress_text)


def simulated(tmp_path: Path, **flags: object):
    groq_model = next(model for name, _, model in benchmark_runner.PROVIDERS if name == "groq")
    environ = {"BENCHMARK_HOST": "t", "DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
               "BENCHMARK_OUTBOX": str(tmp_path / "outbox"), "BENCHMARK_TYPO": "1"}
    return load_settings(prompt="hi", builtin=[("groq", groq_model)], environ=environ, simulate=True, **flags)


def test_no_module_of_app_prints_or_writes_to_stdout_or_stderr():
    found = []
    files = sorted(APP.glob("*.py"))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                found.append(f"{path.name}:{node.lineno}: print()")
            elif isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr"):
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert len(files) >= 5  # the walk found the package
    assert found == [], "app/ says things through its Reporter (app/reporter.py), never by itself"


def test_a_dry_run_plan_goes_through_the_reporter(tmp_path, capsys):
    lines = KeptLines()
    show_plan(simulated(tmp_path, json_output=True, dry_run=True), lines)
    assert capsys.readouterr() == ("", "")
    assert lines.warned == ["unknown variable BENCHMARK_TYPO is set and ignored (a typo?)"]
    assert any("groq" in line for line in lines.said)  # the plan for people
    plan = json.loads(lines.json[0])
    assert plan["cells"] == 1 and [entry["provider"] for entry in plan["models"]] == ["groq"]


def test_a_run_goes_through_the_reporter_and_is_stored(tmp_path, capsys):
    lines = KeptLines()

    class NoStop:
        @staticmethod
        def requested() -> bool:
            return False

    with ExitStack() as stack:
        context = prepare_runs(simulated(tmp_path, json_output=True), stack, lines)
        outcome = one_run(context, context.settings, NoStop())  # type: ignore[arg-type]
    assert capsys.readouterr() == ("", "")
    assert outcome.status == "completed"
    assert "Run started" in lines.progress_text.getvalue()
    assert any("groq" in line for line in lines.said)  # the summary table
    assert json.loads(lines.json[0])["run"]["id"] == str(outcome.run.id)
    with sqlite3.connect(tmp_path / "b.db") as db:
        assert db.execute("select count(*) from benchmark_results where success").fetchone() == (1,)
