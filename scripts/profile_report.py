"""Turn the notebooks' sampling profiles into docs/profiles.md.

    LABKIT_PYSPY=runs/profiles labkit run          # records runs/profiles/NN.txt + NN.json
    python scripts/profile_report.py runs/profiles # writes docs/profiles.md

Each sample of `py-spy record --format raw` is one call stack. A sample is charged to
(1) the outermost labkit function the notebook called (`labkit.train.fit`), or, for the
notebook's own code, the outermost library it called (`torch`, `matplotlib`), and
(2) what that call was doing when sampled, the first that applies of: backward, optimizer
step, model loading, tokenisation, data loading, batching, model forward, plotting, other
Python. A share is the share of all samples of the run, every thread's (inclusive: `fit`
includes the forward passes it makes; a library's worker threads, such as gensim's, count
as that library's). The top three (function, activity) pairs are a notebook's top three
costs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
CELL_FILE = re.compile(r"^(\d+\.py|<ipython-input-.*>|<string>|<stdin>)$")   # a notebook cell

# what a sample was doing: the first rule (in this order) that a frame of its stack meets
ACTIVITIES = [
    ("backward", lambda f, fn: f.startswith("torch/autograd/") or fn == "Tensor.backward"),
    ("optimizer step", lambda f, fn: f.startswith("torch/optim/")),
    ("model loading", lambda f, fn: ("from_pretrained" in fn or f.startswith("safetensors/")
                                     or f.startswith("gguf/") or f == "labkit/models.py")),
    ("tokenisation", lambda f, fn: (f.startswith("tokenizers/") or "tokeniz" in f
                                    or f == "labkit/text.py" or "tokeni" in fn.lower())),
    ("data loading", lambda f, fn: (f.startswith(("datasets/", "pyarrow/", "pandas/io/"))
                                    or f == "labkit/data.py")),
    ("batching", lambda f, fn: ((f == "labkit/batching.py" and fn in ("batch_stream", "batches"))
                                or "collate" in fn.lower())),
    ("model forward", lambda f, fn: (f in ("torch/nn/modules/module.py", "torch/nn/functional.py")
                                     or fn in ("loss_terms", "loss_fn", "default_loss"))),
    ("plotting", lambda f, fn: f.startswith(("matplotlib/", "IPython/core/pylabtools"))),
]


def parse_stack(text: str) -> list[tuple[str, str]]:
    """'a (x.py:1);b (y.py:2)' -> [('a', 'x.py'), ('b', 'y.py')], outermost first."""
    frames = []
    for part in text.split(";"):
        m = FRAME.match(part.strip())
        frames.append((m["func"], m["file"]) if m else (part.strip(), ""))
    return frames


KERNEL = ("ipykernel/", "tornado/", "zmq/", "asyncio/", "threading.py", "queue.py",
          "selectors.py", "jupyter_client/", "IPython/")


def notebook_part(frames: list[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """The frames below the notebook's cell (after IPython's run_code); for a thread the
    notebook's code started (gensim's workers), its frames past the threading machinery;
    a plain script's whole stack; None for a sample of the kernel's own machinery."""
    cut = [i for i, (fn, f) in enumerate(frames) if fn.endswith("run_code")
           and f.startswith("IPython/")]
    if cut:
        return frames[cut[-1] + 1:]
    rest = [(fn, f) for fn, f in frames if not f.startswith(KERNEL)]
    if frames and frames[0][1] == "threading.py":
        return [("(another thread)", "")] + rest if rest else None
    if any(f.startswith(KERNEL) for _, f in frames[:3]):
        return None
    return frames


def entry(frames: list[tuple[str, str]]) -> str:
    """The outermost labkit function, else the outermost library, the cell called."""
    for fn, f in frames:
        if f.startswith("labkit/"):
            return _labkit_name(fn, f)
    thread = " (its own threads)" if frames and frames[0][0] == "(another thread)" else ""
    for fn, f in frames:
        if not CELL_FILE.match(Path(f).name) and f:
            name = f.split("/")[0] if "/" in f else f
            return name.removesuffix(".py") + thread
    return "notebook code" + thread


def _labkit_name(fn: str, f: str) -> str:
    module = f.removesuffix(".py").replace("/", ".")
    return f"{module}.{fn.split('.<locals>')[0]}"


def activity(frames: list[tuple[str, str]]) -> str:
    for name, rule in ACTIVITIES:
        if any(rule(f, fn) for fn, f in frames):
            return name
    return "its worker threads" if frames and frames[0][0] == "(another thread)" else "other Python"


def summarise(path: Path) -> dict:
    """Sample counts of one profile: total, per entry, per (entry, activity)."""
    total, kernel = 0, 0
    by_entry, by_pair, by_activity = Counter(), Counter(), Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = notebook_part(parse_stack(stack))
        if frames is None:
            kernel += n
            continue
        e, a = entry(frames), activity(frames)
        by_entry[e] += n
        by_pair[(e, a)] += n
        by_activity[a] += n
    return {"total": total, "kernel": kernel, "entry": by_entry, "pair": by_pair,
            "activity": by_activity}


def pct(n: int, total: int) -> str:
    return f"{100 * n / total:.0f}%" if total else "-"


def section(nn: str, s: dict, meta: dict) -> str:
    total = s["total"]
    name = meta.get("notebook", nn)
    lines = [f"## {name}", ""]
    if not total:
        return "\n".join(lines + ["No samples were recorded.", ""])
    lines.append(f"{total:,} samples at {meta.get('rate', '?')} a second; "
                 f"profile `{meta.get('profile', '?')}`, {meta.get('torch_threads', '?')} torch "
                 f"thread(s), {meta.get('cpus', '?')} CPUs, load average "
                 f"{meta.get('load_start', '?')} at the start and {meta.get('load_end', '?')} "
                 f"at the end; {meta.get('wall_s', '?')} s from the run's start to "
                 f"`run.finish()`, recorded {meta.get('started', '?')}.")
    lines += ["", "| top costs | share of samples |", "|---|---:|"]
    for (e, a), n in s["pair"].most_common(3):
        lines.append(f"| `{e}`: {a} | {pct(n, total)} |")
    shown = [(k, n) for k, n in s["entry"].most_common(6) if n / total >= 0.005]
    lines += ["", "By the function the notebook called (inclusive): " + ", ".join(
        f"`{e}` {pct(n, total)}" for e, n in shown) + "."]
    lines += ["By activity: " + ", ".join(
        f"{a} {pct(n, total)}" for a, n in s["activity"].most_common()
        if n / total >= 0.005) + (
        f", the kernel's own work {pct(s['kernel'], total)}." if s["kernel"] else ".")]
    lines += ["", f"Measured with `{meta.get('command', 'py-spy record')}`, started by the "
              "notebook's `ledger.Run` when `LABKIT_PYSPY` is set.", ""]
    return "\n".join(lines)


HEADER = """# Where each notebook's time goes

A sampling profile of each notebook's `{profile}` run, from the run's start (its
`ledger.Run`) to `run.finish()`; imports before the run starts are not in it. Made by

    {run_command}
    python scripts/profile_report.py {folder}

(`labkit.profiling` starts `py-spy record` on the notebook's own process; this page is
written by `scripts/profile_report.py`, do not edit it by hand). A share is the share of
all samples of the run; a cost is the labkit function the notebook called (or, for the
notebook's own code, the library it called) and what it was doing: model forward,
backward, optimizer step, tokenisation, data loading, batching (making a batch, e.g.
word2vec's pairs), model loading, plotting, or other Python (the loop's own code and
whatever else runs in Python). Samples count every thread that was busy, so a library's
worker threads (gensim's) count as that library. The forward passes of an evaluation
inside `fit` count as `fit`'s model forward, and so does the loss (computed in the forward
pass); shares under 0.5% are left out of the lists.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="the LABKIT_PYSPY folder (NN.txt, NN.json)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "profiles.md")
    ap.add_argument("--run-command", default="LABKIT_PYSPY=runs/profiles labkit run",
                    help="the command that ran the notebooks, as this page should quote it")
    args = ap.parse_args(argv)
    found = sorted(args.folder.glob("[0-9][0-9].txt"))
    if not found:
        print(f"profile_report: no NN.txt in {args.folder}; run the notebooks with "
              f"LABKIT_PYSPY={args.folder} first", file=sys.stderr)
        return 2
    parts, profiles = [], set()
    for txt in found:
        meta_path = txt.with_suffix(".json")
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        profiles.add(meta.get("profile", "?"))
        parts.append(section(txt.stem, summarise(txt), meta))
    text = HEADER.format(profile="/".join(sorted(profiles)), run_command=args.run_command,
                         folder=args.folder.as_posix()) + "\n" + "\n".join(parts)
    tmp = args.out.with_suffix(".md.tmp")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {args.out} ({len(found)} notebook(s))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
