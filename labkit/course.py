"""The course as a whole: its notebooks and how long each takes.

`labkit run` times every notebook it executes; a reference run (`labkit run --render`)
writes those wall times to `results/timings.json`, a tracked file, and the README's
course table and each notebook's opening line are made from it:

    >>> from labkit import course
    >>> course.header("01_seq2seq_translator")      # doctest: +SKIP
    Measured time (reference run, 2-core x86 CPU, 1 torch thread): smoke 12 s, quick 4.8 min
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def timings_path() -> Path:
    return ROOT / "results" / "timings.json"


def timings() -> dict:
    """{"machine": ..., "threads": ..., "notebooks": {stem: {profile: seconds}}}; empty
    when no reference run has been timed yet."""
    path = timings_path()
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def duration(seconds: float) -> str:
    """12 s, 4.8 min, 1.3 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def header(stem: str) -> str:
    """One line for the top of a notebook: its measured wall time per profile."""
    t = timings()
    per = t.get("notebooks", {}).get(stem, {})
    if not per:
        line = ("Measured time: not timed yet on a reference run "
                "(`labkit run --render` records it).")
    else:
        where = ", ".join(x for x in (t.get("machine"), t.get("threads") and
                                      f"{t['threads']} torch thread(s) per notebook") if x)
        times = ", ".join(f"{p} {duration(s)}" for p, s in sorted(
            per.items(), key=lambda kv: ["smoke", "quick", "full"].index(kv[0])
            if kv[0] in ("smoke", "quick", "full") else 9))
        line = f"Measured time ({where}): {times}"
    print(line)
    return line
