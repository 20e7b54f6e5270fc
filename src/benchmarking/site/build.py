"""Build a site: read the figures, make the files, swap them in."""

from __future__ import annotations

from datetime import datetime
import os

from ..report.selection import Selection
from ..slo import SloConfig
from ..storage import Storage
from ..storage.report_read import collector_held
from .data import site_data
from .pages import site_files
from .write import write_site


def build_site(storage: Storage, selection: Selection, slo: SloConfig, directory: str | os.PathLike[str],
               flag: str = "--site", now: datetime | None = None, keep: bool = False) -> int:
    """Write the site for the selection to `directory` (checked beforehand with write.check_site_directory);
    returns how many results it covers. `keep`: this process builds again (site_data). The garbage collector is held
    off meanwhile: the figures of a long history are lists and dicts without a cycle, which its passes walked again
    and again (half a second at 1,000,000 results)."""
    with collector_held():
        data = site_data(storage, selection, slo, now, keep)
        write_site(directory, site_files(data), flag)
    return sum(window["results"] for name, window in data["windows"].items() if name == "all")
