"""The name of a provider and model in the site's files and addresses."""

from __future__ import annotations

from functools import lru_cache
import hashlib


@lru_cache(maxsize=4096)
def model_key(provider: str, model: str) -> str:
    """A name for a provider and model that is safe in a file name and a URL whatever the names hold."""
    return hashlib.sha256(f"{provider}\x00{model}".encode()).hexdigest()[:16]
