"""`python main.py check`: is everything ready for a run? Storage, the outbox, and each provider's key and model."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Mapping

from .providers.registry import model_name, provider_module, provider_wire
from .settings.model import ProviderSettings, Settings
from .errors import ConfigError, StorageError
from .providers.client import ModelListError, list_models
from .storage import open_backend
from .storage.outbox import CORRUPT, PENDING, REJECTED, Outbox

# A model whose provider announces its shutdown this close is warned of, by `check` and at a run's start.
SHUTDOWN_WARNING_DAYS = 60


@dataclass(frozen=True)
class CheckLine:
    """One finding: fine, or a problem whose text says how to fix it; a warning is fine for now."""

    ok: bool
    text: str
    warning: bool = False


def check_storage(settings: Settings) -> list[CheckLine]:
    # A check changes nothing: the Postgres backend is asked to report missing tables rather than create them.
    backend = open_backend(replace(settings, migrate=False))
    where = f"storage: {backend.backend} at {backend.location}"
    lines = []
    try:
        backend.prepare()
        lines.append(CheckLine(True, f"{where}: reachable, tables runs and benchmark_results have every column"))
    except ConfigError as exc:  # its message names the location already
        lines.append(CheckLine(False, f"storage: {backend.backend}: {exc}"))
    except StorageError as exc:
        lines.append(CheckLine(False, f"{where}: {exc}; check the URL, the network and that the database is up"))
    finally:
        backend.close()
    outbox = Outbox(settings.outbox_dir)
    contents = outbox.contents(backend.database)
    if contents.pending:
        lines.append(CheckLine(False, f"outbox: {contents.pending} writes wait in {outbox.directory / PENDING}: "
                                      "run `python main.py flush` once the database is reachable"))
    if contents.rejected:
        lines.append(CheckLine(False, f"outbox: {contents.rejected} writes the database rejected are in "
                                      f"{outbox.directory / REJECTED} (each with its reason): fix the cause, "
                                      "then run `python main.py flush`"))
    for database, count in sorted(contents.other_databases.items()):
        lines.append(CheckLine(False, f"outbox: {count} writes in {outbox.directory}/ are for {database}, not this "
                                      "database: run `python main.py flush` with that database's settings"))
    if contents.unowned:
        lines.append(CheckLine(False, f"outbox: {contents.unowned} writes in {outbox.directory}/ from an older "
                                      "version say no database: `python main.py flush` writes them to this one"))
    if contents.corrupt:
        lines.append(CheckLine(False, f"outbox: {contents.corrupt} unreadable line(s) set aside in "
                                      f"{outbox.directory / CORRUPT}: nothing replays them; look at them, "
                                      "then delete the file"))
    if not (contents.pending or contents.rejected or contents.other_databases or contents.unowned
            or contents.corrupt):
        lines.append(CheckLine(True, f"outbox: empty ({outbox.directory})"))
    return lines


def shutdown_warning(name: str, model: str, shutdown: str | None, hint: str, today: date) -> str | None:
    """A line for a model that shuts down within SHUTDOWN_WARNING_DAYS (or has), naming the date and what to change."""
    try:
        day = date.fromisoformat(str(shutdown)[:10]) if shutdown else None
    except ValueError:
        return None
    if day is None or (day - today).days > SHUTDOWN_WARNING_DAYS:
        return None
    days = (day - today).days
    when = f"shuts down on {day} (in {days} days)" if days >= 0 else f"was shut down on {day}"
    return f"{name}: model {model} {when}: {hint}"


def shutdown_of(provider: str, model: str, listed: Mapping[str, str | None]) -> str | None:
    """The shutdown date a model's provider announces in its listing, else the one its module knows (SHUTDOWNS: a
    listing that announces none, as OpenRouter's for the OpenAI models it passes on)."""
    return listed.get(model) or getattr(provider_module(provider), "SHUTDOWNS", {}).get(model)


def check_providers(settings: Settings, today: date | None = None) -> list[CheckLine]:
    today = today or datetime.now(timezone.utc).date()
    lines = [CheckLine(False, line) for line in settings.skipped]
    for provider in settings.providers:
        wire = provider_wire(provider.name, provider)
        try:
            listed = list_models(wire, provider)
        except ModelListError as exc:
            lines.append(CheckLine(False, f"{provider.name}: cannot list models: {exc}"))
            continue
        key = f"key set ({provider.key_env})" if provider.key_env else "no key configured"
        for model in settings.models[provider.name]:
            name = model_name(provider, model)
            if name not in listed:
                lines.append(CheckLine(False, f"{provider.name}: model {model} is not among the {len(listed)} models "
                                              f"GET /models lists: {provider.model_hint}"))
                continue
            lines.append(CheckLine(True, f"{provider.name}: {key}, model {model} is listed"))
            warning = shutdown_warning(provider.name, model, shutdown_of(provider.name, name, listed),
                                       provider.model_hint, today)
            if warning:
                lines.append(CheckLine(True, warning, warning=True))
    return lines


def retiring_models(settings: Settings, timeout_s: float = 5.0) -> list[str]:
    """At a run's start: the measured models whose providers announce a shutdown within SHUTDOWN_WARNING_DAYS.

    One free GET /models per provider, side by side; a provider that does not answer is left to the run to report.
    """
    from concurrent.futures import ThreadPoolExecutor

    today = datetime.now(timezone.utc).date()

    def one(provider: ProviderSettings) -> list[str]:
        try:
            listed = list_models(provider_wire(provider.name, provider),
                                 replace(provider, timeout_s=min(provider.timeout_s, timeout_s)))
        except ModelListError:
            return []
        names = {model: model_name(provider, model) for model in settings.models[provider.name]}
        return [line for model, name in names.items() if name in listed
                if (line := shutdown_warning(provider.name, model, shutdown_of(provider.name, name, listed),
                                             provider.model_hint, today))]

    if not settings.providers:
        return []
    with ThreadPoolExecutor(max_workers=len(settings.providers)) as pool:
        return [line for lines in pool.map(one, settings.providers) for line in lines]


def run_check(settings: Settings) -> list[CheckLine]:
    return check_storage(settings) + check_providers(settings)
