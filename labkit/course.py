"""The course as a whole: its notebooks, how long each takes, how far a learner has got.

`labkit run` times every notebook it executes; a reference run (`labkit run --render`)
writes those wall times to `results/timings.json`, a tracked file (each profile's entry
kept when another profile is timed), and the README's course table and each notebook's
opening line are made from it:

    >>> from labkit import course
    >>> course.header("01_seq2seq_translator")      # doctest: +SKIP
    Measured time (2-core x86_64 CPU, 1 torch thread per notebook, 2 at once): quick 4.8 min

While a notebook runs, that line quotes the last reference run. Once it has finished,
`labkit run` replaces the line in the executed notebook's output with the notebook's own
wall time in this very run (`stamp_header`), so a rendered notebook's header states the
time of the run that rendered it. The line is an output, never source, so the notebook's
jupytext twin does not change.

`progress_report()` lists every exercise of the course as passed, tried or not attempted
(`labkit progress`, and a cell of notebook 00).

The timings file: {"profiles": {profile: {"machine", "threads", "jobs", "wall_s", "date"}},
"notebooks": {stem: {profile: seconds}}}.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def timings_path() -> Path:
    return ROOT / "results" / "timings.json"


def timings() -> dict:
    """The measured times (see the module's docstring); empty when no reference run has
    been timed yet."""
    path = timings_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); restore it with "
                         f"`git checkout {path.name}` or delete it and rerun "
                         f"`labkit run --render`") from None


def record_timings(seconds: dict[str, float], *, profile: str, machine: str, threads: int,
                   jobs: int, wall_s: float) -> Path:
    """Merge one run's wall times (`{stem: seconds}`) into results/timings.json: the
    notebooks run replace their entry for `profile`, everything else is kept. The run
    itself (machine, jobs, total wall time) is recorded unless an earlier run of the same
    profile covered more notebooks: re-rendering one notebook does not stand in for a
    run of the course."""
    t = timings()
    runs = t.setdefault("profiles", {})
    if len(seconds) >= runs.get(profile, {}).get("notebooks", 0):
        runs[profile] = {
            "machine": machine, "threads": threads, "jobs": jobs, "notebooks": len(seconds),
            "wall_s": round(wall_s, 1), "date": _dt.date.today().isoformat()}
    per = t.setdefault("notebooks", {})
    for stem, s in seconds.items():
        per.setdefault(stem, {})[profile] = round(s, 1)
    t["notebooks"] = dict(sorted(per.items()))
    from .ledger import write_atomic

    return write_atomic(timings_path(), json.dumps(t, indent=1) + "\n")


def local_timings_path() -> Path:
    """This machine's own wall times from its last `labkit run` of each profile, under
    runs/ (untracked): {stem: {profile: seconds}}."""
    from .ledger import runs_dir

    return runs_dir() / "timings.json"


def record_local_timings(seconds: dict[str, float], profile: str) -> None:
    """Keep the wall times of the notebooks that finished in this run (see
    `local_timings_path`); a broken or missing file starts afresh."""
    path = local_timings_path()
    try:
        per = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        per = {}
    for stem, s in seconds.items():
        per.setdefault(stem, {})[profile] = round(s, 1)
    from .ledger import write_atomic

    write_atomic(path, json.dumps(per, indent=1, sort_keys=True) + "\n")


def estimates(profile: str) -> dict[str, float]:
    """How long each notebook is expected to take under `profile`, to decide the order
    `labkit run` starts them in: this machine's last run of the profile, else the
    reference run's time for it, else the notebook's time in another profile (a
    notebook never timed in this profile then starts early, as an untimed one would)."""
    try:
        local = json.loads(local_timings_path().read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        local = {}
    out = {}
    for source in (timings().get("notebooks", {}), local):      # later sources win
        for stem, per in source.items():
            if profile in per:
                out[stem] = per[profile]
            elif per and stem not in out:
                out[stem] = max(per.values())
    return out


def where(run: dict) -> str:
    """'2-core x86_64 CPU, 1 torch thread per notebook, 2 at once'."""
    parts = [run.get("machine", "")]
    if run.get("threads"):
        n = run["threads"]
        parts.append(f"{n} torch thread{'s' if n > 1 else ''} per notebook")
    if run.get("jobs"):
        parts.append(f"{run['jobs']} at once" if run["jobs"] > 1 else "one at a time")
    return ", ".join(p for p in parts if p)


def duration(seconds: float) -> str:
    """12 s, 4.8 min, 1.3 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def header_line(stem: str) -> str:
    """The line `header` prints: the notebook's wall time per profile, as measured by the
    last reference run (`labkit run --render`), naming the run it quotes."""
    t = timings()
    per = t.get("notebooks", {}).get(stem, {})
    if not per:
        return ("Measured time: not timed yet on a reference run "
                "(`labkit run --render` records it).")
    runs = t.get("profiles", {})
    ordered = sorted(per, key=lambda p: PROFILE_ORDER.index(p)
                     if p in PROFILE_ORDER else 9)
    machines = {where(runs.get(p, {})) for p in ordered}
    dates = {runs.get(p, {}).get("date") for p in ordered} - {None}
    if len(machines) == 1:
        times = ", ".join(f"{p} {duration(per[p])}" for p in ordered)
        when = f"the reference run of {dates.pop()}, " if len(dates) == 1 else ""
        return f"Measured time ({when}{machines.pop() or 'reference run'}): {times}"
    return "Measured time: " + "; ".join(     # profiles timed on different machines
        f"{p} {duration(per[p])} ({where(runs.get(p, {})) or 'reference run'})"
        for p in ordered)


def header(stem: str) -> str:
    """Print (and return) one line for the top of a notebook: its measured wall time per
    profile (`header_line`). After the run, `labkit run` replaces the printed line with
    this run's own time (`stamp_header`)."""
    line = header_line(stem)
    print(line)
    return line


HEADER_CALL = re.compile(r"\bcourse\.header\(")
HEADER_PREFIX = "Measured time"


def rendered_line(stem: str, profile: str, seconds: float, run: dict) -> str:
    """The header line of a notebook executed by `run` ({"machine", "threads", "jobs",
    "date"}) in `seconds` under `profile`; the times other profiles measured in their
    reference runs follow it."""
    line = (f"{HEADER_PREFIX} (this run, {run.get('date') or _dt.date.today().isoformat()}, "
            f"{where(run)}): {profile} {duration(seconds)}")
    t = timings()
    runs, per = t.get("profiles", {}), t.get("notebooks", {}).get(stem, {})
    others = []
    for p in PROFILE_ORDER:
        if p != profile and p in per:
            there = where(runs.get(p, {}))
            others.append(f"{p} {duration(per[p])}"
                          + (f" ({there or 'another machine'})" if there != where(run) else ""))
    return line + (f"; other profiles, from their reference runs: {'; '.join(others)}"
                   if others else "")


def stamp_header(path: Path, line: str) -> bool:
    """Put `line` in place of the header line that the executed notebook `path` printed
    (the output of the code cell that calls `course.header`), keeping every other output.
    Only outputs change, so the notebook's source and its jupytext twin stay as they are.
    Returns False, changing nothing, when no cell calls `course.header`."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cell = next((c for c in nb["cells"] if c["cell_type"] == "code"
                 and HEADER_CALL.search("".join(c["source"]))), None)
    if cell is None:
        return False
    outputs = cell.setdefault("outputs", [])
    for out in outputs:
        if out.get("output_type") != "stream" or out.get("name") != "stdout":
            continue
        text = out["text"] if isinstance(out["text"], list) else \
            out["text"].splitlines(keepends=True)
        at = next((i for i, x in enumerate(text) if x.startswith(HEADER_PREFIX)), None)
        if at is not None:
            text[at] = line + "\n"
            out["text"] = text
            break
    else:                                     # the kernel printed no header line
        outputs.insert(0, {"name": "stdout", "output_type": "stream", "text": [line + "\n"]})
    from .ledger import write_atomic

    write_atomic(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return True


# --------------------------------------------------------------------------- which reads which
# Notebooks that read other notebooks' results from the ledger, by number: `labkit run`
# starts each only after those have finished (and not at all if one of them failed), so
# a notebook never reads a run that is still being written.
# STARTS_FROM names those that start from models another notebook saved under runs/ (11
# loads the labeller, SFT model and reward model of 10): they cannot run at all without it.
STARTS_FROM: dict[str, tuple[str, ...]] = {
    "11": ("10",),
}
READS: dict[str, tuple[str, ...]] = {
    "09": ("04", "05", "06", "07", "08", "12"),
    **STARTS_FROM,
}


# --------------------------------------------------------------------------- the README table
COURSE_START, COURSE_END = "<!-- course:start -->", "<!-- course:end -->"
PROFILE_ORDER = ["smoke", "quick", "full"]
# What each notebook is about, for the README's course table (the title is used for a
# notebook not listed here).
SYLLABUS = {
    "00": ("setup", "your device, its speed, where data and models come from", ""),
    "01": ("seq2seq translator", "English→French from scratch: attention, beam search, BLEU",
           "scratch"),
    "02": ("word2vec", "skip-gram with negative sampling, judged on real similarity/analogy "
           "sets", "scratch"),
    "03": ("BERT MLM pre-training", "WordPiece, 80/10/10 masking, the stable-training recipe",
           "pre-training"),
    "04": ("head replacement", "a new task head on a pre-trained encoder; probe vs fine-tune "
           "vs scratch", "1B"),
    "05": ("adaptive fine-tuning", "keep pre-training on the target domain, then fine-tune",
           "1B+2B"),
    "06": ("behavioural fine-tuning", "first a related labelled task, then the small target "
           "task", "1B+3A"),
    "07": ("prompt cloze (PET)", "pattern + verbalizer, zero- and few-shot", "1A"),
    "08": ("LoRA, adapters, prompt tuning", "parameter-efficient fine-tuning, from scratch "
           "and with peft", ""),
    "09": ("strategy showdown", "every strategy side by side on one target task", ""),
    "10": ("alignment in miniature", "after pre-training: supervised fine-tuning, a reward "
           "model and best-of-n on a small LLM, judged with paired intervals", "post-training"),
    "11": ("preference optimisation", "DPO and on-policy RL (RLOO, KL penalty) on one "
           "reward-vs-KL frontier with best-of-n", "post-training"),
    "12": ("the data when labels are few", "near duplicates and test leaks, wrong labels "
           "(confident learning), augmentation, self-training and LLM labels", "data"),
}


def _title(py: Path) -> str:
    m = re.search(r"^# # \d\d · (.+)$", py.read_text(encoding="utf-8"), flags=re.M)
    return m.group(1).strip() if m else ""


def table(profiles: tuple[str, ...] | None = None) -> str:
    """The README's course table: one row per notebook (linked), its idea and taxonomy,
    and its measured wall time per profile (`quick`, and `full` once timed); below it,
    where and how each profile was measured."""
    t = timings()
    runs, per = t.get("profiles", {}), t.get("notebooks", {})
    profiles = profiles or ("quick",) + (("full",) if "full" in runs else ())
    head = "| # | notebook | idea | taxonomy | " + " | ".join(
        f"`{p}` wall time" for p in profiles) + " |"
    lines = [head, "|" + "---|" * (4 + len(profiles))]
    for py in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")):
        number = py.stem[:2]
        name, idea, taxonomy = SYLLABUS.get(number, (py.stem[3:].replace("_", " "),
                                                     _title(py), ""))
        times = " | ".join(duration(per[py.stem][p]) if p in per.get(py.stem, {}) else
                           "not timed" for p in profiles)
        lines.append(f"| {number} | [{name}](notebooks/{py.stem}.ipynb) | {idea} | "
                     f"{taxonomy} | {times} |")
    for p in profiles:
        run = runs.get(p)
        if run:
            lines += ["", f"`{p}` times measured by `labkit run --render --profile {p}` on "
                          f"{run['date']}: {where(run)}; "
                          + (f"a run of {run['notebooks']} notebooks took "
                             if run.get("notebooks") else "the whole run took ")
                          + f"{duration(run['wall_s'])} of wall time."]
        else:
            lines += ["", f"`{p}` not timed yet: `labkit run --render --profile {p}` "
                          f"records it."]
    return "\n".join(lines)


def fill_readme(text: str) -> str:
    """`text` (the README) with the course table rewritten between its markers; unchanged
    when the markers are absent."""
    if COURSE_START not in text or COURSE_END not in text:
        return text
    head, rest = text.split(COURSE_START, 1)
    _, tail = rest.split(COURSE_END, 1)
    return f"{head}{COURSE_START}\n{table()}\n{COURSE_END}{tail}"


# --------------------------------------------------------------------------- a learner's progress
def progress_report() -> str:
    """Every exercise of the course and where this learner stands with it: passed, tried
    (wrong so far) or not attempted, from the progress file the checkers keep."""
    from . import checks

    checks.load_all()
    done = checks.progress()
    if not checks.EXERCISES:
        return "The course has no \"your turn\" exercise yet."
    lines, counts = [f"{'exercise':8s}  {'status':13s}  title"], {}
    for ex_id in sorted(checks.EXERCISES):
        row = done.get(ex_id, {})
        status = ("passed" if row.get("passed") else
                  "tried" if row.get("attempts") else "not attempted")
        counts[status] = counts.get(status, 0) + 1
        extra = (f" ({row['failures']} wrong attempt(s))"
                 if status == "tried" and row.get("failures") else "")
        lines.append(f"{ex_id:8s}  {status:13s}  {checks.EXERCISES[ex_id].title}{extra}")
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("passed", "tried", "not attempted"))
    lines.append(f"{len(checks.EXERCISES)} exercises: {summary} "
                 f"(kept in {checks.progress_path()})")
    return "\n".join(lines)
