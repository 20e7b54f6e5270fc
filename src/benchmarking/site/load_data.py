"""The site's load page: every level of the load runs among the rows, as `report --by concurrency --format json`
gives it; the page's SLO sliders judge them in the browser."""

from __future__ import annotations

from typing import Sequence

from ..report.load import by_concurrency, level_fields
from ..report.selection import Row
from ..slo import SloConfig
from .keys import model_key


def load_levels(rows: Sequence[Row], slo: SloConfig) -> list[dict[str, object]]:
    """Per provider, model and level, oldest level first: the report's fields, with the model's key."""
    return [dict(level_fields(level), key=model_key(level.provider, level.model))
            for level in by_concurrency(rows, slo)]
