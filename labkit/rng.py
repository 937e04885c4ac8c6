"""Random streams: `fit(seed=...)` alone makes a run repeatable, and no function here
reseeds the caller's generators.

`own_random_streams(seed)` runs a block with torch's (every device), Python's and NumPy's
generators seeded from `seed`, and gives the caller's generator states back afterwards.
`state()` / `set_state()` are what a checkpoint stores, so that a resumed run draws the
random numbers (dropout, a masking collator) the uninterrupted run would have drawn.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch


def state() -> dict:
    """Every generator's state, as tensors and plain values (safe for weights_only)."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                      *np_state[2:]),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_state(saved: dict) -> None:
    torch.set_rng_state(saved["torch"])
    random.setstate(saved["python"])
    name, keys, *rest = saved["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])


@contextlib.contextmanager
def own_random_streams(seed: int):
    """Run the body with torch's (every device), Python's and NumPy's generators seeded
    from `seed`; give the caller's generator states back afterwards."""
    saved = state()
    try:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        yield
    finally:
        set_state(saved)
