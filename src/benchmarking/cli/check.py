"""`python main.py check`: is everything ready for a run? Measures nothing, spends no tokens."""

from __future__ import annotations

import os
import sys

from ..benchmark_runner import BENCHMARK_PROMPT
from ..settings.environment import load_dotenv_file
from ..settings.load import load_settings
from ..settings.values import positive_float
from .common import ExitStatus, Parser, builtin_providers


def check_main(argv: list[str]) -> int:
    """Storage, outbox, and each provider's key and model; exit 0 if all is ready."""
    from ..check import run_check

    parser = Parser(prog="main.py check", description=(
        "Preflight: which storage backend is selected and whether its tables are ready, whether the outbox is "
        "empty, and for each provider whether its key is set and its model is listed by its free GET /models. "
        "Exit 0 if all is ready, 1 if not, each problem on one line with its fix."))
    parser.add_argument("--providers", metavar="LIST", help="check only these providers, e.g. openai,groq")
    parser.add_argument("--model", action="append", default=[], metavar="PROVIDER=MODEL",
                        help="check another model for one provider; repeatable")
    parser.add_argument("--api", action="append", default=[], metavar="PROVIDER=API",
                        help="the API a provider is checked through, e.g. openai=responses (also OPENAI_API)")
    parser.add_argument("--config", metavar="PATH", help="benchmark.toml with extra endpoints")
    parser.add_argument("--timeout", default="10", metavar="SECONDS", help="per request (default 10)")
    args = parser.parse_args(argv)
    load_dotenv_file()
    settings = load_settings(
        prompt=BENCHMARK_PROMPT, builtin=builtin_providers(), environ=os.environ,
        provider_selection=args.providers, model_overrides=args.model, api_overrides=args.api,
        config_path=args.config,
        timeout_s=positive_float(args.timeout, "--timeout"),
    )
    for line in settings.warnings:
        print(line, file=sys.stderr)
    lines = run_check(settings)
    for line in lines:
        print(("warning  " if line.warning else "ok       " if line.ok else "PROBLEM  ") + line.text)
    return ExitStatus.OK if all(line.ok for line in lines) else ExitStatus.FAILURES
