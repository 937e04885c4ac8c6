"""Every notebook runs end to end in the smoke profile (papermill, a real kernel).

A new notebook is covered the day it lands: the list is read from notebooks/. Run them in
parallel with `pytest -n 2` (conftest sets one torch thread per process).
"""

import json
import os
from pathlib import Path

import pytest

from labkit import cli, ledger

NOTEBOOKS = sorted(Path(__file__).resolve().parent.parent.joinpath("notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_in_smoke(nb, tmp_path, monkeypatch, private_runs):
    monkeypatch.setenv("LABKIT_PROFILE", "smoke")
    monkeypatch.setenv("LABKIT_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / nb.name
    cli.run_notebook(nb, out)
    executed = json.loads(out.read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    rows = [r for r in ledger.read() if r["notebook"] == nb.stem]
    assert rows, f"{nb.stem} recorded nothing in the ledger"
    assert {r["profile"] for r in rows} == {"smoke"}


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
