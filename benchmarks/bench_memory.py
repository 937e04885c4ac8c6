"""What `labkit.memory.reuse_freed_memory` saves: one `exp` of a (307, 30522) float tensor
(the masked-LM logits of one small batch), into a new tensor each time and into one
reused buffer, with labkit's malloc settings and with glibc's defaults (a second Python
started with LABKIT_MALLOC=system), one thread.

    python benchmarks/bench_memory.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import torch

import labkit  # noqa: F401  (its import applies the settings unless LABKIT_MALLOC=system)
from labkit import memory


def measure(rows: int = 307, width: int = 30_522, repeats: int = 20) -> dict:
    x = torch.randn(rows, width)
    out = torch.empty_like(x)
    times = {}
    for name, step in (("new tensor", lambda: x.exp()),
                       ("one buffer", lambda: torch.exp(x, out=out))):
        step()
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        times[name] = (time.perf_counter() - start) / repeats * 1e3
    return times


if __name__ == "__main__":
    torch.set_num_threads(1)
    system = os.environ.get("LABKIT_MALLOC", "").lower() == "system"
    label = "glibc defaults" if system else f"labkit settings ({memory.reuse_freed_memory()})"
    print(f"{label:32s}" + ", ".join(f"{k} {v:.1f} ms" for k, v in measure().items()))
    if not system:
        subprocess.run([sys.executable, __file__], env={**os.environ, "LABKIT_MALLOC": "system"},
                       check=True)
