"""The files this process keeps, for the guard of every output flag (--export, --plot, --metrics-file): see
..safe_files."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ..safe_files import OwnFiles

if TYPE_CHECKING:
    from ..settings.model import Settings


def own_files(settings: "Settings", args: argparse.Namespace) -> OwnFiles:
    """Its database, outbox, config file, .env, the prompt files its flags name and its --site directory."""
    from ..storage import sqlite_path

    prompt_files = [path for path in (getattr(args, "prompt_file", None), getattr(args, "prompts", None)) if path]
    return OwnFiles.of(
        database=sqlite_path(settings),
        outbox=settings.outbox_dir,
        config=getattr(args, "config", None) or os.environ.get("BENCHMARK_CONFIG") or None,
        prompt_files=prompt_files,
        site=getattr(args, "site", None),
    )
