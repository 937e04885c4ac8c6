"""Is the Hugging Face hub reachable? Asked once, answered in about a second.

The course runs offline first. The hub is used only when a profile asks for it (`full`)
and it answers; HF_HUB_OFFLINE=1 (or HF_DATASETS_OFFLINE=1) means never ask. A failed
lookup through the libraries costs ~50 s of retries, so we test a plain socket first.
"""

from __future__ import annotations

import functools
import os
import socket

HUB_HOST = "huggingface.co"


def offline_forced() -> bool:
    return any(os.environ.get(v, "").lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


@functools.lru_cache(maxsize=1)
def reachable(timeout: float = 1.5) -> bool:
    """True if the hub answers on port 443 within `timeout` seconds and nothing forbids it."""
    if offline_forced():
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def use_hub(profile: str) -> bool:
    """Whether to take hub models and datasets: only in `full`, only when reachable."""
    return profile == "full" and reachable()
