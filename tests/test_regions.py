"""Several regions, one database: probes in two regions write into one PostgreSQL, and both read back by region."""

from __future__ import annotations

from collections import Counter
import json

import pytest

from conftest import pg_rows
from test_cli import run_main


def test_two_probes_in_two_regions_write_into_one_postgres_and_read_back_by_region(tmp_path, pg_url):
    probes = {"eu-west": "probe-eu-1", "us-east": "probe-us-1"}
    run_ids = {}
    for region, host in probes.items():  # each probe from a directory (a machine) of its own, as cron runs it
        directory = tmp_path / host
        directory.mkdir()
        done = run_main(directory, "--simulate", "--providers", "groq,together", "--repeat", "2", "--json",
                        DATABASE_URL=pg_url, BENCHMARK_REGION=region, BENCHMARK_HOST=host)
        assert done.returncode == 0, done.stderr
        run_ids[region] = json.loads(done.stdout)["run"]["id"]
        assert not (directory / "benchmarks.db").exists()  # nothing kept locally: all went to the one database

    # In the database: each region's run, host and results, side by side
    by_region = pg_rows(pg_url, "select r.region, r.host, count(distinct r.id), count(b.id), "
                                "count(*) filter (where b.success) from runs r join benchmark_results b "
                                "on b.run_id = r.id group by r.region, r.host order by r.region")
    assert by_region == [("eu-west", "probe-eu-1", 1, 4, 4), ("us-east", "probe-us-1", 1, 4, 4)]
    per_provider = pg_rows(pg_url, "select r.region, b.provider, count(*) from runs r join benchmark_results b "
                                   "on b.run_id = r.id group by 1, 2 order by 1, 2")
    assert per_provider == [("eu-west", "groq", 2), ("eu-west", "together", 2),
                            ("us-east", "groq", 2), ("us-east", "together", 2)]

    # Through the report, from a third machine: every row with its region, and each region's run on its own
    reader = tmp_path / "analyst"
    reader.mkdir()
    done = run_main(reader, "report", "--include-simulated", "--export", "rows.jsonl", DATABASE_URL=pg_url)
    assert done.returncode == 0, done.stderr
    exported = [json.loads(line) for line in (reader / "rows.jsonl").read_text().splitlines()]
    assert Counter((row["region"], row["host"]) for row in exported) == {("eu-west", "probe-eu-1"): 4,
                                                                         ("us-east", "probe-us-1"): 4}
    for region, run_id in run_ids.items():
        done = run_main(reader, "report", "--include-simulated", "--run", run_id, "--format", "json",
                        DATABASE_URL=pg_url)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["results"] == 4 and summary["runs"] == 1
        assert {p["provider"]: p["requests"] for p in summary["providers"]} == {"groq": 2, "together": 2}
    # And grouped by region: each region's figures per provider, from its own rows
    done = run_main(reader, "report", "--include-simulated", "--by", "region", "--format", "json",
                    DATABASE_URL=pg_url)
    assert done.returncode == 0, done.stderr
    grouped = json.loads(done.stdout)
    assert grouped["by"] == "region"
    assert sorted((p["region"], p["provider"], p["requests"]) for p in grouped["providers"]) == [
        ("eu-west", "groq", 2), ("eu-west", "together", 2), ("us-east", "groq", 2), ("us-east", "together", 2)]
    for region in run_ids:
        medians = {p["provider"]: p["ttft_p50_ms"] for p in grouped["providers"] if p["region"] == region}
        stored = pg_rows(pg_url, "select b.provider, percentile_cont(0.5) within group (order by b.ttft_ms) "
                                 "from benchmark_results b join runs r on r.id = b.run_id where r.region = %s "
                                 "group by 1", region)
        assert medians == pytest.approx(dict(stored), abs=0.005)  # the report gives ms to 2 decimals
