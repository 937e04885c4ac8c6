"""Running the course for a class on one GPU server: the nbgitpuller link and collecting
what the learners ran. docs/classroom.md is the instructor's page; classroom/ holds the
hub's configuration.

    labkit classroom-link --hub https://hub.example.edu
    labkit classroom-collect --out collected/

The link, opened by a learner logged in to the hub, pulls the student edition (the
`student` branch) into ~/labkit with nbgitpuller and opens notebook 00; opening it again
later merges new commits without overwriting the learner's edits (nbgitpuller's rule).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import quote, urlencode

from .colab import repo_url

STUDENT_BRANCH = "student"
FIRST_NOTEBOOK = "notebooks/00_setup.ipynb"


def nbgitpuller_link(hub: str, repo: str | None = None, branch: str = STUDENT_BRANCH,
                     path: str = FIRST_NOTEBOOK, app: str = "lab") -> str:
    """A link that clones/updates `repo`@`branch` into the learner's home and opens `path`."""
    if not hub.startswith(("http://", "https://")):
        raise ValueError(f"--hub must be the hub's address, like https://hub.example.edu (got {hub!r})")
    repo = (repo or repo_url()).rstrip("/")
    folder = repo.rsplit("/", 1)[-1].removesuffix(".git")
    query = urlencode({"repo": repo, "branch": branch,
                       "urlpath": f"{app}/tree/{folder}/{path}"}, quote_via=quote)
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def collect(homes: list[Path], out: Path, folder: str = "labkit") -> list[str]:
    """Copy each learner's runs/ledger.jsonl and runs/progress.json into out/<learner>/ and
    join the ledgers into out/ledger.jsonl with a `learner` field. `homes` are the learners'
    home folders (TLJH: /home/jupyter-<name>); returns the learners found."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    found, rows = [], []
    for home in sorted(Path(h) for h in homes):
        runs = home / folder / "runs"
        learner = home.name.removeprefix("jupyter-")
        files = [runs / n for n in ("ledger.jsonl", "progress.json") if (runs / n).is_file()]
        if not files:
            continue
        found.append(learner)
        (out / learner).mkdir(exist_ok=True)
        for f in files:
            shutil.copy2(f, out / learner / f.name)
        if (runs / "ledger.jsonl").is_file():
            for line in (runs / "ledger.jsonl").read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rows.append(json.dumps({"learner": learner, **json.loads(line)},
                                           ensure_ascii=False))
    (out / "ledger.jsonl").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return found
