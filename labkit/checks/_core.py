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
* wrong      -> a hint; on the second wrong attempt a stronger hint and a "show me"
                link to the solution; the notebook carries on with the reference.

Checkers run inside `preserved_random_state()`, so trying an exercise never changes the
random numbers the rest of the notebook draws. Each attempt is remembered in a small
JSON file outside the repository's tracked files (`runs/progress.json`, or
$LABKIT_PROGRESS); `labkit progress` lists it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import random
import secrets
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

    @property
    def notebook(self) -> str:
        return self.id.split(".")[0]


EXERCISES: dict[str, Exercise] = {}


def exercise(ex_id: str, title: str, *, reference: Any = None):
    """Register the decorated `check(answer)` function as the checker of `ex_id`."""
    def register(check: Callable[[Any], None]) -> Callable[[Any], None]:
        if ex_id in EXERCISES:
            raise ValueError(f"exercise {ex_id} is registered twice")
        EXERCISES[ex_id] = Exercise(ex_id, title, check, reference)
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


def _record(ex: Exercise, status: str) -> dict:
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:          # a read-only checkout must not stop the notebook
        pass
    return row


def solution_link(ex_id: str) -> str:
    """Where the solution of `ex_id` is: the solutions page beside the student
    edition, and the same cell in the instructor edition (notebooks/)."""
    number = ex_id.split(".")[0]
    notebooks = Path(__file__).resolve().parent.parent.parent / "notebooks"
    found = sorted(notebooks.glob(f"{number}_*.py"))
    stem = found[0].stem if found else f"{number}_..."
    return (f"solutions/{stem}.md#exercise-{ex_id.replace('.', '-')} (beside the student "
            f"notebooks), or the same cell of notebooks/{stem}.ipynb")


# --------------------------------------------------------------------------- run
def run(ex_id: str, answer: Any) -> Any:
    """Check the learner's `answer` to exercise `ex_id`, print the verdict, and return
    what the rest of the notebook should use: the answer when it passes, otherwise the
    reference implementation (said plainly), so the notebook always runs to the end."""
    ex = get(ex_id)
    fallback = answer if ex.reference is None else ex.reference
    name = f"Your turn {ex.id} ({ex.title})"
    try:
        with preserved_random_state():
            ex.check(answer)
    except NotImplementedError:
        _record(ex, "not attempted")
        print(f"{name}: not attempted yet. The notebook carries on with labkit's "
              f"reference{_ref_name(ex)}; write your code in the cell above and run it again.")
        return fallback
    except Wrong as w:
        row = _record(ex, "wrong")
        print(f"{name}: not yet.\n  hint: {w.hint}")
        if row["failures"] >= 2:
            if w.stronger != w.hint:
                print(f"  stronger hint: {w.stronger}")
            print(f"  show me: {solution_link(ex.id)}")
        print(f"  The notebook carries on with labkit's reference{_ref_name(ex)}.")
        return fallback
    except Exception as e:   # the learner's code crashed: say where, keep going
        row = _record(ex, "wrong")
        print(f"{name}: your code raised {type(e).__name__}: {e}")
        if row["failures"] >= 2:
            print(f"  show me: {solution_link(ex.id)}")
        print(f"  The notebook carries on with labkit's reference{_ref_name(ex)}.")
        return fallback
    _record(ex, "passed")
    print(f"{name}: passed. The notebook carries on with your code.")
    return answer


def _ref_name(ex: Exercise) -> str:
    ref = ex.reference
    if ref is None:
        return ""
    mod, name = getattr(ref, "__module__", ""), getattr(ref, "__qualname__", "")
    return f" (`{mod}.{name}`)" if mod and name else ""


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
