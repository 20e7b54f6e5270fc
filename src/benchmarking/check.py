"""`python main.py check`: is everything ready for a run? Storage, the outbox, and each provider's key and model."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .benchmark_runner import plan
from .config import Settings
from .errors import ConfigError, StorageError
from .providers import custom_provider, groq_provider, openai_provider, openrouter_provider, together_provider
from .providers.openai_compatible import ModelListError, list_models
from .storage import open_backend
from .storage.outbox import CORRUPT, PENDING, REJECTED, Outbox

WIRES = {
    "openai": openai_provider.WIRE,
    "groq": groq_provider.WIRE,
    "together": together_provider.WIRE,
    "openrouter": openrouter_provider.WIRE,
}


@dataclass(frozen=True)
class CheckLine:
    """One finding: fine, or a problem whose text says how to fix it."""

    ok: bool
    text: str


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


def check_providers(settings: Settings) -> list[CheckLine]:
    lines = [CheckLine(False, line) for line in settings.skipped]
    for name, _, model, provider_settings in plan(settings):
        wire = WIRES.get(name, custom_provider.WIRE)
        try:
            listed = list_models(wire, provider_settings)
        except ModelListError as exc:
            lines.append(CheckLine(False, f"{name}: cannot list models: {exc}"))
            continue
        key = f"key set ({provider_settings.key_env})" if provider_settings.key_env else "no key configured"
        if model in listed:
            lines.append(CheckLine(True, f"{name}: {key}, model {model} is listed"))
        else:
            lines.append(CheckLine(False, f"{name}: model {model} is not among the {len(listed)} models "
                                          f"GET /models lists: {provider_settings.model_hint}"))
    return lines


def run_check(settings: Settings) -> list[CheckLine]:
    return check_storage(settings) + check_providers(settings)
