"""The results ledger: every notebook's headline numbers, one JSON line each.

    >>> from labkit.ledger import Run
    >>> run = Run("04_head_replacement", profile="quick", seed=0)
    >>> run.log("acc_full_ft@128", 0.71)

A row records the notebook, metric, value, profile, seed, device, wall time since the
Run began, and library versions; the latest row for each (notebook, metric, profile,
seed, test set) wins.

Two ledgers, one format:

* the **reference ledger**, `results/reference.jsonl`, tracked in git: the runs that
  rendered the committed notebooks. `labkit run --render` writes there (it sets
  LABKIT_LEDGER to that file for the notebooks it runs); the README's results and
  notebook 09's reference column are read from it. Rows without a `test_set` field
  predate the course's one evaluation protocol (`labkit.protocol`) and are never compared
  with rows that have one.
* **your ledger**, `runs/ledger.jsonl` (or `$LABKIT_RUNS/ledger.jsonl`), untracked: every
  other run, from `labkit run` or a notebook opened in JupyterLab, so your runs never
  dirty the working tree. Notebook 09 shows your numbers beside the reference ones.

LABKIT_LEDGER, when set, names the file rows are written to (and `read()` reads).

**Only completed runs count.** A notebook ends with `run.finish()`, which appends a
closing record for its run; a run killed part-way (Ctrl-C, out of memory, a dead kernel)
never writes one. `read()` returns the rows of completed runs only and says which runs it
left out, so every reader (notebook 09, `labkit readme`, `labkit ledger`, `summary`) sees
whole runs; the rows of a run still open in the reading process itself (a notebook reading
back its own numbers) are kept. Rows written before closing records existed carry no
`ledger_format` field: there is nothing to tell a whole run of that time from a partial
one, so they are read as complete (every such run in the reference ledger has its
notebook's full set of rows, and the next `labkit run --render` of a notebook supersedes
them through `last_runs`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
from collections import defaultdict
from pathlib import Path

from . import profiling
from .metrics import mean_std

FORMAT = 2                # rows with this field belong to runs that close with `finish()`
_OPEN: list = []          # the Runs started in this process (read while not finished)


def runs_dir() -> Path:
    env = os.environ.get("LABKIT_RUNS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "runs"


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file beside it and a rename: a run
    stopped midway leaves the old file or the new one, never half of one. The temporary
    name starts with a dot, so that Jupyter's file browser does not list it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def ledger_path() -> Path:
    """The ledger this process writes to: $LABKIT_LEDGER, else your ledger under runs/."""
    env = os.environ.get("LABKIT_LEDGER")
    return Path(env) if env else runs_dir() / "ledger.jsonl"


def reference_path() -> Path:
    """The tracked reference ledger ($LABKIT_REFERENCE, else results/reference.jsonl)."""
    env = os.environ.get("LABKIT_REFERENCE")
    return (Path(env) if env else
            Path(__file__).resolve().parent.parent / "results" / "reference.jsonl")


def writes_reference() -> bool:
    """Whether this process logs to the reference ledger (as `labkit run --render` does)."""
    return ledger_path().resolve() == reference_path().resolve()


def _versions() -> dict:
    import platform

    import datasets
    import torch
    import transformers

    from . import __version__
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "datasets": datasets.__version__,
            "labkit": __version__}


class Run:
    """One notebook run: remembers who, where and since when; `log` appends rows. With
    $LABKIT_PYSPY set, the run is also profiled until `finish()` (`labkit.profiling`)."""

    def __init__(self, notebook: str, *, profile: str, seed: int = 0, device=None):
        from . import device as device_lib
        from .profile import check

        self.notebook, self.profile, self.seed = notebook, check(profile), seed
        info = device_lib.info(device)
        self.device = f"{info['device']} ({info['device_name']})"
        self.versions = _versions()
        self.started = time.perf_counter()
        self.id = f"{notebook}-{_dt.datetime.now(_dt.timezone.utc):%Y%m%dT%H%M%S}-{os.getpid()}"
        self.rows, self.finished = 0, False
        _OPEN.append(self)
        self.recorder = profiling.start(notebook, self.profile)   # $LABKIT_PYSPY only

    def log(self, metric: str, value: float, *, seed: int | None = None, **extra) -> None:
        """Append one row; `value` must be a finite number. Under data-parallel training
        (torchrun) rank 0 alone writes, so each number is recorded once."""
        from . import distributed

        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{metric} = {value}: the ledger takes finite numbers only")
        if not distributed.is_main():
            return
        row = {"notebook": self.notebook, "metric": metric, "value": value,
               "profile": self.profile, "seed": self.seed if seed is None else seed,
               "device": self.device, "wall_s": round(time.perf_counter() - self.started, 2),
               "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               "versions": self.versions, "run": self.id, "ledger_format": FORMAT, **extra}
        _append(row)
        self.rows += 1

    def finish(self) -> None:
        """Close the run: the last line of a notebook. Until a run is closed its rows are
        not read as results (by any process but this one), so a notebook killed part-way
        leaves no half-run behind in the tables."""
        from . import distributed

        if self.recorder is not None:
            self.recorder.stop()
            self.recorder = None
        if self.finished or not distributed.is_main():
            return
        _append({"event": "finished", "run": self.id, "notebook": self.notebook,
                 "profile": self.profile, "seed": self.seed, "rows": self.rows,
                 "wall_s": round(time.perf_counter() - self.started, 2),
                 "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                 "ledger_format": FORMAT})
        self.finished = True
        print(f"[labkit] run {self.id} finished: {self.rows} row(s) in {ledger_path()}")


def _append(record: dict) -> None:
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:   # one write per line: safe in parallel
        f.write(json.dumps(record) + "\n")


class Rows(list):
    """The rows `read()` returns, with `skipped`: one entry per run left out because it
    never finished ({"run", "notebook", "rows", "last"})."""

    def __init__(self, rows=(), skipped=()):
        super().__init__(rows)
        self.skipped = list(skipped)

    def skipped_text(self) -> str:
        """'' when nothing was left out, else one sentence naming the runs."""
        if not self.skipped:
            return ""
        n = sum(s["rows"] for s in self.skipped)
        runs = "; ".join(f"{s['notebook']} (run {s['run']}, {s['rows']} row(s), the last "
                         f"at {s['last']})" for s in self.skipped)
        return (f"left out {n} row(s) of {len(self.skipped)} run(s) that did not finish: "
                f"{runs}. Only completed runs count; run those notebooks to the end")


def read(path: Path | str | None = None, *, completed: bool = True,
         quiet: bool = False) -> Rows:
    """The rows of the ledger's completed runs (an empty list when there is none yet).

    A run counts once its closing record is there (`Run.finish`), or while it is open in
    this process; rows from before closing records existed count (see the module's
    docstring). The runs left out are in `.skipped`, and a line says so unless `quiet`.
    `completed=False`: every row, finished or not (closing records left out)."""
    path = Path(path) if path else ledger_path()
    out = Rows()
    if not path.exists():
        return out
    rows, closed = [], {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n} is not a JSON line ({e})") from None
            if record.get("event") == "finished":
                closed[record["run"]] = record
            else:
                rows.append(record)
    mine = {run.id for run in _OPEN if not run.finished}
    open_runs = defaultdict(list)
    for r in rows:
        if (not completed or "ledger_format" not in r or r.get("run") in closed
                or r.get("run") in mine):
            out.append(r)
        else:
            open_runs[r.get("run")].append(r)
    out.skipped = [{"run": run, "notebook": rs[0]["notebook"], "rows": len(rs),
                    "last": rs[-1].get("time", "?")} for run, rs in open_runs.items()]
    if out.skipped and not quiet:
        print(f"[labkit] ledger {path}: {out.skipped_text()}")
    return out


def last_runs(rows: list[dict]) -> list[dict]:
    """Only the rows of the most recent run of each (notebook, profile, seed): what a
    fresh run of every notebook would leave (older, superseded rows dropped)."""
    newest = {}
    for r in rows:
        newest[(r["notebook"], r["profile"], r["seed"])] = r.get("run")
    return [r for r in rows if r.get("run") == newest[(r["notebook"], r["profile"], r["seed"])]]


def latest(rows: list[dict], profile: str | None = None) -> list[dict]:
    """The last row for each (notebook, metric, profile, seed, test set)."""
    keep = {}
    for r in rows:
        if profile is None or r["profile"] == profile:
            keep[(r["notebook"], r["metric"], r["profile"], r["seed"], r.get("test_set"))] = r
    return list(keep.values())


def summary(rows: list[dict] | None = None, profile: str | None = None) -> list[dict]:
    """Mean and spread over seeds for each (notebook, metric, profile, test set): numbers
    scored on different test rows are never averaged together."""
    groups = defaultdict(list)
    for r in latest(read() if rows is None else rows, profile):
        groups[(r["notebook"], r["metric"], r["profile"], r.get("test_set") or "")].append(r)
    out = []
    for (nb, metric, prof, test_set), rs in sorted(groups.items()):
        mean, std = mean_std([r["value"] for r in rs])
        out.append({"notebook": nb, "metric": metric, "profile": prof, "mean": mean,
                    "std": std, "seeds": sorted(r["seed"] for r in rs),
                    "test_set": test_set or None,
                    "device": rs[-1]["device"], "wall_s": max(r["wall_s"] for r in rs)})
    return out


def table(rows: list[dict] | None = None, profile: str | None = None,
          markdown: bool = False) -> str:
    """The summary as a text or Markdown table."""
    s = summary(rows, profile)
    if not s:
        return "(the ledger is empty: run a notebook, e.g. `labkit run --profile smoke`)"
    head = ["notebook", "metric", "profile", "value", "seeds", "device"]
    body = [[r["notebook"], r["metric"] + (f" [{r['test_set']}]" if r.get("test_set") else ""),
             r["profile"],
             f"{r['mean']:.4g}" + (f" ± {r['std']:.2g}" if len(r["seeds"]) > 1 else ""),
             ",".join(map(str, r["seeds"])), r["device"]] for r in s]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*row) for row in body])
