"""Every notebook runs end to end in the smoke profile (papermill, a real kernel), in
both editions: the instructor's (notebooks/, every exercise solved, so every checker must
pass) and the student's (`labkit student`: every exercise a stub, so every checker must
report "not attempted" and the notebook still run to the end on labkit's reference).

A new notebook is covered the day it lands: the list is read from notebooks/. Run them in
parallel with `pytest -n 2` (conftest sets one torch thread per process).
"""

import json
import re
from pathlib import Path

import pytest

from labkit import cli, course, ledger, profile, runner, student

# The smoke budget: `labkit run --profile smoke` of the whole course must finish in under
# 3 minutes on 2 cores, so about 25 s of CPU per notebook (each pays some 8 s to start a
# kernel and import torch and transformers); the heaviest took 21 s when this was set.
# CPU time hardly depends on what else the machine runs (wall time does, under `pytest -n 2`
# and on a shared machine); the limit leaves room for a CPU about twice as slow.
SMOKE_CPU_S = 45

NOTEBOOKS = sorted(Path(__file__).resolve().parent.parent.joinpath("notebooks").glob("[0-9][0-9]_*.ipynb"))


def exercise_ids(nb: Path) -> set[str]:
    """The exercises a notebook's source hands to the checkers (`checks.run("NN.k", ...)`)."""
    return set(student.RUN_CALL.findall(nb.with_suffix(".py").read_text(encoding="utf-8")))


def execute(nb: Path, tmp_path: Path, monkeypatch) -> tuple[dict, dict]:
    """Run `nb` in smoke with a private checkpoint folder and progress file; return the
    executed notebook and the progress the checkers recorded."""
    monkeypatch.setenv("LABKIT_PROFILE", "smoke")
    monkeypatch.setenv("LABKIT_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for first in course.STARTS_FROM.get(nb.stem[:2], ()):   # e.g. 11 loads what 10 saved
        monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / f"progress-{first}.json"))
        prior = next(nb.parent.glob(f"{first}_*.ipynb"))
        cli.run_notebook(prior, tmp_path / f"executed-{prior.name}")
    monkeypatch.setenv("LABKIT_PROGRESS", str(tmp_path / "progress.json"))
    out = tmp_path / f"executed-{nb.name}"
    before = runner.cpu_seconds()
    cli.run_notebook(nb, out)             # in notebooks/, whichever edition nb is
    cpu = runner.cpu_seconds() - before   # this process's share and the kernel's, reaped
    assert cpu <= SMOKE_CPU_S, (
        f"{nb.stem} took {cpu:.0f} s of CPU in smoke (limit {SMOKE_CPU_S} s): smoke is for "
        "CI, seconds per notebook; shrink its smoke= values or use the tiny models there")
    executed = json.loads(out.read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{nb.stem}: {errors[0]['ename']}: {errors[0]['evalue']}"
    progress = tmp_path / "progress.json"
    return executed, json.loads(progress.read_text()) if progress.exists() else {}


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_in_smoke(nb, tmp_path, monkeypatch, private_runs):
    """The instructor edition: runs to the end, logs to the ledger, every exercise it
    hands to a checker passes with the solution in place, and none of it is recorded as a
    learner's progress (the instructor's solutions are not a learner's attempts)."""
    executed, progress = execute(nb, tmp_path, monkeypatch)
    rows = [r for r in ledger.read() if r["notebook"] == nb.stem]
    assert rows, f"{nb.stem} recorded nothing in the ledger"
    assert {r["profile"] for r in rows} == {"smoke"}
    assert progress == {}, f"{nb.stem}: the instructor edition wrote progress: {progress}"
    printed = "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else
                      "".join(o["text"]) for c in executed["cells"] for o in c.get("outputs", []))
    assert profile.SMOKE_NOTICE in printed.replace("\n", " "), \
        f"{nb.stem}: a smoke run must say that its numbers mean nothing"
    verdicts = dict(re.findall(r"Your turn (\d\d\.\d+) \([^\n]*?\): (\w+)", printed))
    assert set(verdicts) == exercise_ids(nb), f"{nb.stem}: exercises run {sorted(verdicts)}"
    failed = {i: v for i, v in verdicts.items() if v != "passed"}
    assert not failed, f"{nb.stem}: the solution does not pass its checker: {failed}"


@pytest.fixture(scope="session")
def student_edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    student.build(out)
    return out


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_student_edition_runs_in_smoke(nb, student_edition, tmp_path, monkeypatch,
                                       private_runs):
    """The student edition: with every solution a stub, the notebook still runs to the
    end, each exercise says "not attempted", and no solution line shows in its outputs."""
    source = nb.with_suffix(".py").read_text(encoding="utf-8")
    if not student.regions(source):
        pytest.skip(f"{nb.stem} has no solution region: its student edition runs the same "
                    "code as the instructor edition")
    executed, progress = execute(student_edition / nb.name, tmp_path, monkeypatch)
    assert set(progress) == exercise_ids(nb)
    tried = {i: r["status"] for i, r in progress.items() if r["status"] != "not attempted"}
    assert not tried, f"{nb.stem}: a stub did not read as not attempted: {tried}"
    outputs = json.dumps([c.get("outputs", []) for c in executed["cells"]])
    leaked = [line for line in student.solution_lines(source) if json.dumps(line)[1:-1] in outputs]
    assert not leaked, f"{nb.stem}: solution lines printed by the student edition: {leaked}"


def test_notebooks_follow_the_conventions():
    assert NOTEBOOKS, "notebooks/ has no NN_name.ipynb"
    for nb in NOTEBOOKS:
        d = json.loads(nb.read_text())
        code = [c for c in d["cells"] if c["cell_type"] == "code"]
        assert nb.with_suffix(".py").exists(), f"{nb.name}: no jupytext .py twin"
        tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, f"{nb.name}: needs exactly one cell tagged 'parameters'"
        assert "PROFILE" in "".join(tagged[0]["source"])
        assert any(o for c in code for o in c.get("outputs", [])), f"{nb.name}: no outputs"
        assert d["metadata"]["kernelspec"]["name"] == "python3"
        assert "papermill" not in d["metadata"] and "widgets" not in d["metadata"]
        assert "colab.research.google.com" in "".join(d["cells"][0]["source"])


def test_notebook_twins_are_in_sync():
    import jupytext

    for nb in NOTEBOOKS:
        paired = jupytext.read(nb.with_suffix(".py"))
        rendered = jupytext.read(nb)
        src_py = [c.source.strip() for c in paired.cells]
        src_nb = [c.source.strip() for c in rendered.cells]
        assert src_py == src_nb, f"{nb.stem}: .py and .ipynb differ; run `jupytext --sync {nb}`"
