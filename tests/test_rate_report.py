"""`report --by rate`'s table: every figure rounded once, at display, from its raw value."""

from __future__ import annotations

from benchmarking.report.formats import cell_text
from benchmarking.report.rate import RateReport, _table

# Raw figures where rounding twice (to 0.01, then to the table's 0.1) shows another digit than rounding once.
TWICE = {50: 0.2549, 90: 1.2549, 99: 3.2549}


def test_each_time_in_the_rate_table_is_rounded_once_from_its_raw_figure():
    assert f"{round(0.2549, 2):.1f}" != f"{0.2549:.1f}"  # the case: 0.25 -> '0.2', against '0.3'
    level = RateReport("p", "m", 5.0, 1, 10, 10, 5.0, 50.0, 2.0, TWICE, TWICE, TWICE, 0, (), TWICE, (), slo_met=5)
    header, (row,) = _table([level])
    cells = dict(zip(header, row))
    once = " / ".join(cell_text(TWICE[q]) for q in (50, 90, 99))
    assert [cells[name] for name in header if name.startswith(("TTFT", "latency", "response"))] == [once] * 3
    assert cells["lag ms p50/p99"] == f"{cell_text(TWICE[50])} / {cell_text(TWICE[99])}" == "0.3 / 3.3"
    assert cells["SLO met %"] == "50.0"
