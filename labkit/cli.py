"""The command line: `labkit run`, `labkit doctor`, `labkit ledger`, `labkit readme`.

    labkit run                      every notebook, quick profile, outputs under runs/
    labkit run --profile smoke 00 03
    labkit run --render 04          execute and write the outputs back into notebooks/
                                    (each header stating that run's wall time) and the
                                    wall times into results/timings.json
    labkit run -j 1                 one notebook at a time, with every core
    labkit student [--out DIR]      the student edition: solutions stubbed, no outputs
    labkit progress                 the exercises you have passed, tried, not attempted
    labkit doctor                   environment report, data hashes, model sources
    labkit ledger [--profile quick] the results table of completed runs (also: labkit results)
    labkit readme                   rewrite the README's results from the reference ledger
    labkit colab [--write]          Colab badges and setup cells from pyproject's URL
    labkit classroom-publish [NN ...] commit the student edition to the `student` branch
    labkit classroom-link --hub URL the nbgitpuller link to the student edition
    labkit classroom-collect --out D the learners' ledgers and progress, joined
"""

from __future__ import annotations

import argparse
import os
import shutil
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
    try:
        how = runner.plan(len(notebooks), args.jobs)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    os.environ["LABKIT_HEADLESS"] = "1"        # inherited by the kernels
    os.environ["LABKIT_PROFILE"] = args.profile
    if args.seed is not None:
        os.environ["LABKIT_SEED"] = str(args.seed)
    if args.render:   # the run behind committed outputs logs to the tracked reference ledger
        os.environ["LABKIT_LEDGER"] = str(ledger.reference_path())
    # each seed keeps its own executed copies: runs of seeds 1 and 2 do not overwrite each other
    outdir = ledger.runs_dir() / "notebooks" / (
        args.profile if args.seed is None else f"{args.profile}-seed{args.seed}")
    outdir.mkdir(parents=True, exist_ok=True)
    order = runner.best_order(notebooks, course.estimates(args.profile),
                              runner.needs(notebooks), how.jobs)
    print(f"labkit run: {len(notebooks)} notebook(s), profile {args.profile}, "
          f"{how.describe()}; outputs in {outdir}")
    t0 = time.perf_counter()
    interrupted = None
    try:
        results = runner.run_many(order, outdir, how)
    except runner.Interrupted as e:
        interrupted, results = e, e.results
    wall = time.perf_counter() - t0
    results.sort(key=lambda r: r.stem)
    this_run = {"machine": runner.machine(), "threads": how.threads, "jobs": how.jobs,
                "date": time.strftime("%Y-%m-%d")}
    for r in results:        # each header states the time of the run that executed it
        if r.ok:
            course.stamp_header(r.out, course.rendered_line(r.stem, args.profile, r.seconds,
                                                            this_run))
    course.record_local_timings({r.stem: r.seconds for r in results if r.ok}, args.profile)
    if args.render:
        source = {nb.stem: nb for nb in notebooks}
        for r in results:
            if r.ok:                   # only a notebook that ran to the end replaces the source
                move_into_place(r.out, source[r.stem])
        if any(r.ok for r in results):
            path = course.record_timings({r.stem: r.seconds for r in results if r.ok},
                                         profile=args.profile, machine=runner.machine(),
                                         threads=how.threads, jobs=how.jobs, wall_s=wall)
            print(f"timings written to {path}")
    print()
    print(runner.report(results, wall))
    if interrupted:
        finished = [r.stem for r in results if r.ok]
        stopped = [r.stem for r in results if r.state == "stopped"]
        print(f"\nlabkit run: {interrupted} after {runner.clock(wall)}; stopped "
              f"{', '.join(stopped) or 'no notebook'} and their kernels.")
        print(f"finished: {', '.join(finished) or 'none'}"
              + (" (rendered into notebooks/)" if args.render and finished else ""))
        untouched = [r.stem for r in results if not r.ok]
        if args.render and untouched:
            print(f"left as they were in notebooks/: {', '.join(untouched)}")
        return 128 + interrupted.signum
    print()
    print(ledger.table(profile=args.profile))
    failed = [r.stem for r in results if r.state == "FAILED"]
    waiting = [r.stem for r in results if r.state == "not started"]
    if failed:
        print(f"\n{len(failed)} notebook(s) failed: {', '.join(failed)}"
              + (f"; not started, since they read those: {', '.join(waiting)}"
                 if waiting else ""))
    return 1 if failed or waiting else 0


def move_into_place(src: Path, dst: Path) -> None:
    """Copy `src` beside `dst` under a temporary name, then rename it over `dst` (atomic
    on one file system): `dst` is at every moment either the old notebook or the new one,
    never half of one."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def cmd_student(args) -> int:
    from . import student

    built = student.build(args.out)
    n = sum(len(ids) for ids in built.values())
    print(f"student edition: {len(built)} notebook(s), {n} exercise(s) stubbed, in {args.out}/ "
          f"(solutions in {args.out}/solutions/)")
    return 0


def cmd_progress(args) -> int:
    if args.reset:
        from . import checks

        path = checks.progress_path()
        if path.exists():
            path.unlink()
            print(f"progress reset: removed {path}")
        else:
            print(f"no progress to reset ({path} does not exist)")
    print(course.progress_report())
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
    from . import doctor

    todo = doctor.advice(doctor.facts())
    print("\nwhat to do" if todo else "\nall set: `labkit run` runs the course (quick profile)")
    for line in todo:
        print("  - " + line)
    return 1 if problems else 0


def cmd_ledger(args) -> int:
    print(ledger.table(profile=args.profile, markdown=args.markdown))
    return 0


def results_markdown(rows: list[dict], profile: str = "quick") -> str:
    """The README's results part, from reference-ledger rows: every strategy on the one
    test set of the protocol with its computed verdicts and the one majority baseline,
    the rules of thumb those verdicts give, then the other headline numbers. Runs that
    never finished are left out (by `ledger.read`), and the text says so."""
    unfinished = getattr(rows, "skipped", [])
    rows = ledger.last_runs(rows)
    srows = compare.strategy_rows(rows, profile=profile)
    main = compare.main_test_set(srows, profile)
    parts = []
    if main is None:
        parts += ["**Every strategy on the shared target task**: no accuracy in the reference "
                  "ledger is scored under the evaluation protocol yet (`labkit.protocol`); "
                  "re-render notebooks 02-08 with `labkit run --render`, then `labkit readme`.",
                  ""]
    else:
        judged = compare.cells(compare.judge([r for r in srows if r["test_set"] == main]))
        base = next((r for r in judged if r["strategy"] == "majority"), None)
        baseline = (f"majority-class line {100 * base['mean']:.1f}% accuracy, 50% balanced "
                    "accuracy" if base else "no majority-class baseline logged for it")
        parts += [f"**Every strategy on the shared target task** (movie-review sentiment, "
                  f"scored on `{main}`, {compare.size_words(main)}; {baseline}; balanced "
                  "accuracy (the mean of the accuracy on each class, chance 50%) and plain "
                  "accuracy, mean ± standard deviation over seeds; one row per strategy, "
                  "model and label budget; verdicts computed by `labkit.compare`: the "
                  "difference in balanced-accuracy points with its 95% interval, paired over "
                  "seeds and test rows):", "", compare.table(judged, markdown=True), "",
                  compare.multiplicity(judged), ""]
        sentences = compare.which_when(judged)
        if sentences:
            parts += ["**Which strategy when**, generated from those verdicts: a claim only "
                      "where the 95% interval excludes 0, naming its model, label budget and "
                      "test set; everything else is not resolved at this size:", ""]
            parts += [f"- {s}" for s in sentences] + [""]
        others = sorted({r["test_set"] for r in srows} - {main})
        if others:
            parts += [f"Accuracies scored on other test sets ({', '.join(others)}) are left "
                      "out here: they compare only with their own baseline, in their notebooks.",
                      ""]
    old = compare.legacy([r for r in rows if r["profile"] == profile])
    if old:
        parts += [f"({old} accuracy row(s) of the reference ledger predate the protocol and "
                  "name no test set; they are not shown.)", ""]
    if unfinished:
        parts += [f"({sum(u['rows'] for u in unfinished)} row(s) of {len(unfinished)} run(s) "
                  "that did not finish are left out: "
                  + ", ".join(sorted({u["notebook"] for u in unfinished})) + ".)", ""]
    others = [r for r in rows if compare.parse(r["metric"]) is None]
    parts += ["**Other headline numbers** (mean ± standard deviation over seeds):", "",
              ledger.table(others, profile=profile, markdown=True)]
    return "\n".join(parts)


def cmd_readme(args) -> int:
    readme = ROOT / "README.md"
    text = course.fill_readme(readme.read_text(encoding="utf-8"))
    if README_START not in text or README_END not in text:
        raise SystemExit(f"README.md lacks the markers {README_START} ... {README_END}")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    source = ledger.reference_path()
    table = results_markdown(ledger.read(source), args.profile)
    text = f"{head}{README_START}\n{table}\n{README_END}{tail}"
    from . import rl      # notebooks 10-11 in words, from their rows

    text = rl.fill_readme(text, ledger.read(source), args.profile)
    readme.write_text(text, encoding="utf-8")
    print(f"README.md: results rewritten from the reference ledger {source}")
    return 0


def cmd_colab(args) -> int:
    from . import colab

    stale = colab.write(check=not args.write)
    for path in stale:
        print(f"{'rewrote' if args.write else 'out of date'}: {path.relative_to(ROOT)}")
    if args.write or not stale:
        print(f"Colab badges and setup cells match {colab.repo_url()}")
        return 0
    print("run `labkit colab --write` to update them")
    return 1


def cmd_classroom_link(args) -> int:
    from . import classroom

    print(classroom.nbgitpuller_link(args.hub, repo=args.repo, branch=args.branch, path=args.path))
    return 0


def cmd_classroom_collect(args) -> int:
    import glob

    from . import classroom

    homes = [Path(h) for h in sorted(glob.glob(args.homes))]
    got = classroom.collect(homes, Path(args.out))
    for home, why in got.skipped:
        print(f"warning: skipped {home}: {why}", file=sys.stderr)
    print(f"{len(got.learners)} learner(s) with runs, of {len(homes)} home(s) matching "
          f"{args.homes}: {', '.join(got.learners) or '-'}"
          f"{f'; {len(got.skipped)} skipped' if got.skipped else ''}"
          f"\njoined ledger: {Path(args.out) / 'ledger.jsonl'}")
    return 0


def cmd_classroom_publish(args) -> int:
    from . import classroom

    try:
        done = classroom.publish(args.repo, branch=args.branch, notebooks=args.ids or None)
    except ValueError as e:
        raise SystemExit(f"labkit classroom-publish: {e}") from None
    print(f"{done.branch}: {'new commit ' + done.commit[:12] if done.changed else 'unchanged at ' + done.commit[:12]}"
          f"{f' on top of {done.parent[:12]}' if done.changed and done.parent else ''} "
          f"({', '.join(done.notebooks)}); push it with `git push origin {done.branch}`")
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
    st = sub.add_parser("student", help="build the student edition: solutions stubbed, "
                                        "no outputs, solutions on their own pages")
    st.add_argument("--out", default="student", help="folder to write (default: student/)")
    st.set_defaults(func=cmd_student)
    pg = sub.add_parser("progress", help="the exercises you have passed, tried, not attempted")
    pg.add_argument("--reset", action="store_true",
                    help="forget every attempt (e.g. one recorded before the instructor "
                         "edition stopped writing progress)")
    pg.set_defaults(func=cmd_progress)
    d = sub.add_parser("doctor", help="environment report, data hashes, model sources")
    d.set_defaults(func=cmd_doctor)
    lg = sub.add_parser("ledger", aliases=["results"],
                        help="print the results table (completed runs only)")
    lg.add_argument("--profile", choices=PROFILES, default=None)
    lg.add_argument("--markdown", action="store_true")
    lg.set_defaults(func=cmd_ledger)
    rd = sub.add_parser("readme", help="rewrite the README's results from the reference ledger")
    rd.add_argument("--profile", choices=PROFILES, default="quick")
    rd.set_defaults(func=cmd_readme)
    cb = sub.add_parser("colab", help="check (or --write) every notebook's Colab badge and setup cell")
    cb.add_argument("--write", action="store_true", help="rewrite them from pyproject's URL")
    cb.set_defaults(func=cmd_colab)
    cl = sub.add_parser("classroom-link", help="the nbgitpuller link that gives learners the student edition")
    cl.add_argument("--hub", required=True, help="the hub's address, e.g. https://hub.example.edu")
    cl.add_argument("--repo", default=None, help="default: pyproject's [project.urls] Repository")
    cl.add_argument("--branch", default="student")
    cl.add_argument("--path", default="notebooks/00_setup.ipynb", help="the notebook to open")
    cl.set_defaults(func=cmd_classroom_link)
    cp = sub.add_parser("classroom-publish", help="commit the student edition to a branch "
                                                  "(a new commit; learners' edits survive the pull)")
    cp.add_argument("ids", nargs="*", help="notebook numbers or names (default: all)")
    cp.add_argument("--repo", default=".", help="the git repository (a clone or bare; default .)")
    cp.add_argument("--branch", default="student")
    cp.set_defaults(func=cmd_classroom_publish)
    cc = sub.add_parser("classroom-collect", help="copy and join the learners' ledgers and progress")
    cc.add_argument("--homes", default="/home/jupyter-*", help="glob of the learners' homes")
    cc.add_argument("--out", required=True)
    cc.set_defaults(func=cmd_classroom_collect)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
