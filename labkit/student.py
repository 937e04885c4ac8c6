"""The student edition: the notebooks with every solution replaced by a stub.

The notebooks in notebooks/ are the instructor edition: each "your turn" exercise has
its solution between two marker lines inside a function body (the convention of nbgrader
and otter-grader, see labkit/checks/_core.py). `labkit student` builds, from each
jupytext source notebooks/NN_name.py:

    student/NN_name.ipynb          the region replaced by a TODO comment and
                                   `raise NotImplementedError(...)`, at the region's
                                   indentation; no outputs; everything else kept (the
                                   checker cells, the parameters cell, the tags)
    student/solutions/NN_name.md   each exercise's cell with its solution, under the
                                   anchor `exercise-NN-k` that the checkers' "show me"
                                   link points to

Why not nbgrader or otter-grader: nbgrader's ClearSolutions preprocessor does the same
replacement, but the package brings a database, a server and upper pins on JupyterLab and
jupyter-client for a sixty-line step, and writes no solutions page; otter-grader wants its
own assignment format (YAML question cells) rather than functions checked by
`labkit.checks`. jupytext, which the course already uses, reads the sources.

    >>> from labkit import student
    >>> student.build("student")            # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path

from .checks._core import BEGIN, END

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RUN_CALL = re.compile(r"""checks\.run\(\s*["'](\d\d\.\d+)["']""")
YOUR_TURN = re.compile(r"Your turn (\d\d\.\d+)")


def regions(source: str, where: str = "") -> list[tuple[int, int, str]]:
    """(BEGIN line, END line, indentation) of each solution region in a cell's source.
    Unpaired or nested markers, and a region outside a function body, are errors."""
    found, start = [], None
    for i, line in enumerate(source.split("\n")):
        mark = line.strip()
        if mark == BEGIN:
            if start is not None:
                raise ValueError(f"{where} line {i + 1}: {BEGIN} inside another solution "
                                 f"region; close the first one with {END}")
            start = i
        elif mark == END:
            if start is None:
                raise ValueError(f"{where} line {i + 1}: {END} without a {BEGIN} above it")
            indent = re.match(r"\s*", source.split("\n")[start]).group(0)
            if not indent:
                raise ValueError(f"{where} line {start + 1}: a solution region must be "
                                 "inside a function body (indent the markers), so that the "
                                 "student edition's stub raises only when the function runs")
            found.append((start, i, indent))
            start = None
    if start is not None:
        raise ValueError(f"{where} line {start + 1}: {BEGIN} is never closed by {END}")
    return found


def stub(ex_id: str, indent: str) -> list[str]:
    """What replaces a solution region in the student edition."""
    return [f"{indent}# TODO (your turn {ex_id}): write your code here, then run this cell.",
            f'{indent}raise NotImplementedError("your turn {ex_id}: not written yet")']


def strip(source: str, ex_id: str, where: str = "") -> tuple[str, list[str]]:
    """The cell's source with each region stubbed, and each region's solution lines."""
    lines, out, solutions, pos = source.split("\n"), [], [], 0
    for first, last, indent in regions(source, where):
        out += lines[pos:first] + stub(ex_id, indent)
        solutions.append("\n".join(lines[first + 1:last]))
        pos = last + 1
    return "\n".join(out + lines[pos:]), solutions


def without_markers(source: str) -> str:
    """The instructor's cell as the solutions page shows it: the marker lines dropped."""
    return "\n".join(line for line in source.split("\n") if line.strip() not in (BEGIN, END))


def build_one(py: Path, out_dir: Path) -> list[str]:
    """Write out_dir/<stem>.ipynb and out_dir/solutions/<stem>.md from one jupytext
    source; return the ids of its exercises (in order)."""
    try:
        import jupytext
    except ImportError:
        raise ImportError("labkit student reads the notebooks' .py sources with jupytext: "
                          "pip install -e '.[course]' (or pip install jupytext)") from None
    import nbformat

    nb = jupytext.read(py)
    nb.metadata.pop("jupytext", None)          # the student copy is not paired with a .py
    number, seen, current, page = py.stem[:2], [], None, []
    for index, cell in enumerate(nb.cells):
        heading = YOUR_TURN.search(cell.source) if cell.cell_type == "markdown" else None
        if heading:
            current = heading.group(1)
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        if not regions(cell.source, f"{py.name} cell {index + 1}"):
            continue
        called = RUN_CALL.search(cell.source)
        ex_id = (called.group(1) if called else current) or f"{number}.{len(seen) + 1}"
        original = cell.source
        cell.source, _ = strip(original, ex_id, f"{py.name} cell {index + 1}")
        if ex_id not in seen:
            seen.append(ex_id)
            page += [f'<a id="exercise-{ex_id.replace(".", "-")}"></a>',
                     f"## Your turn {ex_id}", ""]
        page += ["```python", without_markers(original).strip(), "```", ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / f"{py.stem}.ipynb")
    solutions = out_dir / "solutions"
    solutions.mkdir(exist_ok=True)
    title = f"# Solutions · {py.stem}\n\nThe exercises of `{py.stem}.ipynb`, solved. " \
            "Try each one first: the checker's hints come before this page.\n\n"
    body = "\n".join(page) if page else "This notebook has no \"your turn\" exercise.\n"
    (solutions / f"{py.stem}.md").write_text(title + body, encoding="utf-8")
    return seen


def build(out_dir: str | Path = "student", notebooks: Path | None = None) -> dict[str, list[str]]:
    """Build the student edition of every notebooks/NN_*.py into `out_dir`; return
    {notebook stem: its exercise ids}."""
    sources = sorted((notebooks or NOTEBOOKS).glob("[0-9][0-9]_*.py"))
    if not sources:
        raise FileNotFoundError(f"no NN_name.py notebook source in {notebooks or NOTEBOOKS}")
    return {py.stem: build_one(py, Path(out_dir)) for py in sources}


def solution_lines(source: str, min_chars: int = 12) -> list[str]:
    """The lines of a source's solution regions worth looking for in the student edition:
    stripped, at least `min_chars` long (so `return out` or `pass` do not count)."""
    lines = source.split("\n")
    found = []
    for first, last, _ in regions(source):
        found += [x.strip() for x in lines[first + 1:last] if len(x.strip()) >= min_chars]
    return found
