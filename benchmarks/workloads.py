"""What building a workload costs, and how close a tier's prompt is to its size by a real tokenizer.

    python benchmarks/workloads.py           # prompt building, planning 1,000 cells, tier sizes (a few seconds)
    python benchmarks/workloads.py --quick   # a smoke run

Targets: a 100,000-token prompt is built in under 50 ms; planning 1,000 cells adds under 10 ms. Tier sizes: within
15 % of the tier by the default models' tokenizer (o200k, for gpt-4o-mini and gpt-oss). There is no network at run
time and no tokenizer ships with the tool, so the sizes are counted here with the o200k vocabulary that the
`bpe-openai` package carries inside its wheel (`pip install bpe-openai`); without it, that table says so and is
skipped. The chat template adds a few tokens around the message (7 counted for OpenAI's).
Not part of the test suite (a smoke test runs it with --quick so that it does not rot).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from benchmarking.benchmark_runner import plan  # noqa: E402
from benchmarking.settings.load import load_settings  # noqa: E402
from benchmarking.workloads import TEMPLATE_TOKENS, Prompt, Workload, prompt_id_for, tier_prompt  # noqa: E402
from machine import machine_line  # noqa: E402

BUILD_TARGET_MS = 50.0
PLAN_TARGET_MS = 10.0
SIZE_TOLERANCE = 0.15


def median_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def planning_ms(cells: int, repeats: int) -> tuple[float, int]:
    """Plan 4 providers x 5 models x (cells / 20) prompts: the cells a run would measure."""
    messages = [(("user", f"prompt {i}"),) for i in range(cells // 20)]
    workload = Workload("bench", tuple(Prompt(prompt_id_for(m), m) for m in messages), "bust")
    environ = {f"{p.upper()}_API_KEY": "k" for p in ("openai", "groq", "together", "openrouter")}
    models = [f"{p}=m{i}" for p in ("openai", "groq", "together", "openrouter") for i in range(5)]
    settings = load_settings(prompt="hi", builtin=[("openai", "a"), ("groq", "b"), ("together", "c"),
                                                   ("openrouter", "d")], environ=environ, model_overrides=models,
                             workload=workload)
    made = len(plan(settings))
    return median_ms(lambda: plan(settings), repeats), made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for the smoke test")
    args = parser.parse_args()
    repeats = 3 if args.quick else 20
    print("workloads: building prompts and plans, and tier sizes by a real tokenizer")
    print(machine_line())
    missed = []

    print("\nbuilding a tier's prompt (median of %d)" % repeats)
    for tokens in (100, 1_000, 10_000, 100_000):
        ms = median_ms(lambda: tier_prompt(tokens), repeats)
        print(f"  {tokens:>7,} tokens  {ms:8.2f} ms  ({len(tier_prompt(tokens).text):,} characters)")
    build = median_ms(lambda: tier_prompt(100_000), repeats)
    ok = build < BUILD_TARGET_MS
    missed += [] if ok else [f"100k prompt {build:.1f} ms"]
    print(f"  target: a 100,000-token prompt under {BUILD_TARGET_MS:g} ms: {build:.1f} ms {'ok' if ok else 'MISSED'}")

    ms, cells = planning_ms(1_000, repeats)
    ok = ms < PLAN_TARGET_MS
    missed += [] if ok else [f"planning {ms:.1f} ms"]
    print(f"\nplanning {cells:,} cells (4 providers x 5 models x 50 prompts): {ms:.2f} ms; target under "
          f"{PLAN_TARGET_MS:g} ms: {'ok' if ok else 'MISSED'}")

    print("\ntier sizes by the o200k vocabulary (gpt-4o-mini; gpt-oss's o200k_harmony adds only special tokens)")
    try:
        import bpe_openai
    except ImportError:
        print("  not checked: `pip install bpe-openai` (it carries the vocabulary; nothing is downloaded)")
    else:
        encoding = bpe_openai.get_encoding("o200k_base")
        for tokens in (100, 1_000, 10_000, 100_000):
            text = tier_prompt(tokens).text
            try:
                counted = len(encoding.encode(text)) + TEMPLATE_TOKENS
            except ValueError:  # it refuses very long inputs: count in pieces cut at sentence ends
                counted = sum(len(encoding.encode(part + ".")) for part in text.split(".") if part) + TEMPLATE_TOKENS
            error = counted / tokens - 1
            ok = abs(error) <= SIZE_TOLERANCE
            missed += [] if ok else [f"tier {tokens} off by {error:+.1%}"]
            print(f"  {tokens:>7,}  counted {counted:>7,}  {error:+6.1%}  {'ok' if ok else 'MISSED'}")
    print("\nall targets met" if not missed else "\nMISSED: " + "; ".join(missed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
