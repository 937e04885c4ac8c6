"""The ledger, the profiles and the command line."""

import json

import pytest

from labkit import cli, ledger, metrics, profile


def test_ledger_rows_summary_and_table(private_runs):
    for seed, acc in [(0, 0.70), (1, 0.74), (2, 0.72)]:
        ledger.Run("04_head_replacement", profile="quick", seed=seed).log("acc_full_ft@128", acc)
    run = ledger.Run("04_head_replacement", profile="quick", seed=0)
    run.log("acc_full_ft@128", 0.71)        # a rerun replaces seed 0's row
    rows = ledger.read()
    assert len(rows) == 4
    row = rows[0]
    for key in ("notebook", "metric", "value", "profile", "seed", "device", "wall_s", "versions"):
        assert key in row
    assert set(row["versions"]) >= {"torch", "transformers", "datasets", "python"}
    (s,) = ledger.summary()
    assert s["seeds"] == [0, 1, 2]
    assert s["mean"] == pytest.approx((0.71 + 0.74 + 0.72) / 3)
    text = ledger.table()
    assert "acc_full_ft@128" in text and "±" in text
    assert ledger.table(markdown=True).startswith("| notebook | metric |")


def test_ledger_refuses_bad_values_and_profiles():
    run = ledger.Run("00_setup", profile="smoke")
    with pytest.raises(ValueError, match="finite"):
        run.log("x", float("nan"))
    with pytest.raises(ValueError, match="smoke, quick, full"):
        ledger.Run("00_setup", profile="fast")


def test_ledger_reports_a_broken_line(private_runs):
    private_runs.mkdir(parents=True)
    (private_runs / "ledger.jsonl").write_text('{"a": 1}\nnot json\n')
    with pytest.raises(ValueError, match="ledger.jsonl:2"):
        ledger.read()


def test_empty_ledger_says_what_to_do():
    assert "labkit run" in ledger.table()


def test_profiles():
    assert profile.choose("smoke", smoke=1, quick=2) == 1
    assert profile.choose("full", smoke=1, quick=2) == 2
    assert profile.choose("full", smoke=1, quick=2, full=3) == 3
    with pytest.raises(ValueError, match="unknown profile"):
        profile.choose("medium", smoke=1, quick=2)


def test_metrics():
    assert metrics.accuracy([1, 0, 1, 1], [1, 0, 0, 1]) == 0.75
    assert metrics.macro_f1([1, 1, 1, 1], [1, 1, 0, 0]) == pytest.approx((2 / 3 + 0) / 2)
    assert metrics.bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100)
    assert metrics.bleu(["a b c d"], ["w x y z"]) == pytest.approx(0)
    assert metrics.perplexity(0.0) == 1.0
    assert metrics.mean_std([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5))
    with pytest.raises(ValueError):
        metrics.accuracy([1], [1, 0])
    with pytest.raises(ValueError):
        metrics.bleu([], [])


def test_find_notebooks_by_number_and_errors():
    all_nbs = cli.find_notebooks([])
    assert all_nbs, "notebooks/ has no NN_name.ipynb"
    assert cli.find_notebooks(["0"]) == [nb for nb in all_nbs if nb.stem.startswith("00")]
    with pytest.raises(SystemExit, match="no notebook matches '77'"):
        cli.find_notebooks(["77"])


def test_strip_run_metadata(tmp_path):
    nb = {"metadata": {"papermill": {"x": 1}, "widgets": {}, "kernelspec": {"name": "python3"}},
          "cells": [{"cell_type": "code", "metadata": {"papermill": {}, "tags": ["parameters"]},
                     "source": "", "outputs": []}], "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "x.ipynb"
    p.write_text(json.dumps(nb))
    cli.strip_run_metadata(p)
    out = json.loads(p.read_text())
    assert out["metadata"] == {"kernelspec": {"name": "python3"}}
    assert out["cells"][0]["metadata"] == {"tags": ["parameters"]}


def test_ledger_and_readme_commands(tmp_path, monkeypatch, capsys):
    from labkit import protocol

    monkeypatch.setenv("LABKIT_REFERENCE", str(tmp_path / "reference.jsonl"))
    monkeypatch.setenv("LABKIT_LEDGER", str(tmp_path / "reference.jsonl"))
    ledger.Run("00_setup", profile="quick").log("matmul_gflops", 12.5)
    assert cli.main(["ledger", "--profile", "quick"]) == 0
    assert "matmul_gflops" in capsys.readouterr().out
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{cli.README_START}\nold\n{cli.README_END}\nrest\n")
    monkeypatch.setattr(cli, "ROOT", tmp_path)
    assert cli.main(["readme"]) == 0
    text = readme.read_text()
    assert "old" not in text and "| 00_setup | matmul_gflops | quick | 12.5 |" in text
    assert "no accuracy in the reference ledger is scored under the evaluation protocol" in text
    assert text.endswith("rest\n")
    run = ledger.Run("04_head_replacement", profile="quick", seed=0)
    run.log("acc_probe@128", 0.61, model="minilm")               # an old-protocol row
    protocol.log_baseline(run)
    protocol.log_accuracy(run, "acc_full_ft@128", [i % 3 > 0 for i in range(2000)],
                          budget=128, model="minilm")
    protocol.log_accuracy(run, "acc_scratch@128", [i % 2 > 0 for i in range(2000)],
                          budget=128, model="minilm")
    monkeypatch.setenv("LABKIT_LEDGER", str(tmp_path / "mine.jsonl"))   # a learner's run
    ledger.Run("04_head_replacement", profile="quick", seed=1).log("acc_lora", 0.99,
                                                                   test_set="rt-test-2000")
    assert cli.main(["readme"]) == 0
    text = readme.read_text()
    assert "scored on `rt-test-2000`, the 2,000 fixed test sentences; majority-class " \
           "line 58.8% accuracy, 50% balanced accuracy" in text
    # one seed each: the spread over seeds is unknown, so nothing is resolved or advised
    assert ("| full fine-tuning, new head | 1B | 04 | minilm | 128 | 66.9 | 66.6 | 0 | "
            "not resolved against the majority line |") in text
    assert ("| transformer from random init | scratch | 04 | minilm | 128 | 49.9 | 50.0 | 0 | "
            "not resolved against the majority line; vs full fine-tuning: not resolved "
            "-17.0 [spread unknown: one seed] |") in text
    assert ("- Pre-trained or from scratch: not resolved at this size for minilm, 128 labels, "
            "rt-test-2000") in text
    assert "start from a pre-trained model" not in text
    assert "This page makes 3 comparisons" in text and "Holm" in text
    assert "LoRA" not in text                        # the learner's ledger is not read
    assert "1 accuracy row(s) of the reference ledger predate the protocol" in text
    assert "| 00_setup | matmul_gflops | quick | 12.5 |" in text
    assert "acc_full_ft@128" not in text             # strategy rows appear once, in their table


def test_last_runs_drops_superseded_rows():
    old = ledger.Run("02_word2vec", profile="quick", seed=0)
    old.id = "old"
    old.log("renamed_metric", 1.0)
    new = ledger.Run("02_word2vec", profile="quick", seed=0)
    new.id = "new"
    new.log("wordsim_spearman", 0.37)
    other_seed = ledger.Run("02_word2vec", profile="quick", seed=1)
    other_seed.id = "older-but-other-seed"
    other_seed.log("wordsim_spearman", 0.38)
    kept = ledger.last_runs(ledger.read())
    assert sorted((r["metric"], r["seed"]) for r in kept) == [("wordsim_spearman", 0), ("wordsim_spearman", 1)]


def test_reference_and_learner_ledgers(tmp_path, monkeypatch, private_runs):
    monkeypatch.delenv("LABKIT_LEDGER", raising=False)
    assert ledger.ledger_path() == private_runs / "ledger.jsonl"
    assert ledger.reference_path().parts[-2:] == ("results", "reference.jsonl")
    assert not ledger.writes_reference()
    ref = tmp_path / "reference.jsonl"
    monkeypatch.setenv("LABKIT_REFERENCE", str(ref))
    monkeypatch.setenv("LABKIT_LEDGER", str(ref))        # what `labkit run --render` sets
    assert ledger.writes_reference()
    ledger.Run("00_setup", profile="quick").log("matmul_gflops", 1.0)
    assert [r["metric"] for r in ledger.read(ref)] == ["matmul_gflops"]
    assert not (private_runs / "ledger.jsonl").exists()


def test_learner_ledger_is_untracked_and_reference_is_tracked():
    import subprocess
    root = cli.ROOT
    ignored = subprocess.run(["git", "check-ignore", "-q", "runs/ledger.jsonl"], cwd=root)
    assert ignored.returncode == 0, "runs/ledger.jsonl must be ignored by git"
    tracked = subprocess.run(["git", "ls-files", "runs", "results/reference.jsonl"], cwd=root,
                             capture_output=True, text=True).stdout.split()
    assert tracked == ["results/reference.jsonl"], tracked


def test_summary_never_averages_over_different_test_sets():
    from labkit import ledger
    rows = [{"notebook": "07_x", "metric": "acc_majority", "profile": "quick", "seed": 0,
             "value": v, "test_set": ts, "device": "cpu", "wall_s": 1.0, "run": "r"}
            for v, ts in ((0.5875, "rt-test-2000"), (0.52, "rt-test-2000:200"))]
    s = ledger.summary(rows)
    assert sorted((r["test_set"], r["mean"]) for r in s) == [("rt-test-2000", 0.5875),
                                                             ("rt-test-2000:200", 0.52)]
    assert "acc_majority [rt-test-2000:200]" in ledger.table(rows)
