"""How many load slots and worker processes this machine can hold, from its memory and its descriptor limit.

A slot is a thread with its own SDK clients and connection: measured at about 1 MB of resident memory each (256
slots in one worker: 320 MB against 71 MB for one slot), and a worker process about 60 MB before its slots (four
workers of 64 slots: 172 MB more than one of 256). Each slot holds an open connection per endpoint, a file
descriptor in its worker, whose soft limit a worker raises to the hard one. A run that asks for more than the
machine holds is refused before anything starts, in one line that says which bound it met and why.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import ConfigError

MEMORY_PER_SLOT_BYTES = 1 * 2**20
MEMORY_PER_WORKER_BYTES = 60 * 2**20
MEMORY_SHARE = 0.8  # of what is available: the system, the main process and the provider's answers need the rest
DESCRIPTORS_KEPT = 64  # per worker, beside its slots' connections: pipes, the SDK's files, a log
CGROUP_MEMORY_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def available_memory_bytes() -> int | None:
    """Memory this process could still use: the kernel's MemAvailable, within a container's own limit."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    for path in CGROUP_MEMORY_LIMITS:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max", or the v1 "no limit" sentinel near 2**63
            found.append(int(text))
    return min(found) if found else None


def descriptor_limit() -> int | None:
    """The most descriptors a worker can open: its hard limit, to which it raises its soft one."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else soft
    return None if limit == resource.RLIM_INFINITY else limit


def raise_descriptor_limit() -> None:
    """In a worker: the soft descriptor limit up to the hard one (1024 by default, often far below the hard one)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def default_workers(slots: int, slots_per_worker: int) -> int:
    """One worker per `slots_per_worker` slots, at most the CPUs, never more than the slots."""
    return max(1, min(os.cpu_count() or 1, math.ceil(slots / slots_per_worker), slots))


def check_local_load(slots: int, workers: int | None, slots_per_worker: int, endpoints: int = 1,
                     flag: str = "--concurrency") -> None:
    """Refuse (ConfigError, one line) a local load run of `slots` at once that this machine cannot hold."""
    if workers is not None and workers > slots:
        raise ConfigError(f"--workers {workers} is more than the {slots} slots of the largest level: a worker "
                          f"without a slot only costs memory (give --workers {slots} or fewer)")
    count = workers or default_workers(slots, slots_per_worker)
    memory = available_memory_bytes()
    if memory is not None:
        room = int(memory * MEMORY_SHARE) - count * MEMORY_PER_WORKER_BYTES
        most = max(0, room // MEMORY_PER_SLOT_BYTES)
        if slots > most:
            raise ConfigError(
                f"{flag} {slots} is more than this machine can hold: {most} slots fit in "
                f"{MEMORY_SHARE:.0%} of its {memory / 2**30:.1f} GiB available memory (about "
                f"{MEMORY_PER_SLOT_BYTES // 2**20} MiB a slot, {MEMORY_PER_WORKER_BYTES // 2**20} MiB a worker "
                f"process); give a lower level, or --engine ray to spread the slots over several machines")
    limit = descriptor_limit()
    if limit is not None:
        per_worker = math.ceil(slots / count)
        most_per_worker = max(0, (limit - DESCRIPTORS_KEPT) // max(1, endpoints))
        if per_worker > most_per_worker:
            raise ConfigError(
                f"{flag} {slots} is more than this machine can hold: {count} worker process"
                f"{'' if count == 1 else 'es'} of {per_worker} slots each, with a connection a slot to each of "
                f"{endpoints} endpoint{'' if endpoints == 1 else 's'}, need more file descriptors than the limit of "
                f"{limit} a process (ulimit -n); give more --workers, a lower level, or raise the limit")
