"""Saving a notebook in JupyterLab leaves its .py twin byte-identical.

JupyterLab saves through jupytext's contents manager; the notebook it sends carries the
running kernel's name and language_info. The save goes through that same contents manager
here, with the repository's jupytext.toml, on a copy of notebooks/.
"""

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.fixture
def contents_manager(tmp_path):
    from jupyter_server.services.contents.largefilemanager import LargeFileManager
    from jupytext.sync_contentsmanager import build_sync_jupytext_contents_manager_class

    shutil.copy(ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns("*.png", "__pycache__", ".ipynb_checkpoints"))
    cls = build_sync_jupytext_contents_manager_class(LargeFileManager)
    return cls(root_dir=str(tmp_path)), tmp_path


def test_jupytext_config_is_committed():
    text = (ROOT / "jupytext.toml").read_text()
    assert 'formats = "ipynb,py:percent"' in text


@pytest.mark.parametrize("py", SOURCES, ids=[p.stem for p in SOURCES])
def test_saving_in_jupyterlab_leaves_the_py_unchanged(py, contents_manager):
    cm, root = contents_manager
    before = (root / "notebooks" / py.name).read_bytes()
    model = cm.get(f"notebooks/{py.stem}.ipynb")
    meta = model["content"]["metadata"]
    # What JupyterLab writes back after running the notebook with ipykernel's kernel:
    meta["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                          "name": "python3"}
    meta.setdefault("language_info", {})["version"] = "3.99.0"
    for cell in model["content"]["cells"]:
        if cell["cell_type"] == "code":
            cell["execution_count"] = 1
    cm.save(model, f"notebooks/{py.stem}.ipynb")
    after = (root / "notebooks" / py.name).read_bytes()
    assert after == before, f"{py.name}: a save in JupyterLab rewrites it; see jupytext.toml"


def test_jupytext_write_of_the_pair_leaves_the_py_unchanged(tmp_path):
    import jupytext

    shutil.copy(ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    for py in SOURCES:
        copy = tmp_path / py.name
        shutil.copy(py, copy)
        config = jupytext.config.load_jupytext_config(str(tmp_path))
        nb = jupytext.read(py.with_suffix(".ipynb"))
        jupytext.write(nb, copy, fmt="py:percent", config=config)
        assert copy.read_bytes() == py.read_bytes(), f"{py.name}: jupytext.write changes it"
