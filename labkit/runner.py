"""Running notebooks: several at once, each with its share of the machine, timed.

`labkit run` executes notebooks with papermill, each in its own process, so that each
kernel gets its own environment:

* on a CPU, as many notebooks at once as there are cores, each kernel with one torch
  thread (small recurrent and embedding ops gain nothing from a second thread and lose
  a lot when the other core is busy); one notebook alone gets every core;
* with CUDA GPUs, one notebook per GPU (CUDA_VISIBLE_DEVICES, round-robin);
* the longest notebooks start first (from this machine's last run of the profile, else
  the reference run's timings), counting for each the notebooks that wait for it; then
  two notebooks swap places wherever the run, played out on those timings
  (`makespan`), ends sooner (`best_order`). On the quick course's timings of
  2026-12-07 longest-first ends at 22.4 minutes (one core idle for the last 1.4) and the
  swapped order at 21.7, half of the notebooks' summed time;
* a notebook that reads other notebooks' results (`labkit.course.READS`: 09 reads 04-08
  and 12) starts only after those have finished, and not at all if one of them failed.

Ctrl-C (SIGINT), SIGTERM or SIGHUP stops every notebook it started together with its
kernel and whatever the kernel started (no orphaned kernels), and `run_many` raises
`Interrupted`, which says which notebooks had finished. A worker whose `labkit run` dies
without a word (SIGKILL) stops its own kernel within a second.

While a notebook runs, a line says which section it has reached (the latest Markdown
heading above the executing cell) and when; at the end, `labkit run` prints each
notebook's wall time and CPU time, and the totals.

    >>> from labkit import runner
    >>> plan = runner.plan(n_notebooks=10)              # doctest: +SKIP
    >>> runner.run_many(notebooks, outdir, plan)          # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


# --------------------------------------------------------------------------- which notebooks
def find_notebooks(ids: list[str], folder: Path | None = None) -> list[Path]:
    """Notebooks whose number or name matches one of `ids` (all when `ids` is empty)."""
    found = sorted((folder or NOTEBOOKS).glob("[0-9][0-9]_*.ipynb"))
    if not ids:
        return found
    chosen = []
    for i in ids:
        key = i.zfill(2) if i.isdigit() else i
        match = [nb for nb in found if nb.stem.startswith(key) or nb.stem == i]
        if not match:
            known = ", ".join(nb.stem for nb in found)
            raise SystemExit(f"labkit run: no notebook matches {i!r}; known: {known}")
        chosen += [m for m in match if m not in chosen]
    return chosen


def needs(notebooks: list[Path], reads: dict[str, tuple[str, ...]] | None = None
          ) -> dict[str, list[str]]:
    """For each notebook, the notebooks of the same run whose results it reads (from
    `labkit.course.READS`, keyed by number), which must finish before it starts."""
    if reads is None:
        from .course import READS as reads
    out = {}
    for nb in notebooks:
        wanted = reads.get(nb.stem[:2], ())
        out[nb.stem] = [o.stem for o in notebooks if o.stem[:2] in wanted and o is not nb]
    return out


def longest_first(notebooks: list[Path], seconds: dict[str, float],
                  after: dict[str, list[str]] | None = None) -> list[Path]:
    """The order to start notebooks in: by decreasing length of the longest chain of work
    that starts with each (its own measured time plus that of the longest chain of the
    notebooks that wait for it, from `needs`), so a notebook that others read starts
    before one of the same length that nobody waits for, and the reader (09) is not left
    to run alone at the end. Untimed notebooks come first (they may be long); ties keep
    the given order."""
    after = after or {}
    readers = {nb.stem: [s for s, wanted in after.items() if nb.stem in wanted]
               for nb in notebooks}
    chain: dict[str, float] = {}

    def length(stem: str, seen: frozenset = frozenset()) -> float:
        if stem not in chain:
            below = [length(r, seen | {stem}) for r in readers.get(stem, []) if r not in seen]
            chain[stem] = seconds.get(stem, float("inf")) + max(below, default=0.0)
        return chain[stem]

    return sorted(notebooks, key=lambda nb: -length(nb.stem))


def makespan(order: list[Path], seconds: dict[str, float], after: dict[str, list[str]],
             jobs: int) -> float:
    """How long `run_many` would take to run `order` `jobs` at a time if each notebook took
    its `seconds`: the same rule (whenever a slot is free, start the first notebook of the
    order whose readings have finished), played out on the clock."""
    clock, running, done = 0.0, [], set()
    pending = list(order)
    while pending or running:
        for nb in list(pending):
            if len(running) == jobs:
                break
            if all(d in done for d in after.get(nb.stem, [])):
                pending.remove(nb)
                running.append((clock + seconds[nb.stem], nb.stem))
        if not running:               # what is left waits for something never run
            return math.inf
        running.sort()
        clock, stem = running.pop(0)
        done.add(stem)
    return clock


def best_order(notebooks: list[Path], seconds: dict[str, float],
               after: dict[str, list[str]] | None = None, jobs: int = 1) -> list[Path]:
    """`longest_first`, then improved by swapping two notebooks wherever that shortens the
    `makespan`. Longest-first leaves a slot idle at the end whenever the last notebook to
    start is long (with two slots, one waits for it); a swap with a shorter one can close
    that gap. With an untimed notebook there is no clock to play: `longest_first` as is."""
    after = after or {}
    order = longest_first(notebooks, seconds, after)
    if jobs < 2 or any(nb.stem not in seconds for nb in order):
        return order
    best = makespan(order, seconds, after, jobs)
    improved = True
    while improved:
        improved = False
        for i in range(len(order)):
            for j in range(i + 1, len(order)):
                trial = order[:]
                trial[i], trial[j] = trial[j], trial[i]
                t = makespan(trial, seconds, after, jobs)
                if t < best - 1e-9:
                    order, best, improved = trial, t, True
    return order


# --------------------------------------------------------------------------- the machine
def cores() -> int:
    """CPU cores this process may use (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """CUDA device ids a kernel may be given, honouring CUDA_VISIBLE_DEVICES."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:n] if listed else [str(i) for i in range(n)]


def machine() -> str:
    """One line for the timings: '2-core x86_64 CPU' or '... + 4x NVIDIA H100'."""
    import platform

    import torch

    text = f"{cores()}-core {platform.machine()} CPU"
    gpus = visible_gpus()
    if gpus:
        text += f" + {len(gpus)}x {torch.cuda.get_device_name(0)}"
    return text


@dataclass
class Plan:
    jobs: int                    # notebooks at once
    threads: int                 # torch threads per kernel
    gpus: list[str] = field(default_factory=list)   # CUDA ids, given round-robin

    def env(self, slot: int) -> dict[str, str]:
        """The environment of the kernel that runs in worker `slot`."""
        env = {v: str(self.threads) for v in THREAD_VARS}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        if self.jobs > 1:
            env["TOKENIZERS_PARALLELISM"] = "false"
        return env

    def describe(self) -> str:
        where = f", one GPU each ({len(self.gpus)} GPUs)" if self.gpus else ""
        return (f"{self.jobs} notebook(s) at once, {self.threads} torch thread(s) "
                f"each{where}")


def plan(n_notebooks: int, jobs: int | None = None, *, n_cores: int | None = None,
         gpus: list[str] | None = None) -> Plan:
    """How to share the machine: `jobs` notebooks at once (auto: one per GPU, else one
    per core, never more than there are notebooks nor, on a CPU, than cores), the cores
    split evenly between them."""
    n_cores = n_cores or cores()
    gpus = visible_gpus() if gpus is None else gpus
    if jobs is None:
        jobs = len(gpus) if gpus else n_cores
    if jobs < 1:
        raise ValueError(f"labkit run: -j must be at least 1, got {jobs}")
    jobs = max(1, min(jobs, n_notebooks))
    if not gpus:   # on a CPU, separate runs side by side pay, data parallelism and more
        jobs = min(jobs, n_cores)   # processes than cores do not (docs/parallel-training.md)
    return Plan(jobs=jobs, threads=max(1, n_cores // jobs), gpus=list(gpus))


# --------------------------------------------------------------------------- one notebook
def sections(nb: dict) -> list[str]:
    """For each cell, the latest Markdown heading at or above it ('' before the first)."""
    current, out = "", []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            src = "".join(cell["source"])
            heads = re.findall(r"^#{1,6}\s+(.+?)\s*$", src, flags=re.M)
            if heads:
                current = heads[-1]
        out.append(current)
    return out


def strip_run_metadata(path: Path) -> None:
    """Remove papermill's and widgets' metadata so a rendered notebook diffs cleanly."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["metadata"].pop("papermill", None)
    nb["metadata"].pop("widgets", None)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# The kernel's own log (ipykernel's IPKernelApp) warns "Kernel is running over TCP without
# encryption" at every start; the kernel and papermill talk over localhost only. Raising
# that one logger to ERROR silences the line; the notebook's own output is untouched.
KERNEL_QUIET = ["--IPKernelApp.log_level=ERROR"]


def run_notebook(nb: Path, out: Path, on_section=None, cwd: Path | None = None) -> None:
    """Execute one notebook with papermill in a kernel that inherits this process's
    environment. The profile and seed reach its parameters cell through LABKIT_PROFILE
    and LABKIT_SEED, so the rendered notebook keeps the same cells as its source (no
    injected parameter cell). `on_section(title)` is called when execution enters a new
    section."""
    import papermill

    heads = sections(json.loads(Path(nb).read_text(encoding="utf-8")))
    seen = [None]

    def on_cell_execute(cell, cell_index, **_):
        title = heads[cell_index] if cell_index < len(heads) else ""
        if on_section and title and title != seen[0]:
            seen[0] = title
            on_section(title)

    papermill.execute_notebook(str(nb), str(out), cwd=str(cwd or NOTEBOOKS),
                               kernel_name="python3", progress_bar=False, log_output=False,
                               request_save_on_cell_execute=False,
                               on_cell_execute=on_cell_execute, extra_arguments=KERNEL_QUIET)


# --------------------------------------------------------------------------- many notebooks
@dataclass
class Result:
    stem: str
    seconds: float
    ok: bool
    out: Path
    error: str = ""
    state: str = ""          # "ok", "FAILED", "stopped" (interrupted), "not started"
    cpu: float = 0.0         # CPU seconds of the worker and its kernel (0: not measured)

    def __post_init__(self):
        self.state = self.state or ("ok" if self.ok else "FAILED")


class Interrupted(Exception):
    """`labkit run` was stopped by a signal; `results` holds every notebook's outcome
    (ok, FAILED, stopped or not started), in the order given."""

    def __init__(self, signum: int, results: list[Result]):
        self.signum, self.results = signum, results
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, n))


def stop_tree(proc: subprocess.Popen, timeout: float = 5.0) -> int:
    """Stop `proc` and every process below it (the notebook's kernel, anything the kernel
    started): SIGTERM, then SIGKILL for whatever is still there after `timeout` seconds.
    The tree is listed first, since a kernel whose parent is gone can no longer be found.
    Returns how many processes were stopped."""
    import psutil

    try:
        below = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        below = []
    for p in below:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    if proc.poll() is None:
        proc.terminate()
    _, alive = psutil.wait_procs(below, timeout=timeout)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=timeout)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
    return 1 + len(below)


def _stop_children_when_orphaned(parent: int) -> None:
    """In a worker: once `labkit run` (our parent) is gone, stop our kernel and exit."""
    import psutil

    def watch():
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                below = psutil.Process().children(recursive=True)
                for p in below:
                    p.terminate()
                _, alive = psutil.wait_procs(below, timeout=5)
                for p in alive:
                    p.kill()
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _child(nb: str, out: str, cwd: str) -> int:
    """Body of the worker process: run one notebook, report sections and errors as
    tagged lines on stdout (read by `run_one`)."""
    def say(tag, text):
        print(f"@{tag} {text}", flush=True)

    _stop_children_when_orphaned(os.getppid())
    try:
        run_notebook(Path(nb), Path(out), on_section=lambda t: say("section", t),
                     cwd=Path(cwd))
    except Exception as e:
        lines = [x for x in str(e).strip().splitlines() if x.strip()]
        say("error", f"{type(e).__name__}: {(lines[-1] if lines else '')[:300]}")
        return 1
    finally:
        say("cpu", f"{cpu_seconds():.1f}")
    return 0


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of the children it has waited for
    (a notebook's kernel, once shut down). Unlike wall time it hardly depends on what
    else the machine is doing, so it is what a time budget can be checked against.
    0.0 where the OS does not count children's time (Windows): not measured."""
    import psutil

    t = psutil.Process().cpu_times()
    if not hasattr(t, "children_user"):
        return 0.0
    return t.user + t.system + t.children_user + t.children_system


class _Workers:
    """The worker processes running now; once `stop` is called no new one may start."""

    def __init__(self):
        self.lock, self.procs, self.stopping = threading.Lock(), {}, False

    def add(self, stem: str, proc: subprocess.Popen) -> bool:
        with self.lock:
            if not self.stopping:
                self.procs[stem] = proc
                return True
        stop_tree(proc)
        return False

    def done(self, stem: str) -> None:
        with self.lock:
            self.procs.pop(stem, None)

    def stop(self) -> list[str]:
        """Stop every worker and its kernel; the stems that were running."""
        with self.lock:
            self.stopping = True
            running = dict(self.procs)
        for proc in running.values():
            stop_tree(proc)
        return sorted(running)


def run_one(nb: Path, out: Path, env: dict[str, str], say=print,
            cwd: Path | None = None, workers: _Workers | None = None) -> Result:
    """Run `nb` in a fresh process with `env` added to this one's environment, printing
    a line per section with the elapsed time. The worker's log goes beside `out`. The
    worker has a session of its own, so a Ctrl-C at the terminal reaches `labkit run`
    only, which then stops the workers and their kernels itself (`stop_tree`)."""
    t0 = time.perf_counter()
    log = out.with_suffix(".log")
    cmd = [sys.executable, "-m", "labkit.runner", str(nb), str(out), str(cwd or NOTEBOOKS)]
    error, cpu = "", 0.0
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**os.environ, **env}, cwd=ROOT,
                                start_new_session=True)
        if workers is not None and not workers.add(nb.stem, proc):
            return Result(nb.stem, time.perf_counter() - t0, False, out, "stopped",
                          state="stopped")
        try:
            for line in proc.stdout:
                tag, _, text = line.rstrip("\n").partition(" ")
                if tag == "@section":
                    say(f"  {clock(time.perf_counter() - t0):>7s}  {nb.stem}: {text}")
                elif tag == "@error":
                    error = text
                elif tag == "@cpu":
                    cpu = float(text)
            code = proc.wait()
        finally:
            if workers is not None:
                workers.done(nb.stem)
    seconds = time.perf_counter() - t0
    if workers is not None and workers.stopping:
        return Result(nb.stem, seconds, False, out, "stopped by a signal", state="stopped")
    if code and not error:
        error = f"the worker exited with status {code}; see {log}"
    return Result(nb.stem, seconds, code == 0, out, error, cpu=cpu)


def run_many(notebooks: list[Path], outdir: Path, plan: Plan, say=print,
             cwd: Path | None = None, reads: dict[str, tuple[str, ...]] | None = None
             ) -> list[Result]:
    """Run `notebooks` (in the order given, as far as `needs` allows) `plan.jobs` at a
    time; a failing notebook is reported and the others go on, except those that read its
    results, which are not started. Returns the results in the order given. A stop signal
    stops every worker and kernel and raises `Interrupted`."""
    after = needs(notebooks, reads)
    for stem, wanted in after.items():
        if stem in _reachable(after, wanted):
            raise ValueError(f"labkit run: {stem} waits for itself through {wanted}; fix "
                             "labkit.course.READS")
    workers = _Workers()
    lock = threading.Lock()

    def locked_say(text):
        with lock:
            say(text)

    def work(nb: Path, slot: int) -> Result:
        locked_say(f"  {'start':>7s}  {nb.stem}" + (
            f" (GPU {plan.env(slot)['CUDA_VISIBLE_DEVICES']})" if plan.gpus else ""))
        r = run_one(nb, outdir / nb.name, plan.env(slot), locked_say, cwd, workers)
        if r.ok:
            strip_run_metadata(r.out)
            locked_say(f"  {clock(r.seconds):>7s}  {nb.stem}: done")
        elif r.state == "FAILED":
            locked_say(f"  {clock(r.seconds):>7s}  {nb.stem}: FAILED\n"
                       f"           {r.error}\n           the executed notebook is in {r.out}")
        return r

    results: dict[str, Result] = {}
    pending, running, free = list(notebooks), {}, list(range(plan.jobs))
    caught = []

    def on_signal(signum, frame):
        caught.append(signum)
        raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS} if in_main else {}
    pool = ThreadPoolExecutor(max_workers=plan.jobs)
    try:
        while pending or running:
            for nb in list(pending):
                if not free:
                    break
                if any(d not in results for d in after[nb.stem]):
                    continue                      # waits for a notebook it reads
                pending.remove(nb)
                failed = [d for d in after[nb.stem] if not results[d].ok]
                if failed:
                    results[nb.stem] = Result(nb.stem, 0.0, False, outdir / nb.name,
                                              f"not started: it reads {', '.join(failed)}, "
                                              "which did not finish", state="not started")
                    locked_say(f"  {'-':>7s}  {nb.stem}: not started ({', '.join(failed)} "
                               "did not finish, and it reads their results)")
                    continue
                slot = free.pop(0)
                running[pool.submit(work, nb, slot)] = (nb, slot)
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                nb, slot = running.pop(f)
                results[nb.stem] = f.result()
                free.append(slot)
    except KeyboardInterrupt:
        signum = caught[0] if caught else signal.SIGINT
        for s, h in old.items():             # a second Ctrl-C must not stop the clean-up
            signal.signal(s, signal.SIG_IGN)
        workers.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        for f, (nb, _) in running.items():
            results[nb.stem] = (f.result() if f.done() and not f.cancelled() else
                                Result(nb.stem, 0.0, False, outdir / nb.name, "stopped",
                                       state="stopped"))
        for nb in notebooks:
            results.setdefault(nb.stem, Result(nb.stem, 0.0, False, outdir / nb.name,
                                               "not started", state="not started"))
        raise Interrupted(signum, [results[nb.stem] for nb in notebooks]) from None
    finally:
        pool.shutdown(wait=True)
        for s, h in old.items():
            signal.signal(s, h)
    return [results[nb.stem] for nb in notebooks]


def _reachable(after: dict[str, list[str]], start: list[str]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        stem = todo.pop()
        if stem not in seen:
            seen.add(stem)
            todo += after.get(stem, [])
    return seen


def clock(seconds: float) -> str:
    """Elapsed time as m:ss (h:mm:ss past an hour)."""
    s = int(round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def report(results: list[Result], wall: float) -> str:
    """The table printed at the end: each notebook's wall time and CPU time, then the
    total (CPU time barely depends on what else the machine runs; wall time does)."""
    width = max([len(r.stem) for r in results] + [8])
    lines = [f"{'notebook':{width}s}  {'wall time':>9s}  {'CPU time':>8s}  result"]
    for r in results:
        cpu = clock(r.cpu) if r.cpu else "-"
        lines.append(f"{r.stem:{width}s}  {clock(r.seconds):>9s}  {cpu:>8s}  {r.state}")
    lines.append(f"{'total':{width}s}  {clock(wall):>9s}  {clock(sum(r.cpu for r in results)):>8s}"
                 f"  (wall clock; the notebooks' own wall times add up to "
                 f"{clock(sum(r.seconds for r in results))})")
    return "\n".join(lines)


if __name__ == "__main__":
    # papermill reads notebooks with nbformat, whose jsonschema builds a grammar for IRI
    # strings on import when rfc3987_syntax is installed: over a second of CPU per
    # notebook, for a format check a notebook's schema never asks for. Without the module
    # jsonschema simply has no IRI check (it imports it inside `suppress(ImportError)`).
    sys.modules.setdefault("rfc3987_syntax", None)
    sys.exit(_child(*sys.argv[1:4]))
