"""`python main.py report --site DIR`: the static results site, from the same selection flags as the report."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .common import ExitStatus

if TYPE_CHECKING:
    from ..report.selection import Selection
    from ..safe_files import OwnFiles
    from ..settings.model import Settings

# What the site chooses for itself, so a flag for it would be ignored: refused instead.
_NOT_WITH_SITE = (("compare", "--compare"), ("window", "--window (the site has 1h, 24h, 7d and 30d windows)"),
                  ("export", "--export"), ("plot", "--plot (the site draws its own charts)"))


def check_site_flags(args: argparse.Namespace) -> None:
    """--site writes the site in place of the report: flags for another output are a mistake, said at once."""
    for name, flag in _NOT_WITH_SITE:
        if getattr(args, name, None):
            raise ConfigError(f"--site and {flag} do not go together: run report twice")
    if args.by != "provider" or args.format != "table":
        raise ConfigError("--site draws per provider and model: leave out --by and --format")


def site_main(directory: str, selection: "Selection", settings: "Settings", own: "OwnFiles") -> int:
    """Check the directory, read the selection, write the site, say where it is."""
    from ..site.build import build_site
    from ..site.write import check_site_directory
    from ..storage import open_backend

    from dataclasses import replace

    from ..report.selection import select

    check_site_directory(directory, "--site", own)
    hint = ""
    with open_backend(settings) as storage:
        results = build_site(storage, selection, settings.slo, directory)
        if not results and not selection.include_simulated and select(storage, replace(selection,
                                                                                        include_simulated=True)):
            hint = " (simulated results match: add --include-simulated to see them)"
    print(f"site written to {directory} ({results} results; {selection.describe()}){hint}: open "
          f"{directory.rstrip('/')}/index.html", file=sys.stderr)
    return ExitStatus.OK


def add_site_argument(parser: argparse._ActionsContainer) -> None:
    parser.add_argument(
        "--site", metavar="DIR",
        help="after each run, rebuild the static results site in DIR (as `main.py report --site DIR` writes it; "
             "simulated runs shown after a simulated run); a site that cannot be written is one line and never "
             "fails the run: see docs/site.md")


def checked_site(args: argparse.Namespace, settings: "Settings") -> tuple[str, "OwnFiles"] | None:
    """--site of a run, checked before anything is measured, like every output; with the files it must spare. A
    directory of the tool's own or of another's is refused; one that cannot be written is a warning line."""
    if getattr(args, "site", None) is None:
        return None
    from ..site.write import check_site_directory
    from .outputs import own_files

    from ..errors import OutputUnwritable

    own = own_files(settings, args)
    try:
        check_site_directory(args.site, "--site", own)
    except OutputUnwritable as exc:  # the place, not the input: the run measures, the rebuild after it tries again
        print(f"warning: --site {args.site}: {exc}; measuring all the same", file=sys.stderr)
    return args.site, own
