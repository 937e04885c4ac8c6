"""The machinery behind every "your turn" exercise: check, hint, fall back, remember.

An exercise is a function the learner completes in the notebook. Its solution sits
between two marker lines, the convention of nbgrader and otter-grader:

    def attention_weights(scores, mask):
        ### BEGIN SOLUTION
        scores = scores.masked_fill(~mask, float("-inf"))
        return scores.softmax(dim=-1)
        ### END SOLUTION

    attention_weights = checks.run("01.1", attention_weights)

`labkit student` replaces each marked region with a stub that raises
`NotImplementedError`. `run` then calls the exercise's checker, which tests the
learner's function on fresh random inputs against labkit's reference implementation
(never against a number printed in the notebook), and:

* passes     -> "passed", the notebook carries on with the learner's function;
* stub       -> "not attempted", the notebook carries on with labkit's reference;
* wrong      -> a hint; on the second wrong attempt a stronger hint (it narrows the
                mistake, it never is the solution line) and a "show me" link to the
                solution; the notebook carries on with the reference.

While the checker runs the learner's function, labkit's own version of the exercise
cannot be called from it: a function that calls it stops with "that calls labkit's own
version; write it yourself" and does not pass (`reference_blocked`).

Checkers run inside `preserved_random_state()`, so trying an exercise never changes the
random numbers the rest of the notebook draws. Each attempt of the learner is remembered
in a small JSON file outside the repository's tracked files (`runs/progress.json`, or
$LABKIT_PROGRESS); `labkit progress` lists it. The instructor edition's solutions (their
source still holds the solution markers) are checked but never recorded: running the
instructor edition, as `labkit run` does, leaves a learner's progress alone.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import random
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


class Wrong(AssertionError):
    """Raised by a checker when the learner's answer is wrong: `hint` is shown on the
    first wrong attempt, `stronger` (a more direct hint) from the second on."""

    def __init__(self, hint: str, stronger: str | None = None):
        super().__init__(hint)
        self.hint, self.stronger = hint, stronger or hint


@dataclass
class Exercise:
    id: str                          # "01.1": notebook number . exercise number
    title: str
    check: Callable[[Any], None]     # raises Wrong (or anything) when the answer is wrong
    reference: Any = None            # what the notebook uses when the answer is not there
    blocked: tuple = ()              # other labkit functions that compute the same answer

    @property
    def notebook(self) -> str:
        return self.id.split(".")[0]


EXERCISES: dict[str, Exercise] = {}


def exercise(ex_id: str, title: str, *, reference: Any = None, blocked: tuple = ()):
    """Register the decorated `check(answer)` function as the checker of `ex_id`.
    `reference` and the functions in `blocked` cannot be called by the learner's answer
    while it is checked."""
    def register(check: Callable[[Any], None]) -> Callable[[Any], None]:
        if ex_id in EXERCISES:
            raise ValueError(f"exercise {ex_id} is registered twice")
        EXERCISES[ex_id] = Exercise(ex_id, title, check, reference, tuple(blocked))
        return check
    return register


def get(ex_id: str) -> Exercise:
    """The registered exercise `ex_id` (its notebook's checker module is imported first)."""
    from . import load_all

    load_all()
    if ex_id not in EXERCISES:
        known = ", ".join(sorted(EXERCISES)) or "none"
        raise KeyError(f"no exercise {ex_id!r}; known: {known}")
    return EXERCISES[ex_id]


# --------------------------------------------------------------------------- randomness
def fresh_generator() -> torch.Generator:
    """A generator seeded from the operating system: new inputs on every check, and
    the global random streams untouched. Checkers draw their inputs from it."""
    return torch.Generator().manual_seed(secrets.randbits(62))


@contextlib.contextmanager
def preserved_random_state():
    """Run a block without disturbing the global random streams of torch (CPU and
    CUDA), numpy and Python: a learner's function may draw random numbers."""
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())
                               if torch.cuda.is_available() else []):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


# --------------------------------------------------------------------------- progress
def progress_path() -> Path:
    env = os.environ.get("LABKIT_PROGRESS")
    if env:
        return Path(env)
    from ..ledger import runs_dir
    return runs_dir() / "progress.json"


def progress() -> dict[str, dict]:
    """Every exercise attempted on this machine: {id: {status, attempts, passed, ...}}."""
    path = progress_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock beside `path` (two notebooks run at once by `labkit run
    -j 2` may record at the same moment); no lock where the platform has none."""
    try:
        import fcntl
    except ImportError:       # Windows: records are rare and small, go without
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _update(ex: Exercise, status: str) -> dict:
    table = progress()
    row = table.get(ex.id, {"attempts": 0, "failures": 0, "passed": False})
    if status != "not attempted":
        row["attempts"] += 1
    if status == "wrong":
        row["failures"] += 1
    row["passed"] = row["passed"] or status == "passed"
    row.update(status=status, title=ex.title,
               time=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    table[ex.id] = row
    path = progress_path()
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return row


def _record(ex: Exercise, status: str) -> dict:
    """Read, update and write the progress file under a lock; return the row."""
    path = progress_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            return _update(ex, status)
    except OSError:          # a read-only checkout must not stop the notebook
        return {"attempts": 0, "failures": 0, "passed": status == "passed"}


# ------------------------------------------------------------------- the reference is out of reach
class CalledReference(Exception):
    """The learner's function called labkit's own version of the exercise."""


def _code_objects(objs) -> set:
    """The code objects of functions (and of the methods of classes) in `objs`."""
    import inspect

    codes = set()
    for obj in objs:
        if obj is None:
            continue
        members = vars(obj).values() if inspect.isclass(obj) else [obj]
        for member in members:
            member = inspect.unwrap(getattr(member, "__func__", member))
            if getattr(member, "__code__", None) is not None:
                codes.add(member.__code__)
    return codes


def reference_blocked(answer: Callable, ex: Exercise) -> Callable:
    """`answer`, wrapped so that while it runs, a call to the exercise's reference (or to
    a function in `ex.blocked`) raises CalledReference. A profile hook watches the calls;
    it is on only while the learner's function runs, never while the checker computes
    the reference's own answer. Caught by the learner, the call still fails the check."""
    import functools

    codes = {id(code) for code in _code_objects((ex.reference, *ex.blocked))}
    if not codes or not callable(answer):
        return answer

    @functools.wraps(answer)
    def guarded(*args, **kwargs):
        called = []

        def hook(frame, event, arg):
            if event == "call" and id(frame.f_code) in codes:
                called.append(frame.f_code.co_name)
                raise CalledReference(frame.f_code.co_name)

        previous = sys.getprofile()
        sys.setprofile(hook)
        try:
            result = answer(*args, **kwargs)
        finally:
            sys.setprofile(previous)
        if called:
            raise CalledReference(called[0])
        return result

    return guarded


def is_instructor_solution(answer: Any) -> bool:
    """True when `answer` is the instructor edition's solution: its source still holds
    the solution markers (the student edition's stubs and a learner's code do not)."""
    import inspect

    try:
        source = inspect.getsource(answer)
    except (OSError, TypeError):
        return False
    return BEGIN in source and END in source


# --------------------------------------------------------------------------- "show me"
def _stem(ex_id: str) -> str:
    number = ex_id.split(".")[0]
    found = sorted(_notebooks().glob(f"{number}_*.py"))
    return found[0].stem if found else f"{number}_notebook"


def _notebooks() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "notebooks"


def solution_path(ex_id: str) -> str:
    """The solutions page of `ex_id` with its anchor, relative to the student notebook
    (`labkit student` writes it there: solutions/NN_name.md)."""
    return f"solutions/{_stem(ex_id)}.md#exercise-{ex_id.replace('.', '-')}"


def solution_url(ex_id: str) -> str | None:
    """For Colab, where no solutions page sits beside the notebook: the instructor
    edition of the notebook opened on Colab at the solution's cell (`#scrollTo=` its
    cell id), from the course's repository (pyproject's URL); None without one."""
    try:
        from ..colab import BRANCH, repo_url

        owner_name = repo_url().split("github.com/", 1)[1]
    except Exception:
        return None
    stem = _stem(ex_id)
    url = (f"https://colab.research.google.com/github/{owner_name}/blob/{BRANCH}/"
           f"notebooks/{stem}.ipynb")
    cell = _solution_cell_id(_notebooks() / f"{stem}.ipynb", ex_id)
    return f"{url}#scrollTo={cell}" if cell else url


def _solution_cell_id(ipynb: Path, ex_id: str) -> str | None:
    """The id of the instructor notebook's cell that holds the solution of `ex_id`."""
    try:
        cells = json.loads(ipynb.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return None
    current = None
    for cell in cells:
        source = "".join(cell.get("source", ""))
        heading = re.search(r"Your turn (\d\d\.\d+)", source)
        if cell.get("cell_type") == "markdown" and heading:
            current = heading.group(1)
        elif cell.get("cell_type") == "code" and BEGIN in source and (
                current == ex_id or f'checks.run("{ex_id}"' in source):
            return cell.get("id")
    return None


def solution_link(ex_id: str) -> str:
    """Where the solution of `ex_id` is, as plain text: the solutions page beside the
    student notebook (the same cell of the instructor edition in notebooks/ holds it too)."""
    return (f"{solution_path(ex_id)} (in the folder of this notebook), or the same cell of "
            f"the instructor edition, notebooks/{_stem(ex_id)}.ipynb")


def _show_me(ex_id: str) -> None:
    """Print the "show me" line; in JupyterLab and Colab also show it as a link that
    opens the solution at its anchor (Lab renders the Markdown page; Colab, which has
    no folder beside the notebook, opens the page on the course's repository)."""
    from ..progress import in_notebook, is_headless

    print(f"  show me: {solution_link(ex_id)}")
    if not in_notebook() or is_headless():
        return
    href = solution_url(ex_id) if "google.colab" in sys.modules else solution_path(ex_id)
    if not href:
        return
    try:
        from IPython.display import Markdown, display
    except ImportError:
        return
    display(Markdown(f"[show me the solution of {ex_id}]({href})"))


# --------------------------------------------------------------------------- run
def run(ex_id: str, answer: Any) -> Any:
    """Check the learner's `answer` to exercise `ex_id`, print the verdict, and return
    what the rest of the notebook should use: the answer when it passes, otherwise the
    reference implementation (said plainly), so the notebook always runs to the end."""
    ex = get(ex_id)
    fallback = answer if ex.reference is None else ex.reference
    name = f"Your turn {ex.id} ({ex.title})"
    instructor = is_instructor_solution(answer)
    record = (lambda status: {"attempts": 0, "failures": 0, "passed": status == "passed"}) \
        if instructor else (lambda status: _record(ex, status))
    carry_on = f"  The notebook carries on with labkit's own version{_ref_name(ex)}."
    try:
        with preserved_random_state():
            ex.check(reference_blocked(answer, ex))
    except NotImplementedError:
        record("not attempted")
        print(f"{name}: not attempted yet. The notebook carries on with labkit's own "
              f"version{_ref_name(ex)}; write your code in the cell above and run it again.")
        return fallback
    except CalledReference:
        record("wrong")
        print(f"{name}: not yet. That calls labkit's own version{_ref_name(ex)}; write it "
              "yourself, from the building blocks the exercise names.")
        print(carry_on)
        return fallback
    except Wrong as w:
        row = record("wrong")
        print(f"{name}: not yet.\n  hint: {_plain(w.hint)}")
        if row["failures"] >= 2:
            if w.stronger != w.hint:
                print(f"  stronger hint: {_plain(w.stronger)}")
            _show_me(ex.id)
        print(carry_on)
        return fallback
    except Exception as e:   # the learner's code crashed: say where, keep going
        row = record("wrong")
        print(f"{name}: your code raised {type(e).__name__}: {e}")
        if row["failures"] >= 2:
            _show_me(ex.id)
        print(carry_on)
        return fallback
    record("passed")
    if instructor:
        print(f"{name}: passed. (The instructor edition's solution: checked, not counted "
              "as a learner's progress.)")
    else:
        print(f"{name}: passed. The notebook carries on with your code.")
    return answer


def _plain(text: str) -> str:
    """A message for plain text output: Markdown's `code` marks dropped."""
    return str(text).replace("`", "")


def _ref_name(ex: Exercise) -> str:
    ref = ex.reference
    if ref is None:
        return ""
    mod, name = getattr(ref, "__module__", ""), getattr(ref, "__qualname__", "")
    return f" ({mod}.{name})" if mod and name else ""


def verdict(ok: bool, hint: str) -> bool:
    """Older number-answer checkers: print a verdict with a hint, return ok."""
    print("correct" if ok else f"not yet: {hint}")
    return ok


# --------------------------------------------------------------------------- helpers for checkers
def close(mine, reference, *, what: str, hint: str, stronger: str | None = None,
          atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Raise Wrong unless two tensors (or numbers) agree in shape and value."""
    a, b = torch.as_tensor(mine), torch.as_tensor(reference)
    if a.shape != b.shape:
        raise Wrong(f"{what} has shape {tuple(a.shape)}, expected {tuple(b.shape)}. {hint}",
                    stronger)
    if not torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol, equal_nan=True):
        diff = (a.double() - b.double()).abs().max().item()
        raise Wrong(f"{what} differs from the reference (largest difference {diff:.3g}). "
                    f"{hint}", stronger)
