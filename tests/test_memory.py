"""labkit.memory: after `import labkit`, a large CPU tensor reuses freed memory instead of
faulting in fresh pages; LABKIT_MALLOC=system leaves glibc's defaults (and the faults)."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the settings are glibc's")

FAULTS = """
import resource, torch
import labkit
from labkit import memory
x = torch.randn(307, 30_522)          # 37 MB, above glibc's largest default threshold
y = x.exp(); del y                    # the first one may fault in its pages
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    y = x.exp(); del y
print(memory.reuse_freed_memory(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(**env) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1", **env}, check=True)
    took, n = out.stdout.split()
    return took, int(n)


def test_large_tensors_fault_in_fewer_fresh_pages_after_import_labkit():
    took, n = faults()
    took_system, n_system = faults(LABKIT_MALLOC="system")
    pages = 307 * 30_522 * 4 // 4096                  # one tensor's pages, ~9,200
    assert (took, took_system) == ("True", "False")
    # glibc's defaults: every one of the 10 tensors arrives as fresh pages
    assert n_system > 8 * pages, f"only {n_system} page faults for 10 fresh 37 MB tensors"
    # labkit's settings: freed memory is reused (glibc's aligned allocation still needs a
    # fresh block about every other time, so about half)
    assert n < 0.7 * n_system, f"{n} page faults with labkit's settings vs {n_system} without"
