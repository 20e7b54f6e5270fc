"""`report --by turn`: per provider, model and turn of the stored conversations, what each turn cost and how soon it
answered, and what the prompt cache saved from turn 2 on.

Computed from the stored rows (selection.py's Rows), the same on every backend. Only rows with a `turn` count (the
requests of prompt files with `turns`). Times over successful requests, percentiles by figures.quantiles. The cached
share of a turn's input is sum(cached_tokens) / sum(input_tokens) over the rows that report both (input_tokens counts
every input token: uncached, read from the cache and written to it).

What the cache saved is said from what was stored and measured only, never from a model of what might have been:
- input cost: sum over turns >= 2 of cached_tokens x (input price - cached input price), less cache writes x (write
  price - input price), as a share of those turns' input at the full input price; the prices are the ones stored
  with each row, and a row missing one it needs makes the figure "not priced";
- TTFT: where requests of the same prompt and turn both read the cache (cached_tokens > 0) and missed it
  (cached_tokens = 0), the median over those prompt-turn pairs of (TTFT p50 of the misses - TTFT p50 of the hits);
  where there is no such pair, what is measured instead: the share of input read from the cache, and TTFT p50 from
  turn 2 on against turn 1's while the input grew some times.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
import json
from statistics import median
from typing import Iterable, Sequence

from ..figures import number_text, quantiles, round_ms
from ..measurement import Measurement
from .formats import aligned_lines, cell_text, csv_text, exact_text, markdown_lines, rounded, usd_text
from .selection import Row, Selection

TURN_PERCENTILES = (50, 90)
MTOK = Decimal(1_000_000)


@dataclass(frozen=True)
class TurnFigures:
    """One provider and model at one turn number, over the selected conversations; times in ms, costs in USD."""

    provider: str
    model: str
    turn: int
    requests: int
    successes: int
    sessions: int
    ttft_ms: dict[int, float | None]
    input_tokens_p50: float | None
    cached_share: float | None  # None: no row reported both cached and input tokens
    cost_mean_usd: Decimal | None
    ttft_p50_change_ms: float | None = None  # against turn 1 of the same provider and model
    cost_mean_change: float | None = None  # relative: 0.25 is 25 % dearer than turn 1


@dataclass(frozen=True)
class CacheSaving:
    """What one provider and model's prompt cache saved from turn 2 on, as measured, with its one line of text."""

    provider: str
    model: str
    input_cost_full_usd: Decimal | None  # turns >= 2's input at the full input price; None: not priced
    input_cost_saved_usd: Decimal | None
    ttft_saved_ms: float | None  # the median over matched prompt-turn pairs, misses minus hits
    ttft_matches: int  # prompt-turn pairs with both a hit and a miss
    cached_share: float | None  # of the input from turn 2 on
    ttft_p50_later_ms: float | None  # TTFT p50 from turn 2 on
    ttft_p50_first_ms: float | None  # TTFT p50 at turn 1
    input_growth: float | None  # median input tokens from turn 2 on / turn 1's
    line: str

    @property
    def input_cost_saved_share(self) -> float | None:
        full, saved = self.input_cost_full_usd, self.input_cost_saved_usd
        return None if full is None or saved is None or not full else float(saved / full)


def turn_rows(rows: Iterable[Row]) -> list[Row]:
    """The rows of conversations: those that record their turn."""
    return [row for row in rows if row.result.measurement.turn is not None]


def _successes(measurements: Iterable[Measurement]) -> list[Measurement]:
    return [m for m in measurements if m.success]


def _cached_share(measurements: Iterable[Measurement]) -> float | None:
    both = [(m.cached_tokens, m.input_tokens) for m in measurements
            if m.success and m.cached_tokens is not None and m.input_tokens is not None]
    total = sum(tokens for _, tokens in both)
    return sum(cached for cached, _ in both) / total if total else None


def _median_input(measurements: Iterable[Measurement]) -> float | None:
    counts = [m.input_tokens for m in measurements if m.success and m.input_tokens is not None]
    return median(counts) if counts else None


def _ttft_p50(measurements: Iterable[Measurement]) -> float | None:
    return quantiles([m.ttft_ms for m in measurements if m.success and m.ttft_ms is not None], (50,))[50]


def _turn(provider: str, model: str, turn: int, measured: Sequence[Measurement], sessions: int) -> TurnFigures:
    costs = [m.cost_usd for m in measured if m.success and m.cost_usd is not None]
    return TurnFigures(
        provider=provider, model=model, turn=turn, requests=len(measured), successes=len(_successes(measured)),
        sessions=sessions,
        ttft_ms=quantiles([m.ttft_ms for m in measured if m.success and m.ttft_ms is not None], TURN_PERCENTILES),
        input_tokens_p50=_median_input(measured), cached_share=_cached_share(measured),
        cost_mean_usd=sum(costs, Decimal(0)) / len(costs) if costs else None,
    )


def _against_first(figures: list[TurnFigures]) -> list[TurnFigures]:
    """Each turn with its change against turn 1 of its provider and model (none where turn 1 has no figure)."""
    first = {(f.provider, f.model): f for f in figures if f.turn == 1}
    changed = []
    for f in figures:
        base = first.get((f.provider, f.model))
        ttft, base_ttft = f.ttft_ms[50], base.ttft_ms[50] if base else None
        cost, base_cost = f.cost_mean_usd, base.cost_mean_usd if base else None
        changed.append(replace(
            f, ttft_p50_change_ms=None if ttft is None or base_ttft is None else ttft - base_ttft,
            cost_mean_change=None if cost is None or not base_cost else float(cost / base_cost) - 1))
    return changed


def _grouped(rows: Iterable[Row]) -> dict[tuple[str, str], list[Measurement]]:
    groups: dict[tuple[str, str], list[Measurement]] = {}
    for row in turn_rows(rows):
        m = row.result.measurement
        groups.setdefault((m.provider, m.model), []).append(m)
    return dict(sorted(groups.items()))


def by_turn(rows: Iterable[Row]) -> list[TurnFigures]:
    """Per provider and model (by name), its turns in order."""
    figures = []
    for (provider, model), measured in _grouped(rows).items():
        turns: dict[int, list[Measurement]] = {}
        for m in measured:
            turns.setdefault(m.turn, []).append(m)  # type: ignore[arg-type]
        for turn in sorted(turns):
            sessions = len({m.session_id for m in turns[turn] if m.session_id is not None})
            figures.append(_turn(provider, model, turn, turns[turn], sessions))
    return _against_first(figures)


# ---- what the cache saved from turn 2 on ----------------------------------------------------------------------------

def _input_costs(later: Sequence[Measurement]) -> tuple[Decimal, Decimal] | None:
    """(full, saved) input cost in USD of the rows from turn 2 on that report their cached tokens; None where a price
    a row needs was not stored. Tokens are bounded as pricing.cost_usd bounds them."""
    full = saved = Decimal(0)
    for m in later:
        if m.input_tokens is None or m.cached_tokens is None:
            continue
        cached = min(max(m.cached_tokens, 0), m.input_tokens)
        written = min(max(m.cache_write_tokens or 0, 0), m.input_tokens - cached)
        needed = (m.price_input_per_mtok, m.price_cached_input_per_mtok if cached else Decimal(0),
                  m.price_cache_write_per_mtok if written else Decimal(0))
        if any(price is None for price in needed):
            return None
        full_rate, cached_rate, write_rate = needed
        assert full_rate is not None and cached_rate is not None and write_rate is not None
        full += m.input_tokens * full_rate / MTOK
        saved += cached * (full_rate - cached_rate) / MTOK
        if written:
            saved -= written * (write_rate - full_rate) / MTOK
    return full, saved


def _matched_ttft(later: Sequence[Measurement]) -> tuple[float | None, int]:
    """The median over prompt-turn pairs that both read and missed the cache of (misses' TTFT p50 - hits' TTFT p50),
    and how many pairs there were."""
    pairs: dict[tuple[str, int], tuple[list[float], list[float]]] = {}
    for m in later:
        if m.prompt_id is None or m.cached_tokens is None or m.ttft_ms is None:
            continue
        hits, misses = pairs.setdefault((m.prompt_id, m.turn), ([], []))  # type: ignore[arg-type]
        (hits if m.cached_tokens > 0 else misses).append(m.ttft_ms)
    differences = [median(misses) - median(hits) for hits, misses in pairs.values() if hits and misses]
    return (median(differences) if differences else None), len(differences)


def _percent(share: float) -> str:
    return f"{share * 100:.1f} %"


def _saving(provider: str, model: str, measured: Sequence[Measurement]) -> CacheSaving:
    ok = _successes(measured)
    first = [m for m in ok if m.turn == 1]
    later = [m for m in ok if m.turn is not None and m.turn >= 2]
    costs = _input_costs(later)
    ttft_saved, matches = _matched_ttft(later)
    share = _cached_share(later)
    later_p50, first_p50 = _ttft_p50(later), _ttft_p50(first)
    later_input, first_input = _median_input(later), _median_input(first)
    growth = later_input / first_input if later_input is not None and first_input else None
    saving = CacheSaving(provider, model, costs[0] if costs else None, costs[1] if costs else None, ttft_saved,
                         matches, share, later_p50, first_p50, growth, "")
    name = f"{provider} / {model}"
    if not later:
        line = f"{name}: no successful request from turn 2 on: nothing to say of the cache"
        return _with_line(saving, line)
    if share is None:
        cost_text = "input cost saved: unknown (no cached token count reported from turn 2 on)"
    elif costs is None:
        cost_text = "input cost saved: not priced (a row from turn 2 on lacks a stored price it needs)"
    elif saving.input_cost_saved_share is None:
        cost_text = "input cost saved: none to price (no input tokens from turn 2 on)"
    else:
        cost_text = (f"input cost saved {_percent(saving.input_cost_saved_share)} "
                     f"({usd_text(costs[1])} of {usd_text(costs[0])} at the full input price)")
    if ttft_saved is not None:
        way = "sooner" if ttft_saved >= 0 else "later"
        ttft_text = (f"TTFT: cache hits answered {abs(ttft_saved):.1f} ms {way} than misses of the same prompt and "
                     f"turn (median over {matches} prompt-turn pair(s))")
    else:
        read = "-" if share is None else _percent(share)
        grew = "" if growth is None else f" while the input grew {growth:.1f} times"
        ttft_text = (f"TTFT: no prompt and turn both read and missed the cache; measured instead: {read} of the input "
                     f"read from the cache, TTFT p50 {cell_text(later_p50)} ms from turn 2 on against "
                     f"{cell_text(first_p50)} ms at turn 1{grew}")
    return _with_line(saving, f"{name} from turn 2 on: {cost_text}; {ttft_text}")


def _with_line(saving: CacheSaving, line: str) -> CacheSaving:
    return replace(saving, line=line)


def cache_savings(rows: Iterable[Row]) -> list[CacheSaving]:
    """Per provider and model (by name) of the conversations: what the cache saved from turn 2 on."""
    return [_saving(provider, model, measured) for (provider, model), measured in _grouped(rows).items()]


def turn_fields(f: TurnFigures) -> dict[str, object]:
    """The fields json and csv carry, units in their names."""
    return {
        "provider": f.provider, "model": f.model, "turn": f.turn, "requests": f.requests, "successes": f.successes,
        "sessions": f.sessions,
        **{f"ttft_p{q}_ms": round_ms(f.ttft_ms[q]) for q in TURN_PERCENTILES},
        "input_tokens_p50": rounded(f.input_tokens_p50, 1),
        "cached_input_share": rounded(f.cached_share, 4),
        "cost_mean_usd": exact_text(f.cost_mean_usd),
        "ttft_p50_change_ms": round_ms(f.ttft_p50_change_ms),
        "cost_mean_change": rounded(f.cost_mean_change, 4),
    }


def saving_fields(s: CacheSaving) -> dict[str, object]:
    return {
        "provider": s.provider, "model": s.model,
        "input_cost_full_usd": exact_text(s.input_cost_full_usd), "input_cost_saved_usd": exact_text(s.input_cost_saved_usd),
        "input_cost_saved_share": rounded(s.input_cost_saved_share, 4),
        "ttft_saved_ms": round_ms(s.ttft_saved_ms), "ttft_matched_pairs": s.ttft_matches,
        "cached_input_share": rounded(s.cached_share, 4), "ttft_p50_from_turn_2_ms": round_ms(s.ttft_p50_later_ms),
        "ttft_p50_turn_1_ms": round_ms(s.ttft_p50_first_ms), "input_growth": rounded(s.input_growth, 2),
        "line": s.line,
    }


# ---- output -----------------------------------------------------------------------------------------------------

NO_TURNS = ("no conversation rows match: `report --by turn` reads the requests of conversations, the rows with a "
            "turn (prompt files with `turns`); rows without one are left out")
DEFINITIONS = (
    "rows without a turn left out; times over successful requests, percentiles by linear interpolation, '-' below 2 "
    "samples (the median: 1); input: the median input tokens; cached %: sum of cached tokens / sum of input tokens "
    "over the rows that report both; $ / request: the mean cost; vs turn 1: the change of TTFT p50 (ms) and of the "
    "mean cost (%) against turn 1 of the same provider and model"
)


def _change_text(f: TurnFigures) -> str:
    ttft = "-" if f.ttft_p50_change_ms is None else f"{f.ttft_p50_change_ms:+.1f} ms"
    cost = "-" if f.cost_mean_change is None else f"{f.cost_mean_change * 100:+.0f} %"
    return f"{ttft} / {cost}"


def _table(figures: Sequence[TurnFigures]) -> tuple[list[str], list[list[str]]]:
    header = ["provider", "model", "turn", "requests", "sessions", "TTFT ms p50/p90", "input", "cached %",
              "$ / request", "vs turn 1 TTFT / $"]
    rows = [[f.provider, f.model, str(f.turn), str(f.requests), str(f.sessions),
             " / ".join(cell_text(f.ttft_ms[q]) for q in TURN_PERCENTILES), number_text(rounded(f.input_tokens_p50, 1)),
             "-" if f.cached_share is None else f"{f.cached_share * 100:.0f}", usd_text(f.cost_mean_usd),
             _change_text(f) if f.turn != 1 else ""]
            for f in figures]
    return header, rows


def format_turns_table(figures: Sequence[TurnFigures], savings: Sequence[CacheSaving], title: str) -> str:
    header, rows = _table(figures)
    lines = [title, *aligned_lines(header, rows, ("provider", "model")), *(s.line for s in savings), DEFINITIONS]
    return "\n".join(lines)


def format_turns_markdown(figures: Sequence[TurnFigures], savings: Sequence[CacheSaving], title: str) -> str:
    header, rows = _table(figures)
    return "\n".join(markdown_lines(title, header, rows) + [""] + [f"- {s.line}" for s in savings])


def format_turns_csv(figures: Sequence[TurnFigures]) -> str:
    empty = TurnFigures("", "", 0, 0, 0, 0, {q: None for q in TURN_PERCENTILES}, None, None, None)
    return csv_text([turn_fields(f) for f in figures], list(turn_fields(empty)))


def format_turns_json(figures: Sequence[TurnFigures], savings: Sequence[CacheSaving], title: str,
                      selection: Selection, rows: Sequence[Row]) -> str:
    conversations = turn_rows(rows)
    return json.dumps({
        "title": title,
        "selection": selection.describe(),
        "results": len(conversations),
        "left_out_without_turn": len(rows) - len(conversations),
        "runs": len({row.run.info.id for row in conversations}),
        "definitions": DEFINITIONS,
        "turns": [turn_fields(f) for f in figures],
        "cache_from_turn_2": [saving_fields(s) for s in savings],
    }, indent=2)


def render(rows: Sequence[Row], output: str, title: str, selection: Selection) -> str:
    """The conversation report in table, markdown, json or csv; with no row with a turn, json and csv with no turn,
    the table and markdown one line saying so."""
    figures, savings = by_turn(rows), cache_savings(rows)
    if output == "json":
        return format_turns_json(figures, savings, title, selection, rows) + "\n"
    if output == "csv":
        return format_turns_csv(figures)
    if not figures:
        return NO_TURNS + "\n"
    if output == "markdown":
        return format_turns_markdown(figures, savings, title) + "\n"
    return format_turns_table(figures, savings, title) + "\n"
