"""JupyterHub settings for running the course on one multi-GPU server.

With The Littlest JupyterHub (TLJH), copy this file to
/opt/tljh/config/jupyterhub_config.d/labkit.py and run `sudo tljh-config reload hub`.
Each learner's server then sees one GPU (CUDA_VISIBLE_DEVICES) and imports labkit from
their own copy of the course, ~/labkit, which the nbgitpuller link fills (see
docs/classroom.md).

GPUs: a learner listed in the roster (a CSV file, `user,gpu`, default
/opt/tljh/config/gpus.csv, or LABKIT_GPU_ROSTER) gets that GPU; list a group's members
with the same number to share one. Anyone else gets a fixed GPU chosen from their user
name, spread over the LABKIT_GPUS GPUs (default: as many as `nvidia-smi -L` lists).
"""

import csv
import hashlib
import os
import subprocess
from pathlib import Path

ROSTER = Path(os.environ.get("LABKIT_GPU_ROSTER", "/opt/tljh/config/gpus.csv"))


def gpu_count() -> int:
    if os.environ.get("LABKIT_GPUS"):
        return int(os.environ["LABKIT_GPUS"])
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
        return max(1, sum(line.startswith("GPU ") for line in listed.stdout.splitlines()))
    except (OSError, subprocess.SubprocessError):
        return 1


def roster(path: Path = ROSTER) -> dict:
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["user"].strip(): row["gpu"].strip() for row in csv.DictReader(f)}


def gpu_for(user: str, assigned: dict, n: int) -> str:
    if user in assigned:
        return assigned[user]
    return str(int(hashlib.sha256(user.encode()).hexdigest(), 16) % n)


def learner_home(spawner) -> str:
    # TLJH makes a system user jupyter-<name> for each hub user, home /home/jupyter-<name>;
    # a spawner that names the home itself (SimpleLocalProcessSpawner's home_dir) wins.
    return getattr(spawner, "home_dir", "") or f"/home/jupyter-{spawner.user.name}"


c = get_config()  # noqa: F821  (JupyterHub provides get_config when it loads this file)
c.Spawner.default_url = "/lab"
c.Spawner.environment.update({
    "CUDA_VISIBLE_DEVICES": lambda spawner: gpu_for(spawner.user.name, roster(), gpu_count()),
    # The learner's own copy of labkit comes first, so its data/, runs/ and checkpoints/
    # are the ones in their home; the hub-wide install only provides the dependencies.
    "PYTHONPATH": lambda spawner: f"{learner_home(spawner)}/labkit",
    # The learners' profile and CPU threads: set LABKIT_PROFILE (e.g. quick, for a
    # shorter session) or LABKIT_LEARNER_THREADS in the hub's environment to change them.
    "LABKIT_PROFILE": os.environ.get("LABKIT_PROFILE", "full"),
    "HF_HUB_OFFLINE": "0",
    "OMP_NUM_THREADS": os.environ.get("LABKIT_LEARNER_THREADS", "4"),
})
