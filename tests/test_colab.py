"""Colab badges and setup cells: generated from one URL, in sync, and the setup path works.

The slow test walks the Colab path without Colab: a stand-in `google.colab` module, a
fresh virtual environment, the course cloned from a local bare clone of this repository,
then notebook 00 executed in `smoke` with the labkit the setup cell installed.
"""

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from labkit import colab

ROOT = Path(__file__).resolve().parent.parent
SOURCES = colab.notebooks()


def _cell_sources(path: Path) -> list[str]:
    return [c.source.strip() for c in jupytext.read(path).cells]


def test_repository_url_is_read_from_pyproject():
    url = colab.repo_url()
    assert url.startswith("https://github.com/")
    assert "colab.research.google.com/github/" + url.split("github.com/")[1] in colab.badge("00_setup")


def test_repository_url_must_be_on_github(tmp_path):
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\nname = "x"\n[project.urls]\nRepository = "https://example.org/x"\n')
    with pytest.raises(ValueError, match="GitHub URL"):
        colab.repo_url(bad)


@pytest.mark.parametrize("py", SOURCES, ids=[p.stem for p in SOURCES])
def test_every_notebook_has_the_generated_badge_and_setup_cell(py):
    url = colab.repo_url()
    setup = colab.setup_source(url)
    for path in (py, py.with_suffix(".ipynb")):
        nb = jupytext.read(path)
        assert colab.badge(py.stem, url) in nb.cells[0].source, \
            f"{path.name}: Colab badge out of date; run `labkit colab --write`"
        tagged = [c for c in nb.cells if "colab-setup" in c.metadata.get("tags", [])]
        assert [c.source for c in tagged] == [setup], \
            f"{path.name}: colab-setup cell out of date; run `labkit colab --write`"
    assert not colab.write(check=True), "run `labkit colab --write`"


def test_setup_cell_installs_only_what_colab_lacks():
    src = colab.setup_source("https://github.com/o/n")
    assert "labkit/colab.py install course" in src and "[course]" not in src
    assert "torch" in colab.PINNED and "jupyter-server" in colab.PINNED
    colab_extra = _extra("colab")
    assert not any(p.startswith(("jupyterlab", "jupyter-server", "notebook", "jupytext"))
                   for p in colab_extra)


def _extra(name: str) -> list[str]:
    return colab.read_project()["optional-dependencies"][name]


def test_missing_requirements_are_the_unsatisfied_ones(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["torch>=1.0", "torch>=999", "no-such-pkg-xyz>=1"]\n'
        '[project.optional-dependencies]\ncolab = ["numpy", "numpy<0.1; python_version < \'3\'"]\n')
    assert colab.missing_requirements(tmp_path / "pyproject.toml") == ["torch>=999", "no-such-pkg-xyz>=1"]


def test_a_new_notebook_gets_both_cells_in_both_files(tmp_path):
    py = tmp_path / "10_new.py"
    py.write_text('# %% [markdown]\n# # 10 · Something new\n#\n# Intro.\n\n'
                  '# %% tags=["parameters"]\nPROFILE = "quick"\n\n# %%\nprint(PROFILE)\n')
    jupytext.write(jupytext.read(py), py.with_suffix(".ipynb"))
    changed = colab.write(tmp_path, url="https://github.com/o/n")
    assert sorted(p.name for p in changed) == ["10_new.ipynb", "10_new.py"]
    assert not colab.write(tmp_path, check=True, url="https://github.com/o/n")   # idempotent
    assert _cell_sources(py) == _cell_sources(py.with_suffix(".ipynb"))
    cells = jupytext.read(py.with_suffix(".ipynb")).cells
    assert "# 10 · Something new" in cells[0].source
    assert "github/o/n/blob/main/notebooks/10_new.ipynb" in cells[0].source
    assert cells[1].metadata["tags"] == ["colab-setup"] and cells[2].metadata["tags"] == ["parameters"]


def test_a_notebook_without_a_parameters_cell_is_refused(tmp_path):
    (tmp_path / "11_bad.py").write_text("# %% [markdown]\n# # 11 · Bad\n\n# %%\nx = 1\n")
    with pytest.raises(ValueError, match="parameters"):
        colab.write(tmp_path, url="https://github.com/o/n")


@pytest.mark.slow
def test_colab_setup_cell_in_a_fresh_environment(tmp_path):
    """Clone from a local bare repository, install into a new venv (the packages of the
    environment this suite runs in visible, as Colab's are), then run notebook 00 in smoke
    with that labkit."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    bare = tmp_path / "labkit.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(ROOT), str(bare)], check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = venv / "bin" / "python"
    # --system-site-packages exposes the base interpreter's packages; when this suite runs
    # in a virtual environment its packages are elsewhere, so the stand-in runtime gets
    # them too: a .pth file adds the running environment's site-packages (with their own
    # .pth files, editable installs included) after its own.
    if sys.prefix != sys.base_prefix:
        outer = [p for p in site.getsitepackages() if Path(p).is_dir()]
        inner = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"],
                               capture_output=True, text=True, check=True).stdout.strip()
        (Path(inner) / "_running_suite.pth").write_text(
            "import site; " + "; ".join(f"site.addsitedir({p!r})" for p in outer) + "\n")
    stub = tmp_path / "stub"                        # the stand-in google.colab
    (stub / "google" / "colab").mkdir(parents=True)
    (stub / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s module."""\n')
    (stub / "sitecustomize.py").write_text("import google.colab  # as Colab's kernel has it\n")
    content = tmp_path / "content"                 # Colab's working folder
    content.mkdir()
    nb = json.loads((ROOT / "notebooks" / "00_setup.ipynb").read_text())
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "wherefrom",
                        "metadata": {}, "outputs": [],
                        "source": ["import labkit\n", "print('LABKIT FROM', labkit.__file__)"]})
    (content / "00_setup.ipynb").write_text(json.dumps(nb))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", PYTHONPATH=str(stub),
               LABKIT_CLONE_URL=bare.as_uri(), LABKIT_PROFILE="smoke", LABKIT_HEADLESS="1",
               LABKIT_RUNS=str(tmp_path / "runs"), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")

    def installed() -> dict[str, str]:
        out = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"], env=env,
                             capture_output=True, text=True, check=True).stdout
        return dict(line.split("==", 1) for line in out.splitlines() if "==" in line)

    before = installed()
    subprocess.run([str(py), "-m", "papermill", "--cwd", str(content), "-k", "python3",
                    str(content / "00_setup.ipynb"), str(content / "out.ipynb")],
                   env=env, check=True, timeout=900)
    out = json.loads((content / "out.ipynb").read_text())
    text = "".join(t for c in out["cells"] for o in c.get("outputs", [])
                   for t in o.get("text", []))
    assert f"LABKIT FROM {content / 'course' / 'labkit' / '__init__.py'}" in text
    assert "set-up verified: smoke profile" in text
    after = installed()
    assert after.get("labkit") == "0.1.0"
    changed = {k: (v, after.get(k)) for k, v in before.items() if k != "labkit" and after.get(k) != v}
    assert not changed, f"the setup cell changed packages the runtime already had: {changed}"
    where = subprocess.run([str(py), "-m", "pip", "show", "labkit"], env=env, capture_output=True,
                           text=True, check=True).stdout
    assert str(content / "course") in where
