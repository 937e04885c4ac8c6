"""Classroom server files: the nbgitpuller link, the hub config (loaded as JupyterHub loads
it), the TLJH config, and collecting learners' ledgers."""

import json
import runpy
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from traitlets.config import Config

from labkit import classroom, cli, student

ROOT = Path(__file__).resolve().parent.parent


def test_nbgitpuller_link_pulls_the_student_branch_and_opens_00():
    link = classroom.nbgitpuller_link("https://hub.example.edu/", repo="https://github.com/o/course")
    parts = urlsplit(link)
    assert parts.netloc == "hub.example.edu" and parts.path == "/hub/user-redirect/git-pull"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q == {"repo": "https://github.com/o/course", "branch": "student", "targetpath": "labkit",
                 "urlpath": "lab/tree/labkit/notebooks/00_setup.ipynb"}


def test_link_command_uses_the_project_url(capsys):
    assert cli.main(["classroom-link", "--hub", "https://hub.example.edu"]) == 0
    assert "repo=https%3A%2F%2Fgithub.com%2Flabkit-course%2Flabkit" in capsys.readouterr().out


def test_link_needs_the_hub_address():
    with pytest.raises(ValueError, match="hub's address"):
        classroom.nbgitpuller_link("hub.example.edu")


def _hub_environment(monkeypatch, gpus="4"):
    monkeypatch.setenv("LABKIT_GPU_ROSTER", str(ROOT / "classroom" / "gpus.csv"))
    monkeypatch.setenv("LABKIT_GPUS", gpus)
    c = Config()
    runpy.run_path(str(ROOT / "classroom" / "jupyterhub_config.py"), {"get_config": lambda: c})
    return c, c.Spawner.environment.get_value({})


def test_hub_config_gives_each_learner_one_gpu_and_their_own_labkit(monkeypatch):
    c, env = _hub_environment(monkeypatch)
    assert c.Spawner.default_url == "/lab"

    def spawn(name):
        s = SimpleNamespace(user=SimpleNamespace(name=name))
        return {k: (v(s) if callable(v) else v) for k, v in env.items()}

    assert spawn("alice")["CUDA_VISIBLE_DEVICES"] == "0" == spawn("bob")["CUDA_VISIBLE_DEVICES"]
    assert spawn("carol")["CUDA_VISIBLE_DEVICES"] == "1"
    other = spawn("zoe")["CUDA_VISIBLE_DEVICES"]
    assert other in {"0", "1", "2", "3"} and other == spawn("zoe")["CUDA_VISIBLE_DEVICES"]
    assert len({spawn(f"learner{i}")["CUDA_VISIBLE_DEVICES"] for i in range(40)}) == 4
    assert spawn("alice")["PYTHONPATH"] == "/home/jupyter-alice/labkit"


def test_tljh_config_loads():
    cfg = yaml.safe_load((ROOT / "classroom" / "tljh-config.yaml").read_text())
    assert cfg["user_environment"]["default_app"] == "jupyterlab"
    assert cfg["limits"]["memory"].endswith("G") and cfg["users"]["admin"]


def test_collect_joins_ledgers_and_copies_progress(tmp_path, capsys):
    for name, n in (("jupyter-alice", 2), ("jupyter-bob", 1)):
        runs = tmp_path / "home" / name / "labkit" / "runs"
        runs.mkdir(parents=True)
        (runs / "ledger.jsonl").write_text("".join(
            json.dumps({"notebook": "00_setup", "metric": "m", "value": i}) + "\n" for i in range(n)))
        (runs / "progress.json").write_text(json.dumps({"00_setup": "done"}))
    (tmp_path / "home" / "jupyter-carol").mkdir()          # never ran anything
    out = tmp_path / "collected"
    assert cli.main(["classroom-collect", "--homes", str(tmp_path / "home" / "jupyter-*"),
                     "--out", str(out)]) == 0
    assert "2 learner(s) with runs, of 3 home(s)" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert [r["learner"] for r in rows] == ["alice", "alice", "bob"]
    assert json.loads((out / "bob" / "progress.json").read_text()) == {"00_setup": "done"}


def _git(*args, cwd=None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_publish_adds_commits_to_the_student_branch_without_rewriting_it(tmp_path, capsys):
    bare = tmp_path / "course.git"
    _git("init", "-q", "--bare", str(bare))
    assert cli.main(["classroom-publish", "--repo", str(bare), "00"]) == 0
    first = _git(f"--git-dir={bare}", "rev-parse", "student")
    assert cli.main(["classroom-publish", "--repo", str(bare), "00"]) == 0
    assert "unchanged" in capsys.readouterr().out.splitlines()[-1]
    assert _git(f"--git-dir={bare}", "rev-parse", "student") == first   # nothing new to say
    assert cli.main(["classroom-publish", "--repo", str(bare), "1"]) == 0
    second = _git(f"--git-dir={bare}", "rev-parse", "student")
    assert _git(f"--git-dir={bare}", "rev-parse", f"{second}^") == first   # on top, not instead
    files = _git(f"--git-dir={bare}", "ls-tree", "-r", "--name-only", "student").splitlines()
    nbs = sorted(f for f in files if f.startswith("notebooks/"))
    assert nbs == ["notebooks/00_setup.ipynb", "notebooks/01_seq2seq_translator.ipynb",
                   "notebooks/solutions/00_setup.md", "notebooks/solutions/01_seq2seq_translator.md"]
    assert "labkit/classroom.py" in files and "data/manifest.json" in files
    assert not [f for f in files if f.startswith(("tests/", "classroom/", ".ci/"))]
    for stem in ("00_setup", "01_seq2seq_translator"):
        nb = json.loads(_git(f"--git-dir={bare}", "show", f"student:notebooks/{stem}.ipynb"))
        assert not [c for c in nb["cells"] if c.get("outputs")]
        source = "".join("".join(c["source"]) for c in nb["cells"])
        assert "NotImplementedError" in source and "BEGIN SOLUTION" not in source
        assert not [line for line in student.solution_lines((ROOT / "notebooks" / f"{stem}.py").read_text())
                    if line in source]


def test_publish_refuses_a_checked_out_branch_and_names_unknown_notebooks(tmp_path):
    repo = tmp_path / "clone"
    _git("init", "-q", "-b", "student", str(repo))
    with pytest.raises(SystemExit, match="checked out"):
        cli.main(["classroom-publish", "--repo", str(repo)])
    bare = tmp_path / "course.git"
    _git("init", "-q", "--bare", str(bare))
    with pytest.raises(SystemExit, match="no notebook '77'"):
        cli.main(["classroom-publish", "--repo", str(bare), "77"])
    assert not _git(f"--git-dir={bare}", "for-each-ref")                   # nothing written
