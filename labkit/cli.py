"""The command line: `labkit run`, `labkit doctor`, `labkit ledger`, `labkit readme`.

    labkit run                      every notebook, quick profile, outputs under runs/
    labkit run --profile smoke 00 03
    labkit run --render 04          execute and write the outputs back into notebooks/
                                    (and the wall times into results/timings.json)
    labkit run -j 1                 one notebook at a time, with every core
    labkit doctor                   environment report, data hashes, model sources
    labkit ledger [--profile quick] the results table
    labkit readme                   rewrite the README's results table from the ledger
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import compare, course, ledger, runner
from .profile import PROFILES
from .runner import find_notebooks, run_notebook, strip_run_metadata  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def cmd_run(args) -> int:
    notebooks = find_notebooks(args.ids)
    os.environ["LABKIT_HEADLESS"] = "1"        # inherited by the kernels
    os.environ["LABKIT_PROFILE"] = args.profile
    if args.seed is not None:
        os.environ["LABKIT_SEED"] = str(args.seed)
    outdir = ledger.runs_dir() / "notebooks" / args.profile
    outdir.mkdir(parents=True, exist_ok=True)
    how = runner.plan(len(notebooks), args.jobs)
    measured = {stem: per[args.profile] for stem, per in
                course.timings().get("notebooks", {}).items() if args.profile in per}
    print(f"labkit run: {len(notebooks)} notebook(s), profile {args.profile}, "
          f"{how.describe()}; outputs in {outdir}")
    t0 = time.perf_counter()
    results = runner.run_many(runner.longest_first(notebooks, measured), outdir, how)
    wall = time.perf_counter() - t0
    results.sort(key=lambda r: r.stem)
    if args.render:
        source = {nb.stem: nb for nb in notebooks}
        for r in results:
            if r.ok:                   # only a notebook that ran to the end replaces the source
                os.replace(r.out, source[r.stem])
        path = course.record_timings({r.stem: r.seconds for r in results if r.ok},
                                     profile=args.profile, machine=runner.machine(),
                                     threads=how.threads, jobs=how.jobs, wall_s=wall)
        print(f"timings written to {path}")
    print()
    print(runner.report(results, wall))
    print()
    print(ledger.table(profile=args.profile))
    failed = [r.stem for r in results if not r.ok]
    if failed:
        print(f"\n{len(failed)} notebook(s) failed: {', '.join(failed)}")
        return 1
    return 0


def cmd_doctor(args) -> int:
    from . import data, device, hub, models

    print(device.report())
    print()
    problems = data.verify()
    n = len(data.manifest()["files"])
    print(f"data          {data.data_dir()}: {n - len(problems)}/{n} files match their sha256")
    for p in problems:
        print(f"              {p}")
    print(f"hub           {'reachable' if hub.reachable() else 'not reachable: offline sources only'}")
    print("models")
    for name in models.MODELS:
        print("  " + models.describe(name).replace("\n", "\n  "))
    return 1 if problems else 0


def cmd_ledger(args) -> int:
    print(ledger.table(profile=args.profile, markdown=args.markdown))
    return 0


def cmd_readme(args) -> int:
    readme = ROOT / "README.md"
    text = course.fill_readme(readme.read_text(encoding="utf-8"))
    if README_START not in text or README_END not in text:
        raise SystemExit(f"README.md lacks the markers {README_START} ... {README_END}")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    rows = ledger.last_runs(ledger.read())
    strategies = compare.strategy_rows(rows, profile=args.profile)
    others = [r for r in rows if compare.parse(r["metric"]) is None]
    parts = []
    if strategies:
        parts += ["**Every strategy on the shared target task** (movie-review sentiment; test "
                  "accuracy, mean ± standard deviation over seeds; compare rows of the same "
                  "notebook and model):", "", compare.table(strategies, markdown=True), ""]
    parts += ["**Other headline numbers** (mean ± standard deviation over seeds):", "",
              ledger.table(others, profile=args.profile, markdown=True)]
    table = "\n".join(parts)
    readme.write_text(f"{head}{README_START}\n{table}\n{README_END}{tail}", encoding="utf-8")
    print(f"README.md: results table rewritten from {ledger.ledger_path()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="labkit", description="the course's lab kit")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute notebooks with papermill and print the ledger")
    r.add_argument("ids", nargs="*", help="notebook numbers or names (default: all)")
    r.add_argument("--profile", choices=PROFILES, default="quick")
    r.add_argument("--seed", type=int, default=None, help="override each notebook's SEED")
    r.add_argument("--render", action="store_true",
                   help="write the executed notebooks back into notebooks/ and their wall "
                        "times into results/timings.json")
    r.add_argument("-j", "--jobs", type=int, default=None,
                   help="notebooks at once (default: one per GPU, else one per CPU core, "
                        "each with its share of the cores)")
    r.set_defaults(func=cmd_run)
    d = sub.add_parser("doctor", help="environment report, data hashes, model sources")
    d.set_defaults(func=cmd_doctor)
    lg = sub.add_parser("ledger", help="print the results table")
    lg.add_argument("--profile", choices=PROFILES, default=None)
    lg.add_argument("--markdown", action="store_true")
    lg.set_defaults(func=cmd_ledger)
    rd = sub.add_parser("readme", help="rewrite the README's results table from the ledger")
    rd.add_argument("--profile", choices=PROFILES, default="quick")
    rd.set_defaults(func=cmd_readme)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
