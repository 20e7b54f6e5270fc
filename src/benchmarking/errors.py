"""The few exceptions the engine raises; each message tells the user what to do."""


class BenchmarkError(Exception):
    """Base class: a problem the user can fix, reported as one line."""


class ConfigError(BenchmarkError):
    """A flag, environment variable or benchmark.toml value is invalid."""


class NoProvidersError(BenchmarkError):
    """Every selected provider was skipped, so there is nothing to measure."""


class StorageError(BenchmarkError):
    """The database could not be opened, or a write to it failed."""


class StorageUnavailable(StorageError):
    """The database did not answer (down, unreachable, timed out): the write may succeed later."""


class StorageRejected(StorageError):
    """The database refused the row (bad column, wrong type, constraint): retrying will not help."""


class OutboxUnwritable(StorageError):
    """The outbox could not take a write either (disk full, no permission): the write is held in memory."""
