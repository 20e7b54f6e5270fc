"""The settings a run is handed: Settings, ProviderSettings, a custom endpoint, what watching reads."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Mapping

from ..pricing import Price
from ..slo import SloConfig
from ..workloads import Workload, default_workload, prompt_record
from .values import DEFAULT_MAX_COST_USD, DEFAULT_MAX_TOKENS, DEFAULT_RUN_NAME, DEFAULT_TIMEOUT_S, Secret

ALERT_RULES = ("outage", "slo_breach", "regression")


@dataclass(frozen=True)
class ProviderSettings:
    """Everything one provider call needs besides the prompt and the model."""

    name: str
    api_key: Secret | None
    key_env: str | None
    model_hint: str
    base_url: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_tokens: int = DEFAULT_MAX_TOKENS
    stream: bool = True
    retries: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    price: Price | None = None
    token_count: str = "usage"  # "tokenize": count with the server's tokenizer when it sends no usage
    # Open the connection with a free GET /models before every request (one at a time), or only before a client's
    # first (a load run: its connections stay open, and a warm-up per request would double the requests).
    warm_each_request: bool = True
    # The API spoken, where the provider speaks several (openai, an endpoint of benchmark.toml); None: its one API.
    api: str | None = None


@dataclass(frozen=True)
class CustomEndpoint:
    """An endpoint declared in benchmark.toml, speaking one of the APIs (OpenAI-compatible by default)."""

    name: str
    base_url: str
    models: tuple[str, ...]
    api_key_env: str | None = None
    price: Price | None = None
    headers: tuple[tuple[str, str], ...] = ()
    token_count: str = "usage"
    api: str = "chat_completions"  # the API it speaks: one of settings.apis.APIS


@dataclass(frozen=True)
class AlertRules:
    """The [alerts] table: which rules are on and their settings (durations in seconds)."""

    rules: tuple[str, ...] = ALERT_RULES
    consecutive_failures: int = 3
    window_s: float = 3600.0  # the last window every rule judges
    baseline_s: float = 7 * 86400.0  # the regression rule's baseline: this long, just before the window
    regression_threshold: float = 0.20  # slower by at least this fraction of the baseline's median


@dataclass(frozen=True)
class Watching:
    """What watching reads from benchmark.toml and the environment: SLOs, alert rules, where notifications go."""

    slo: SloConfig = SloConfig()
    alerts: AlertRules = AlertRules()
    notify_urls: tuple[Secret, ...] = ()  # Apprise URLs: they hold tokens, so they never print themselves


@dataclass(frozen=True)
class Settings:
    """One run's settings; the providers are resolved, in the order they will be measured."""

    prompt: str
    providers: tuple[ProviderSettings, ...]
    models: Mapping[str, tuple[str, ...]]  # every model measured, per provider
    skipped: tuple[str, ...] = ()
    max_tokens: int = DEFAULT_MAX_TOKENS  # for a prompt that sets none (a tier's cap is used instead, unless given)
    max_tokens_given: bool = False  # --max-tokens was given: it wins over the tiers' caps
    timeout_s: float = DEFAULT_TIMEOUT_S
    stream: bool = True
    repeat: int = 1
    retries: int = 0
    simulate: bool = False
    json_output: bool = False
    run_name: str = DEFAULT_RUN_NAME
    triggered_by: str = "cli"
    database_url: str | None = None
    supabase_url: str | None = None
    supabase_service_role: Secret | None = None
    outbox_dir: str = "outbox"
    migrate: bool = True
    host: str = ""
    region: str | None = None
    workload: Workload | None = None  # None: the MVP's one prompt (default_workload(prompt))
    dry_run: bool = False
    max_cost_usd: Decimal = DEFAULT_MAX_COST_USD
    watching: Watching = Watching()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def slo(self) -> SloConfig:
        return self.watching.slo

    @property
    def mode(self) -> str:
        return "simulated" if self.simulate else "live"

    @property
    def measured_workload(self) -> Workload:
        return self.workload or default_workload(self.prompt)

    def run_settings(self) -> dict[str, object]:
        """What is stored with the run so that its numbers can be interpreted later (no secrets).

        Each distinct prompt is stored once here, not once per request: a user's prompts as they are, a tier's
        synthetic prompt by its size and digest (workloads.tier_prompt rebuilds it exactly).
        """
        workload = self.measured_workload

        def one_or_all(models: tuple[str, ...]) -> str | list[str]:
            return models[0] if len(models) == 1 else list(models)

        stored = {
            "prompt": self.prompt,
            "max_tokens": self.max_tokens,
            "stream": self.stream,
            "repeat": self.repeat,
            "retries": self.retries,
            "timeout_s": self.timeout_s,
            "providers": {p.name: one_or_all(self.models[p.name]) for p in self.providers},
        }
        if self.workload is not None:
            stored["workload"] = {"name": workload.name, "cache_mode": workload.cache_mode,
                                  "prompts": [prompt_record(p) for p in workload.prompts]}
        return stored

    def pointed_at(self, base_urls: Mapping[str, str], api_key: str) -> "Settings":
        """The same settings with every provider sent to other base URLs (the simulator) with a stand-in key."""
        providers = tuple(
            replace(p, base_url=base_urls[p.name], api_key=Secret(api_key)) for p in self.providers
        )
        return replace(self, providers=providers, skipped=())
