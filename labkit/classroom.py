"""Running the course for a class on one GPU server: publishing the student edition to a
branch, the nbgitpuller link to it, and collecting what the learners ran.
docs/classroom.md is the instructor's page; classroom/ holds the hub's configuration.

    labkit classroom-publish --branch student 00 01     commit the student edition
    labkit classroom-link --hub https://hub.example.edu
    labkit classroom-collect --out collected/

`publish` commits the student edition (notebooks with stubs and no outputs, their
solutions pages, labkit, data) on top of the branch's last commit, never rewriting it;
notebooks published earlier stay. The link, opened by a learner logged in to the hub,
pulls that branch into ~/labkit with nbgitpuller and opens notebook 00; opening it again
later merges the new commits without overwriting the learner's edits (nbgitpuller's rule).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from .colab import repo_url

ROOT = Path(__file__).resolve().parent.parent
STUDENT_BRANCH = "student"
FOLDER = "labkit"                     # where the link clones to: ~/labkit (the hub config's PYTHONPATH)
FIRST_NOTEBOOK = "notebooks/00_setup.ipynb"
# What a learner's copy holds besides the notebooks (tracked files only).
SHARED = ["labkit", "data", "results", "pyproject.toml", "requirements-models.txt",
          "environment.yml", "setup.sh"]
GITIGNORE = "runs/\ncheckpoints/\n__pycache__/\n.ipynb_checkpoints/\n*.egg-info/\n"


def nbgitpuller_link(hub: str, repo: str | None = None, branch: str = STUDENT_BRANCH,
                     path: str = FIRST_NOTEBOOK, app: str = "lab") -> str:
    """A link that clones/updates `repo`@`branch` into ~/labkit and opens `path`."""
    if not hub.startswith(("http://", "https://")):
        raise ValueError(f"--hub must be the hub's address, like https://hub.example.edu (got {hub!r})")
    repo = (repo or repo_url()).rstrip("/")
    # targetpath: always ~/labkit, whatever a fork's repository is called, because the
    # hub config puts ~/labkit on the learners' PYTHONPATH.
    query = urlencode({"repo": repo, "branch": branch, "targetpath": FOLDER,
                       "urlpath": f"{app}/tree/{FOLDER}/{path}"}, quote_via=quote)
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


# --- publishing the student edition ------------------------------------------------------

@dataclass
class Published:
    branch: str
    commit: str                 # the branch's tip after publishing
    parent: str | None          # its tip before (None: the branch is new)
    notebooks: list[str]        # the stems this call wrote
    changed: bool               # False: the branch already held exactly this edition


def _git(*args: str, git_dir: Path | None = None, env: dict | None = None,
         cwd: Path | None = None) -> str:
    cmd = ["git"] + ([f"--git-dir={git_dir}"] if git_dir else []) + list(args)
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _select(stems: list[str], wanted: list[str] | None) -> list[str]:
    if not wanted:
        return stems
    chosen = []
    for w in wanted:
        hits = [s for s in stems if s == w or s.startswith(f"{w}_") or s[:2] == w.zfill(2)]
        if not hits:
            raise ValueError(f"no notebook {w!r}: choose among {', '.join(stems)}")
        chosen += [s for s in hits if s not in chosen]
    return chosen


def _committer_env() -> dict:
    env = dict(os.environ)
    if subprocess.run(["git", "config", "user.email"], capture_output=True).returncode:
        for who in ("AUTHOR", "COMMITTER"):     # a fresh CI machine may have no git identity
            env.setdefault(f"GIT_{who}_NAME", "labkit classroom-publish")
            env.setdefault(f"GIT_{who}_EMAIL", "labkit@localhost")
    return env


def publish(repo: str | Path = ".", branch: str = STUDENT_BRANCH,
            notebooks: list[str] | None = None, source: Path = ROOT) -> Published:
    """Commit the student edition of `notebooks` (numbers or stems; default all) to
    `branch` of the git repository `repo` (a clone or a bare repository), as a new commit
    on top of the branch's tip. Notebooks published earlier and not named stay as they
    are; labkit, data and the other shared files are replaced by this checkout's. Neither
    `repo`'s working tree nor its HEAD is touched."""
    from . import student

    git_dir = Path(_git("rev-parse", "--absolute-git-dir", cwd=Path(repo)))
    if _git("rev-parse", "--is-bare-repository", cwd=Path(repo)) == "false":
        head = subprocess.run(["git", f"--git-dir={git_dir}", "symbolic-ref", "-q", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        if head == f"refs/heads/{branch}":
            raise ValueError(f"{repo} has {branch!r} checked out: check out another branch "
                             "there first (publishing writes the branch, not the working tree)")
    try:
        tracked = _git("ls-files", "-z", "--", *SHARED, cwd=source).split("\0")
    except RuntimeError:
        raise ValueError(f"{source} is not a git checkout of the course: publish from a "
                         "clone of the instructor's repository") from None
    ref = f"refs/heads/{branch}"
    parent = subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", "-q", "--verify",
                             f"{ref}^{{commit}}"], capture_output=True, text=True).stdout.strip() or None
    with tempfile.TemporaryDirectory(prefix="labkit-publish-") as tmp:
        tmp = Path(tmp)
        stems = _select(sorted(p.stem for p in student.NOTEBOOKS.glob("[0-9][0-9]_*.py")),
                        notebooks)
        # The builder reads a notebooks folder: one holding the chosen sources (and every
        # file that is not a notebook), so that only those are built.
        chosen = tmp / "notebooks"
        chosen.mkdir()
        for f in student.NOTEBOOKS.iterdir():
            if f.stem in stems or not (f.name[:2].isdigit() and f.suffix in (".py", ".ipynb")):
                (chosen / f.name).symlink_to(f)
        built = student.build(tmp / "built", notebooks=chosen)
        for stem in built:
            _stable_cell_ids(tmp / "built" / f"{stem}.ipynb", stem)
        tree = tmp / "tree"
        for rel in filter(None, tracked):
            if (source / rel).is_file():
                (tree / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / rel, tree / rel)
        # The builder's files: those of the chosen notebooks, and any not tied to one notebook.
        for f in sorted(p for p in (tmp / "built").rglob("*") if p.is_file()):
            owner = next((s for s in built if f.stem == s or f.name.startswith(f"{s}.")), None)
            if owner is None or owner in stems:
                dest = tree / "notebooks" / f.relative_to(tmp / "built")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dest)
        (tree / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
        (tree / "README.md").write_text(_student_readme(), encoding="utf-8")
        env = {**_committer_env(), "GIT_INDEX_FILE": str(tmp / "index"),
               "GIT_WORK_TREE": str(tree)}
        g = lambda *a: _git(*a, git_dir=git_dir, env=env, cwd=tree)  # noqa: E731
        if parent:                  # start from what the branch holds: earlier notebooks stay
            g("read-tree", parent)
        else:
            g("read-tree", "--empty")
        g("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *SHARED)
        g("add", "-f", "--ignore-removal", "--", ".")
        new_tree = g("write-tree")
        if parent and new_tree == g("rev-parse", f"{parent}^{{tree}}"):
            return Published(branch, parent, parent, stems, changed=False)
        src = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=source,
                             capture_output=True, text=True).stdout.strip() or "?"
        message = (f"Student edition: {', '.join(stems)}\n\nBuilt by `labkit classroom-publish` "
                   f"from {src}: exercise stubs, no outputs, solutions pages.")
        commit = g("commit-tree", new_tree, *(["-p", parent] if parent else []), "-m", message)
        g("update-ref", "-m", "labkit classroom-publish", ref, commit, parent or "0" * 40)
    return Published(branch, commit, parent, stems, changed=True)


def _stable_cell_ids(path: Path, stem: str) -> None:
    """Cell ids that do not change from one build to the next (the builder draws new
    random ones), so republishing an unchanged notebook changes nothing and nbgitpuller's
    merge meets no spurious differences in a notebook the learner edited."""
    import hashlib

    import nbformat

    if not path.is_file():
        return
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        cell["id"] = hashlib.sha256(f"{stem}:{i}".encode()).hexdigest()[:8]
    nbformat.write(nb, path)


def _student_readme() -> str:
    return ("# The course, student edition\n\n"
            "Open `notebooks/00_setup.ipynb` first. Each \"your turn\" cell is yours to "
            "complete: its checker says whether your code works and gives hints; the "
            "solution is in `notebooks/solutions/` when you want it. Your results go to "
            "`runs/` (never committed), and `labkit progress` lists the exercises you have "
            "passed.\n\nThis branch is written by `labkit classroom-publish`; new notebooks "
            "arrive as new commits, and pulling them keeps your edits.\n")


# --- collecting what learners ran --------------------------------------------------------

@dataclass
class Collected:
    learners: list[str] = field(default_factory=list)          # those with files, collected
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (home, why), not collected


def _read_learner(runs: Path) -> tuple[dict[str, bytes], list[dict]]:
    """The learner's two files as bytes, and their ledger rows; ValueError if either is
    not what labkit writes. PermissionError if the home cannot be read."""
    files = {n: (runs / n).read_bytes() for n in ("ledger.jsonl", "progress.json")
             if (runs / n).is_file()}
    rows = []
    for i, line in enumerate(files.get("ledger.jsonl", b"").decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"runs/ledger.jsonl line {i} is not JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"runs/ledger.jsonl line {i} is not a JSON object")
            rows.append(row)
    if "progress.json" in files:
        try:
            json.loads(files["progress.json"])
        except json.JSONDecodeError as e:
            raise ValueError(f"runs/progress.json is not JSON ({e.msg})") from None
    return files, rows


def collect(homes: list[Path], out: Path, folder: str = FOLDER) -> Collected:
    """Copy each learner's runs/ledger.jsonl and runs/progress.json into out/<learner>/ and
    join the ledgers into out/ledger.jsonl with a `learner` field. `homes` are the learners'
    home folders (TLJH: /home/jupyter-<name>). A home whose files cannot be read, or whose
    ledger or progress is corrupt, is skipped whole and named in `.skipped`; the others are
    collected as usual."""
    out = Path(out)
    got = Collected()
    rows, files_of = [], {}
    for home in sorted(Path(h) for h in homes):
        learner = home.name.removeprefix("jupyter-")
        try:
            if home.is_dir() and not os.access(home, os.R_OK | os.X_OK):
                raise PermissionError(13, "permission denied", str(home))
            files, learner_rows = _read_learner(home / folder / "runs")
        except PermissionError as e:
            got.skipped.append((str(home), f"cannot read it ({e.strerror}): run as root"))
            continue
        except (ValueError, UnicodeDecodeError) as e:
            got.skipped.append((str(home), f"{e}; fix or move the file, then collect again"))
            continue
        if not files:
            continue
        got.learners.append(learner)
        files_of[learner] = files
        rows += [{"learner": learner, **r} for r in learner_rows]
    out.mkdir(parents=True, exist_ok=True)
    for learner, files in files_of.items():
        (out / learner).mkdir(exist_ok=True)
        for name, content in files.items():
            (out / learner / name).write_bytes(content)
    joined = out / "ledger.jsonl"
    tmp = joined.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                   encoding="utf-8")
    os.replace(tmp, joined)
    return got
