"""What is said is what happened, and the same everywhere: the run's console and `report` give the same figures for
the same rows, unknown token counts are unknown, machine formats stay machine-readable, amounts print sensibly."""

from __future__ import annotations

from array import array
import csv
from decimal import Decimal
import io
import json
import math
from pathlib import Path
import random
import re

import pytest

from benchmarking.figures import SELECTED_FROM, number_text, percentile, quantiles, rate_text, round_rate
from benchmarking.pricing import format_usd
from benchmarking.simulator import ModelProfile, Simulator

from test_cli import run_main

QUICK = dict(ttft_ms=20, itl_ms=2, output_tokens=10)


def endpoint(directory: Path, sim: Simulator, model: str = "m") -> None:
    (directory / "benchmark.toml").write_text(
        f'[[providers]]\nname = "local"\nbase_url = "{sim.base_url("local")}"\nmodel = "{model}"\n')


def report_json(directory: Path, *args: str) -> dict:
    done = run_main(directory, "report", "--format", "json", "--include-simulated", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def summary_cells(stdout: str) -> dict[tuple[str, str], dict[str, str]]:
    """The console's summary table, per provider and model: header name -> cell."""
    lines = stdout[stdout.index("Summary: run"):].splitlines()[1:]
    header = re.split(r"\s{2,}", lines[0].strip())
    table = {}
    for line in lines[1:]:
        if not line.strip() or line.startswith("Warning"):
            break
        cells = re.split(r"\s{2,}", line.strip())
        table[(cells[0], cells[1])] = dict(zip(header, cells))
    return table


@pytest.mark.parametrize("repeat", ["1", "3"])
def test_the_runs_console_summary_gives_the_figures_report_gives_for_its_rows(tmp_path, repeat):
    done = run_main(tmp_path, "--simulate", "--providers", "openai,groq", "--repeat", repeat)
    assert done.returncode == 0, done.stderr
    run_id = re.search(r"Summary: run (\S+)", done.stdout).group(1)
    console = summary_cells(done.stdout)
    report = {(p["provider"], p["model"]): p for p in report_json(tmp_path, "--run", run_id)["providers"]}
    assert set(console) == set(report) and len(report) == 2
    def number(cell: str) -> float | None:  # '-' for none: a stream read whole in one read (a busy machine) has no speed
        return None if cell == "-" else float(cell)

    for pair, cells in console.items():
        figures = report[pair]
        assert float(cells["TTFT ms"]) == figures["ttft_p50_ms"], pair
        assert float(cells["latency ms"]) == figures["latency_p50_ms"], pair
        assert number(cells["tokens/s"]) == figures["tokens_per_second_p50"], pair
        assert cells["mean USD"] == format_usd(Decimal(figures["cost_mean_usd"])), pair  # 3 significant figures


LEVEL_LINE = re.compile(r"Load → local / m at concurrency (\d+): (\d+) requests in (\S+) s, (\S+) requests/s, (\S+) "
                        r"output tokens/s\n   TTFT p50 (\S+) / p99 (\S+) ms; latency p50 (\S+) / p99 (\S+) ms")


def test_a_load_runs_level_lines_give_the_figures_report_gives_for_its_rows(tmp_path):
    with Simulator(profiles={"m": ModelProfile(ttft_ms=30, itl_ms=3, output_tokens=10)}, default=None) as sim:
        endpoint(tmp_path, sim)
        done = run_main(tmp_path, "--providers", "local", "--concurrency", "1,3", "--requests", "9", timeout=300)
    assert done.returncode == 0, done.stderr
    lines = {int(m.group(1)): m.groups()[1:] for m in LEVEL_LINE.finditer(done.stdout)}
    levels = {level["concurrency"]: level for level in report_json(tmp_path, "--by", "concurrency")["levels"]}
    assert set(lines) == set(levels) == {1, 3}
    for concurrency, (requests, wall, per_s, tokens_per_s, ttft50, ttft99, lat50, lat99) in lines.items():
        level = levels[concurrency]
        assert int(requests) == level["requests"] == 9 and float(wall) == level["wall_s"]
        assert (float(ttft50), float(ttft99)) == (level["ttft_p50_ms"], level["ttft_p99_ms"])
        assert (float(lat50), float(lat99)) == (level["latency_p50_ms"], level["latency_p99_ms"])
        assert (float(per_s), float(tokens_per_s)) == (level["requests_per_s"], level["output_tokens_per_s"])
    lags = [float(lag) for lag in re.findall(r"Harness: start lag p99 (\S+) ms", done.stdout)]
    assert lags == [levels[1]["start_lag_p99_ms"], levels[3]["start_lag_p99_ms"]]


def test_unknown_output_tokens_are_unknown_in_the_console_and_every_report_format(tmp_path):
    with Simulator(profiles={"m": ModelProfile(**QUICK, fault="no_usage")}, default=None) as sim:
        endpoint(tmp_path, sim)
        done = run_main(tmp_path, "--providers", "local", "--concurrency", "2", "--requests", "4", timeout=300)
    assert "unknown output tokens/s" in done.stdout and " 0 output tokens/s" not in done.stdout, done.stdout
    (level,) = report_json(tmp_path, "--by", "concurrency")["levels"]
    assert level["output_tokens_per_s"] is None and level["requests_per_s"] > 0
    csv_out = run_main(tmp_path, "report", "--by", "concurrency", "--format", "csv").stdout
    (row,) = csv.DictReader(io.StringIO(csv_out))
    assert row["output_tokens_per_s"] == "" and float(row["requests_per_s"]) > 0
    table = run_main(tmp_path, "report", "--by", "concurrency").stdout
    header, line = table.splitlines()[1:3]
    column = header.index("out tok/s")
    assert line[column:column + len("out tok/s")].strip() == "-", table


def test_rates_keep_four_significant_digits():
    assert rate_text(0.4333333) == "0.4333" and rate_text(1234.56) == "1235" and rate_text(12.0) == "12"
    assert rate_text(0.000123456) == "0.0001235" and rate_text(None) == "unknown"
    assert round_rate(0.4333333) == 0.4333 and number_text(1.5e-7) == "0.00000015"


def test_the_median_of_one_request_is_that_request_and_a_tail_needs_two():
    assert quantiles([7.0], (50, 99)) == {50: 7.0, 99: None}
    assert quantiles([], (50,)) == {50: None}
    assert quantiles([1.0, 2.0, 3.0], (50, 99)) == {50: 2.0, 99: pytest.approx(2.98)}


@pytest.mark.parametrize("count", [SELECTED_FROM, SELECTED_FROM + 1, 3 * SELECTED_FROM + 7])
def test_many_values_have_the_percentiles_of_every_value_sorted_exactly(count):
    """From SELECTED_FROM values on, only the ranks a percentile needs are selected: the same floats, bit for bit,
    with ties, whole numbers, a list or an array of doubles; a NaN among them gives what sorting gives."""
    generator = random.Random(count)
    values = [generator.choice([round(generator.uniform(50, 900), 1), generator.uniform(50, 900), 300.0, 42])
              for _ in range(count)]
    qs = (1, 50, 90, 95, 99, 100)
    by_sorting = {q: percentile(sorted(values), q, presorted=True) for q in qs}
    assert quantiles(values, qs) == by_sorting and quantiles(array("d", values), qs) == by_sorting
    assert all(type(value) is float for value in quantiles(values, qs).values())
    with_nan = values[:-1] + [math.nan]
    assert quantiles(with_nan, (50,)) == {50: percentile(sorted(with_nan), 50, presorted=True)}


# ---- machine formats stay machine formats ----------------------------------------------------------------------

def test_report_json_and_csv_parse_on_an_empty_database_and_an_empty_selection(tmp_path):
    for args in ([], ["--provider", "nobody"], ["--by", "concurrency"], ["--by", "model"]):
        done = run_main(tmp_path, "report", "--format", "json", *args)
        assert done.returncode == 0, done.stderr
        payload = json.loads(done.stdout)
        assert payload["results"] == 0 and payload[("levels" if "concurrency" in args else "providers")] == []
        assert "no results match" in done.stderr or "no load runs match" in done.stderr
        done = run_main(tmp_path, "report", "--format", "csv", *args)
        assert done.returncode == 0, done.stderr
        header = next(csv.reader(io.StringIO(done.stdout)))
        assert "provider" in header and "model" in header and len(done.stdout.splitlines()) == 1


def test_report_json_parses_for_a_selection_without_load_runs_and_a_compare_without_data(tmp_path):
    assert run_main(tmp_path, "--simulate", "--providers", "openai").returncode == 0
    done = run_main(tmp_path, "report", "--format", "json", "--by", "concurrency", "--include-simulated")
    assert json.loads(done.stdout)["levels"] == [] and "no load runs match" in done.stderr
    csv_out = run_main(tmp_path, "report", "--format", "csv", "--by", "concurrency", "--include-simulated").stdout
    assert next(csv.reader(io.StringIO(csv_out)))[:3] == ["provider", "model", "concurrency"]
    done = run_main(tmp_path, "report", "--compare", "8h..4h", "4h..", "--format", "json")
    assert done.returncode == 0 and json.loads(done.stdout)["comparisons"] == [], done.stdout
    assert "nothing to compare" in done.stderr


@pytest.mark.parametrize("script", ["main.py", "run_scheduled.py"])
def test_json_dry_run_prints_json(tmp_path, script):
    args = ["--simulate", "--json", "--dry-run"] + (["--runs", "2", "--interval", "1m"] if script != "main.py" else [])
    if script == "main.py":
        done = run_main(tmp_path, *args)
    else:
        import subprocess
        import sys

        from test_cli import MAIN, clean_env
        done = subprocess.run([sys.executable, str(MAIN.parent / script), *args], cwd=tmp_path, env=clean_env(),
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    from benchmarking.benchmark_runner import PROVIDERS

    plan = json.loads(done.stdout)
    # one request per provider, in each of two runs for run_scheduled.py
    assert plan["dry_run"] is True and plan["requests"] == len(PROVIDERS) * (1 if script == "main.py" else 2)
    assert plan["cost_bound_usd"] and Decimal(plan["cost_bound_usd"]) > 0
    assert "Nothing was sent (--dry-run)." in done.stderr


# ---- amounts --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("amount", ["1e999", "inf", "-inf", "nan", "1e10", "0", "-1"])
def test_max_cost_beyond_any_sane_amount_is_refused_like_inf(tmp_path, amount):
    done = run_main(tmp_path, "--simulate", f"--max-cost={amount}", "--dry-run")
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("main.py: error: --max-cost") and len(line) < 200, line


def test_tiny_amounts_print_short_and_true(tmp_path):
    assert format_usd(Decimal("1e-30")) == "$1e-30" and format_usd(Decimal("1.234567e-12")) == "$1.23e-12"
    assert format_usd(Decimal("0.000034")) == "$0.000034" and format_usd(Decimal("1.5")) == "$1.50"
    done = run_main(tmp_path, "--max-cost", "1e-30", "--dry-run", "--providers", "openai", OPENAI_API_KEY="sk-x")
    assert done.returncode == 0, done.stderr
    assert "more than --max-cost $1e-30:" in done.stdout and len(done.stdout.splitlines()[-2]) < 200


def test_scheduled_runs_with_json_print_one_json_line_a_run(tmp_path):
    import subprocess
    import sys

    from test_cli import MAIN, clean_env
    done = subprocess.run([sys.executable, str(MAIN.parent / "run_scheduled.py"), "--simulate", "--providers", "groq",
                           "--json", "--runs", "2", "--interval", "1s", "--duration", "2s"], cwd=tmp_path,
                          env=clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert [run["run"]["run_name"] for run in runs] == ["scheduled-run-01/02", "scheduled-run-02/02"]
    assert all(len(run["results"]) == 1 for run in runs) and "Summary: run" in done.stderr


def test_a_percentile_between_two_huge_finite_values_is_finite():
    # hi - lo overflowed to infinity: the median of -1.5e308 and 1.5e308 read as Infinity (not JSON, a blank chart)
    assert quantiles([-1.5e308, 1.5e308], (50, 90)) == {50: 0.0, 90: 1.2e308}
    assert percentile([-1.5e308, 1.5e308], 50) == 0.0
    assert quantiles([1.0, 4.0], (50,)) == {50: 2.5}  # the usual path, to the bit as before


def test_many_whole_numbers_are_ranked_as_sorting_ranks_them():
    # numpy's path made them floats: 2**53 + 1 and 2**53 + 3 became 2**53 and 2**53 + 4; 10**309 overflowed
    exact = [2**53 + 1] * 1000 + [2**53 + 3] * 1000
    assert quantiles(exact, (50,)) == {50: percentile(sorted(exact), 50, presorted=True)}
    assert quantiles([1] * 1999 + [10**309], (50,)) == {50: 1.0}
