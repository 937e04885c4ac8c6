"""The command line: `labkit run`, `labkit doctor`, `labkit ledger`, `labkit readme`.

    labkit run                      every notebook, quick profile, outputs under runs/
    labkit run --profile smoke 00 03
    labkit run --render 04          execute and write the outputs back into notebooks/
    labkit doctor                   environment report, data hashes, model sources
    labkit ledger [--profile quick] the results table
    labkit readme                   rewrite the README's results from the reference ledger
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import compare, ledger
from .profile import PROFILES

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def find_notebooks(ids: list[str]) -> list[Path]:
    """Notebooks whose number or name matches one of `ids` (all when `ids` is empty)."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
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


def strip_run_metadata(path: Path) -> None:
    """Remove papermill's and widgets' metadata so a rendered notebook diffs cleanly."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["metadata"].pop("papermill", None)
    nb["metadata"].pop("widgets", None)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def run_notebook(nb: Path, out: Path) -> None:
    """Execute one notebook with papermill. The profile and seed reach its parameters
    cell through LABKIT_PROFILE and LABKIT_SEED, so the rendered notebook keeps the
    same cells as its source (no injected parameter cell)."""
    import papermill

    papermill.execute_notebook(str(nb), str(out), cwd=str(NOTEBOOKS), kernel_name="python3",
                               progress_bar=False, log_output=False,
                               request_save_on_cell_execute=False)


def cmd_run(args) -> int:
    notebooks = find_notebooks(args.ids)
    os.environ["LABKIT_HEADLESS"] = "1"        # inherited by the kernels papermill starts
    os.environ["LABKIT_PROFILE"] = args.profile
    if args.seed is not None:
        os.environ["LABKIT_SEED"] = str(args.seed)
    if args.render:   # the run behind committed outputs logs to the tracked reference ledger
        os.environ["LABKIT_LEDGER"] = str(ledger.reference_path())
    outdir = ledger.runs_dir() / "notebooks" / args.profile
    outdir.mkdir(parents=True, exist_ok=True)
    failed = []
    print(f"labkit run: {len(notebooks)} notebook(s), profile {args.profile}, "
          f"outputs in {outdir}")
    for nb in notebooks:
        out = outdir / nb.name
        print(f"  {nb.stem:32s} ...", end="", flush=True)
        t0 = time.perf_counter()
        try:
            run_notebook(nb, out)
        except Exception as e:   # report and carry on with the other notebooks
            failed.append(nb.stem)
            print(f" FAILED after {time.perf_counter() - t0:.0f}s\n"
                  f"    {type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}\n"
                  f"    the executed notebook is in {out}")
            continue
        strip_run_metadata(out)
        if args.render:
            os.replace(out, nb)    # only a notebook that ran to the end replaces the source
        print(f" ok ({time.perf_counter() - t0:.0f}s)")
    print()
    print(ledger.table(profile=args.profile))
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


def results_markdown(rows: list[dict], profile: str = "quick") -> str:
    """The README's results part, from reference-ledger rows: every strategy on the one
    test set of the protocol with its computed verdicts and the one majority baseline,
    the rules of thumb those verdicts give, then the other headline numbers."""
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
        judged = compare.judge([r for r in srows if r["test_set"] == main])
        base = next((r for r in judged if r["strategy"] == "majority"), None)
        baseline = (f"majority-class baseline {100 * base['mean']:.1f}%" if base else
                    "no majority-class baseline logged for it")
        parts += [f"**Every strategy on the shared target task** (movie-review sentiment, "
                  f"scored on `{main}`, {compare.size_words(main)}; {baseline}; test accuracy, "
                  "mean ± standard deviation over seeds; verdicts computed by "
                  "`labkit.compare` from the seed spread and a paired bootstrap over the test "
                  "rows):", "", compare.table(judged, markdown=True), ""]
        sentences = compare.which_when(judged)
        if sentences:
            parts += ["**Which strategy when**, generated from those verdicts:", ""]
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
    others = [r for r in rows if compare.parse(r["metric"]) is None]
    parts += ["**Other headline numbers** (mean ± standard deviation over seeds):", "",
              ledger.table(others, profile=profile, markdown=True)]
    return "\n".join(parts)


def cmd_readme(args) -> int:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise SystemExit(f"README.md lacks the markers {README_START} ... {README_END}")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    source = ledger.reference_path()
    table = results_markdown(ledger.read(source), args.profile)
    readme.write_text(f"{head}{README_START}\n{table}\n{README_END}{tail}", encoding="utf-8")
    print(f"README.md: results rewritten from the reference ledger {source}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="labkit", description="the course's lab kit")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute notebooks with papermill and print the ledger")
    r.add_argument("ids", nargs="*", help="notebook numbers or names (default: all)")
    r.add_argument("--profile", choices=PROFILES, default="quick")
    r.add_argument("--seed", type=int, default=None, help="override each notebook's SEED")
    r.add_argument("--render", action="store_true",
                   help="write the executed notebook back into notebooks/")
    r.set_defaults(func=cmd_run)
    d = sub.add_parser("doctor", help="environment report, data hashes, model sources")
    d.set_defaults(func=cmd_doctor)
    lg = sub.add_parser("ledger", help="print the results table")
    lg.add_argument("--profile", choices=PROFILES, default=None)
    lg.add_argument("--markdown", action="store_true")
    lg.set_defaults(func=cmd_ledger)
    rd = sub.add_parser("readme", help="rewrite the README's results from the reference ledger")
    rd.add_argument("--profile", choices=PROFILES, default="quick")
    rd.set_defaults(func=cmd_readme)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
