"""Profiles of notebook runs: the LABKIT_PYSPY hook and scripts/profile_report.py."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import ledger, profiling

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import profile_report  # noqa: E402

CELL = ("<module> (ipykernel_launcher.py:18);IPKernelApp.start (ipykernel/kernelapp.py:768);"
        "InteractiveShell.run_code (IPython/core/interactiveshell.py:3508);"
        "<module> (3837128963.py:8)")
FIT = f"{CELL};train_translator (3837128963.py:2);fit (labkit/train.py:570);train_step (labkit/train.py:345)"


def test_without_the_variable_nothing_is_started(monkeypatch, tmp_path):
    monkeypatch.delenv(profiling.ENV, raising=False)
    monkeypatch.setenv("LABKIT_LEDGER", str(tmp_path / "l.jsonl"))
    run = ledger.Run("01_seq2seq_translator", profile="smoke")
    assert run.recorder is None
    run.finish()


def test_a_relative_folder_is_taken_from_the_course_folder(monkeypatch):
    monkeypatch.setenv(profiling.ENV, "runs/profiles")
    assert profiling.folder() == profiling.ROOT / "runs" / "profiles"


def test_report_charges_each_sample_to_the_labkit_call_and_its_activity(tmp_path):
    (tmp_path / "01.txt").write_text("\n".join([
        f"{FIT};forward_backward (labkit/train.py:316);Tensor.backward (torch/_tensor.py:623);"
        "backward (torch/autograd/__init__.py:395) 60",
        f"{FIT};forward_backward (labkit/train.py:310);_call_impl (torch/nn/modules/module.py:1784)"
        ";forward (labkit/seq2seq.py:240) 25",
        f"{FIT};step (torch/optim/adamw.py:200) 5",
        f"{CELL};load (labkit/data.py:120);load_dataset (datasets/load.py:10) 6",
        f"{CELL};show (matplotlib/pyplot.py:646) 2",
        "<module> (ipykernel_launcher.py:18);Kernel.shell_main (ipykernel/kernelbase.py:678) 2",
    ]) + "\n")
    (tmp_path / "01.json").write_text(json.dumps({"notebook": "01_seq2seq_translator",
                                                  "profile": "quick", "rate": 20}))
    out = tmp_path / "profiles.md"
    assert profile_report.main([str(tmp_path), "--out", str(out)]) == 0
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows == ["| `labkit.train.fit`: backward | 60% |",
                    "| `labkit.train.fit`: model forward | 25% |",
                    "| `labkit.data.load`: data loading | 6% |"]
    assert "`labkit.train.fit` 90%" in text and "the kernel's own work 2%" in text


def test_report_without_profiles_says_how_to_make_them(tmp_path, capsys):
    assert profile_report.main([str(tmp_path), "--out", str(tmp_path / "p.md")]) == 2
    assert "LABKIT_PYSPY=" in capsys.readouterr().err
    assert not (tmp_path / "p.md").exists()


@pytest.mark.skipif(shutil.which("py-spy") is None, reason="py-spy is not installed")
def test_a_run_records_its_own_profile_until_finish(tmp_path):
    code = ("import time\nfrom labkit import ledger\n"
            "run = ledger.Run('02_word2vec', profile='smoke')\n"
            "def busy():\n    return sum(i * i for i in range(20000))\n"
            "t = time.perf_counter()\nwhile time.perf_counter() - t < 1.5:\n    busy()\n"
            "run.finish()\n")
    env = {**os.environ, profiling.ENV: str(tmp_path), "LABKIT_LEDGER": str(tmp_path / "l.jsonl"),
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    if "could not attach" in done.stdout:
        pytest.skip("py-spy may not attach to a process here: " + done.stdout.strip())
    assert done.returncode == 0, done.stderr
    samples = (tmp_path / "02.txt").read_text()
    assert "busy (<string>" in samples
    meta = json.loads((tmp_path / "02.json").read_text())
    assert meta["notebook"] == "02_word2vec" and meta["rate"] == profiling.RATE
    assert not list(tmp_path.glob("*.part"))
    assert profile_report.main([str(tmp_path), "--out", str(tmp_path / "p.md")]) == 0


def test_a_librarys_worker_threads_count_as_that_library(tmp_path):
    (tmp_path / "02.txt").write_text(
        "Thread._bootstrap (threading.py:1002);Thread._bootstrap_inner (threading.py:1045);"
        "Word2Vec._worker_loop (gensim/models/word2vec.py:1100) 30\n"
        "Thread._bootstrap (threading.py:1002);ParentPollerUnix.run (ipykernel/parentpoller.py:62) 10\n"
        f"{FIT};batch_stream (labkit/batching.py:200);SkipGramBatches.pairs (labkit/word2vec.py:190) 60\n")
    out = tmp_path / "p.md"
    assert profile_report.main([str(tmp_path), "--out", str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith("| `")]
    assert rows == ["| `labkit.train.fit`: batching | 60% |",
                    "| `gensim (its own threads)`: its worker threads | 30% |"]
