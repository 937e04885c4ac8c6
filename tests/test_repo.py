"""The repository keeps its promises: README set-up = what CI runs, files in place."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Set-up: two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines()]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    install_and_run, test = readme_commands()
    assert install_and_run == "bash setup.sh && labkit run"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash setup.sh" in ci
    assert re.search(rf"^{re.escape(test)}$", ci, re.MULTILINE), "README test command not in .ci/run"


def test_layout():
    for path in ("notebooks", "labkit", "data", "environment.yml", "tests", "README.md",
                 "data/README.md", "data/manifest.json", "requirements-models.txt", "setup.sh"):
        assert (ROOT / path).exists(), path


def test_no_unsafe_loading_in_code():
    for py in list((ROOT / "labkit").glob("*.py")) + list((ROOT / "notebooks").glob("*.py")):
        src = py.read_text()
        assert "trust_remote_code=True" not in src, py
        for call in re.findall(r"torch\.load\([^)]*\)", src):
            assert "weights_only=True" in call, f"{py}: {call}"
