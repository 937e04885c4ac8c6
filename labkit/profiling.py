"""Where a notebook's time goes: a sampling profile of the whole run, on request.

Set `LABKIT_PYSPY=DIR` and every notebook records one: its `ledger.Run` starts
`py-spy record` on the notebook's own process (20 samples a second, raw collapsed stacks,
without pausing the process) and `run.finish()` stops it. The samples go to `DIR/NN.txt`
(NN: the notebook's number) and what was measured, and how, to `DIR/NN.json`;
`scripts/profile_report.py DIR` turns them into `docs/profiles.md`. A relative DIR is
taken from the course's folder (the one that holds `labkit/` and `runs/`), since the
kernels of `labkit run` work in `notebooks/`.

    LABKIT_PYSPY=runs/profiles labkit run          # every notebook, quick, profiled
    python scripts/profile_report.py runs/profiles # -> docs/profiles.md

Nothing changes when the variable is not set. When it is set and py-spy is missing or
may not attach (macOS without sudo, a container without ptrace), the notebook says so in
one line and runs unprofiled. A notebook that stops part-way leaves only `NN.txt.part`
behind, which the report ignores. (The profiles in the sense of smoke/quick/full are
`labkit.profile`.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ENV = "LABKIT_PYSPY"
RATE = 20                      # samples per second: ~0.2 % of one core, enough for minutes-long runs
ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """One `py-spy record` attached to this process; `stop()` ends it and keeps the file."""

    def __init__(self, proc: subprocess.Popen, part: Path, out: Path, meta: dict):
        self.proc, self.part, self.out, self.meta = proc, part, out, meta
        self.started = time.perf_counter()

    def stop(self) -> Path | None:
        """Stop sampling; the path of the samples, or None when py-spy failed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)      # py-spy writes its file and exits
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = -1
        _allow_tracing(False)
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        if code != 0 or not self.part.exists():
            print(f"[labkit] {ENV}: py-spy stopped with status {code}, no profile written "
                  f"({_last_line(err)})")
            return None
        os.replace(self.part, self.out)
        self.meta.update(wall_s=round(time.perf_counter() - self.started, 1),
                         load_end=_load())
        self.out.with_suffix(".json").write_text(json.dumps(self.meta, indent=1) + "\n",
                                                 encoding="utf-8")
        print(f"[labkit] profile of this run: {self.out}")
        return self.out


def folder() -> Path | None:
    """$LABKIT_PYSPY as a folder (relative paths from the course's folder), or None."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else ROOT / path


def start(notebook: str, profile: str) -> Recorder | None:
    """Start recording this process when $LABKIT_PYSPY is set; else None (a no-op)."""
    out_dir = folder()
    if out_dir is None:
        return None
    exe = shutil.which("py-spy")
    if exe is None:
        print(f"[labkit] {ENV} is set but py-spy is not installed: pip install py-spy "
              "(this run is not profiled)")
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    number = notebook.split("_", 1)[0]
    out = out_dir / f"{number}.txt"
    part = out.with_name(out.name + ".part")
    cmd = [exe, "record", "--pid", str(os.getpid()), "--rate", str(RATE), "--format", "raw",
           "-o", str(part), "--nonblocking"]
    _allow_tracing(True)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    time.sleep(0.5)                                   # a refused attach fails at once
    if proc.poll() is not None:
        _allow_tracing(False)
        err = proc.stderr.read().decode(errors="replace")
        print(f"[labkit] {ENV}: py-spy could not attach to this process "
              f"({_last_line(err)}); this run is not profiled")
        return None
    import torch

    meta = {"notebook": notebook, "profile": profile, "rate": RATE,
            "command": (f"py-spy record --pid <the notebook's process> --rate {RATE} "
                        f"--format raw -o {out.name} --nonblocking"),
            "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "load_start": _load(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return Recorder(proc, part, out, meta)


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _last_line(text: str) -> str:
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    return lines[-1][:200] if lines else "no message"


def _allow_tracing(on: bool) -> None:
    """Where Linux lets a process be traced only by its ancestors (Yama ptrace_scope 1),
    let our own child, py-spy, read this process while it records."""
    if not sys.platform.startswith("linux"):
        return
    try:
        scope = Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip()
    except OSError:
        return
    if scope != "1":
        return
    import ctypes

    PR_SET_PTRACER, ANY = 0x59616D61, ctypes.c_ulong(-1)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PTRACER, ANY if on else 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
