"""The site's load page: every level of the load runs among the rows, as `report --by concurrency --format json`
gives it (the page's SLO sliders judge them in the browser), and TTFT against input size (prefill), as `report
--plot` draws it."""

from __future__ import annotations

from typing import Sequence

from ..figures import round_ms
from ..report.charts import prefill_points
from ..report.load import by_concurrency, level_fields
from ..report.selection import Row
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
