"""One line naming the machine a benchmark ran on, printed by each script next to its figures."""

from __future__ import annotations

from importlib import metadata
import os
from pathlib import Path
import platform


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line(*packages: str) -> str:
    """e.g. `machine: Linux 6.1 x86_64, AMD EPYC, 2 CPUs, Python 3.11.7; openai 3.57.0`."""
    line = (f"machine: {platform.system()} {platform.release()} {platform.machine()}, {cpu_model()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return line + ("; " + ", ".join(versions) if versions else "")
