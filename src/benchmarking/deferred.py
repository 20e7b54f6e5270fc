"""A measurement's untimed last step, done later by whoever asked: a load slot hands the counting of tokens by the
server's tokenizer to a counter, so that its next request need not wait behind it (the slot is the load; counting
is not part of it).

The measuring code offers the step with `later(finish, now)`: within `finishing_later()` it keeps `finish` for the
caller and returns `now()` (the measurement without what the step adds); elsewhere it simply runs `finish()`.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")

_steps: ContextVar[list[Callable[[], Any]] | None] = ContextVar("finish_later", default=None)


@contextmanager
def finishing_later() -> Iterator[list[Callable[[], Any]]]:
    """Within it, a measurement's last step is kept in the list yielded, not done: the caller does it."""
    steps: list[Callable[[], Any]] = []
    token = _steps.set(steps)
    try:
        yield steps
    finally:
        _steps.reset(token)


@contextmanager
def finishing_now() -> Iterator[None]:
    """Within it, every step is done at once (a request whose result nobody keeps, such as a cache warm-up)."""
    token = _steps.set(None)
    try:
        yield
    finally:
        _steps.reset(token)


def later(finish: Callable[[], T], now: Callable[[], T]) -> T:
    """finish() kept for the caller of finishing_later(), and now() returned meanwhile; elsewhere finish()."""
    steps = _steps.get()
    if steps is None:
        return finish()
    steps.append(finish)
    return now()
