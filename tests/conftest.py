"""Shared test setup: one torch thread per process (tests run in parallel with xdist),
headless progress, and a private ledger/checkpoint folder for each test session."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["LABKIT_HEADLESS"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def private_runs(tmp_path, monkeypatch):
    """Ledger rows written by a test go to its own folder, never to the repo's runs/."""
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path / "runs"))
    yield tmp_path / "runs"
