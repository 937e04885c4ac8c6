"""How the process gets memory for tensors on a CPU: let freed memory be reused.

On Linux, glibc's `malloc` serves every block above a threshold (128 KB to start with,
raised as big blocks are freed, up to 32 MB) with a fresh `mmap` from the kernel, and
returns it with `munmap` when freed. A tensor of 37 MB (the masked-LM logits of one
small batch: 307 positions x 30,522 words) lies above that ceiling, so every such tensor
arrives as untouched pages and each page faults on first write. On a 2-core x86_64 CPU,
one thread, `x.exp()` of such a tensor took 37 ms, of which 26 ms were those faults
(`torch.exp(x, out=buffer)` took 11 ms).

`reuse_freed_memory()` tells glibc (`mallopt`) to serve blocks up to 1 GB from its heap and
to keep what is freed there for the next tensor. Not every block can be reused: torch asks
for memory aligned to 64 bytes, and a freed block is sometimes a few bytes short of that,
so about every other large tensor still gets fresh pages (`tests/test_memory.py` counts
them: about half as many faults). The numbers a model computes do not
change (torch aligns every tensor to 64 bytes either way); only the time does. Measured on
that CPU, one thread, the same steps with and without it
(`python benchmarks/bench_memory.py` repeats the first):

    tiny-mlm masked-LM step, 32 blocks of 64 tokens   0.458 -> 0.266 s   (1.7x)
    MiniLM classifier step, batch 8                   0.335 -> 0.267 s   (1.25x)
    MiniLM scoring, 32 rows                           0.276 -> 0.212 s   (1.3x)
    SmolLM2 sampling, 64 prompts x 8 tokens           21.0 -> 19.1 s     (1.1x)

A whole notebook gains less, since most of its time goes to matrix products that were
never slowed by faults: notebook 08 (MiniLM fine-tuning) ran in 366.5 s with it and
385.5 s without (5%), notebook 03 in 204.6 s and 203.4 s (no difference); both measured
as two runs at the same moment, one with LABKIT_MALLOC=system.

The price: memory freed by one tensor stays with the process for the next one instead of
going back to the system, so the process's resident size stays near its peak.
`import labkit` calls it once. Set LABKIT_MALLOC=system before starting Python to leave
glibc's defaults alone (e.g. to measure the difference). Other C libraries (macOS,
musl) are left as they are: there it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3    # glibc's malloc.h
KEEP = 1 << 30          # blocks up to 1 GB come from the heap; freed memory up to 1 GB stays
PAD = 64 << 20          # the heap grows 64 MB at a time

_done: bool | None = None


def reuse_freed_memory() -> bool:
    """Ask glibc to serve and keep blocks up to 1 GB on its heap (see the module's text).
    True if the settings took effect, False where they do not apply (not glibc, or
    LABKIT_MALLOC=system). Calling it again does nothing more."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("LABKIT_MALLOC", "").lower() == "system":
        return _done
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return _done
    _done = all(libc.mallopt(option, value) == 1 for option, value in
                ((M_MMAP_THRESHOLD, KEEP), (M_TRIM_THRESHOLD, KEEP), (M_TOP_PAD, PAD)))
    return _done
