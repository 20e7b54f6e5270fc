"""Rebuild the results site after a run (`main.py --site DIR`, `run_scheduled.py --site DIR`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..safe_files import OwnFiles
    from .runs import RunContext


def rebuild_site(context: "RunContext", site: tuple[str, "OwnFiles"] | None) -> None:
    """The site over what is stored now, after a run. Whatever goes wrong is one warning line: the run and its
    results stand as they are, and the next run tries again."""
    if site is None:
        return
    from ..report.selection import Selection
    from ..site.build import build_site
    from ..site.write import check_site_directory

    directory, own = site
    settings = context.settings
    try:
        check_site_directory(directory, "--site", own)  # again: hours of a schedule may have put files there
        build_site(context.storage, Selection(include_simulated=settings.mode == "simulated"), settings.slo,
                   directory, keep=True)  # a schedule builds after every run: the next reads only what is new
    except Exception as exc:  # noqa: BLE001 - the site is a view: it never fails the run that measured
        context.reporter.warn(f"warning: --site {directory} not rebuilt: {exc}")
