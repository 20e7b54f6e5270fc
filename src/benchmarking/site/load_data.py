"""The site's load page: every level of the load runs among the rows, as `report --by concurrency --format json`
gives it (the page's SLO sliders judge them in the browser), and TTFT against input size (prefill), as `report
--plot` draws it; and the conversations by turn, as `report --by turn --format json` gives them."""

from __future__ import annotations

from typing import Sequence

from ..figures import round_ms
from ..report.charts import prefill_points
from ..report.load import by_concurrency, level_fields
from ..report.selection import Row
from ..report.turns import by_turn, cache_savings, saving_fields, turn_fields
from ..slo import SloConfig
from .keys import model_key


def load_levels(rows: Sequence[Row], slo: SloConfig) -> list[dict[str, object]]:
    """Per provider, model and level, oldest level first: the report's fields, with the model's key."""
    return [dict(level_fields(level), key=model_key(level.provider, level.model))
            for level in by_concurrency(rows, slo)]


def prefill(rows: Sequence[Row]) -> list[dict[str, object]]:
    """Per provider and model measured at two input sizes or more (one request at a time): TTFT p50 at each size,
    smallest first, as `report --plot`'s prefill panel draws it."""
    return [{"label": label, "points": [{"input_tokens": point.input_tokens, "ttft_p50_ms": round_ms(point.ttft_p50_ms),
                                         "requests": point.requests, "input_tier": point.input_tier}
                                        for point in points]}
            for label, points in prefill_points(rows).items() if len(points) > 1]


def conversation_turns(rows: Sequence[Row]) -> dict[str, list[dict[str, object]]]:
    """The conversations by turn, as `report --by turn --format json` gives them: the turns with the model's key, and
    the lines on what the cache saved from turn 2 on."""
    return {"turns": [dict(turn_fields(f), key=model_key(f.provider, f.model)) for f in by_turn(rows)],
            "cache_from_turn_2": [saving_fields(s) for s in cache_savings(rows)]}
