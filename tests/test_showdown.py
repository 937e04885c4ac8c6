"""Notebook 09 on a reference ledger scored under the protocol (the committed one has no
such rows until notebooks 02-08 are re-rendered): it runs, draws one baseline, and prints
exactly the advice the verdicts generate."""

import json
import random

import pytest

from labkit import cli, compare, ledger, protocol


def bits(p, n, seed):
    rng = random.Random(seed)
    return [rng.random() < p for _ in range(n)]


@pytest.mark.notebook
def test_showdown_on_a_protocol_ledger(tmp_path, monkeypatch, private_runs):
    ref = tmp_path / "reference.jsonl"
    monkeypatch.setenv("LABKIT_REFERENCE", str(ref))
    monkeypatch.setenv("LABKIT_LEDGER", str(ref))
    plan = {"04_head_replacement": [("full_ft", 128, .67), ("scratch", 128, .58), ("probe", 128, .6)],
            "06_behavioural_finetuning": [("full_ft", 128, .67), ("behavioural", 128, .71),
                                          ("behavioural_unrelated", 128, .66)],
            "08_lora_and_peft": [("full_ft", 512, .74), ("lora", 512, .72),
                                 ("prompt_tuning", 512, .5875)]}
    for i, (nb, items) in enumerate(plan.items()):
        run = ledger.Run(nb, profile="quick")
        protocol.log_baseline(run)
        for s, n, p in items:
            for seed in range(3):
                protocol.log_accuracy(run, f"acc_{s}@{n}", bits(p, 2000, hash((i, s, seed))),
                                      budget=n, model="minilm", seed=seed, trainable=1000)
        run.finish()                                      # only completed runs are read
    monkeypatch.delenv("LABKIT_LEDGER")                   # the learner's own run of 04
    mine = ledger.Run("04_head_replacement", profile="quick", seed=0)
    protocol.log_accuracy(mine, "acc_full_ft@128", bits(0.69, 2000, 7), budget=128, model="minilm")
    mine.finish()
    monkeypatch.setenv("LABKIT_PROFILE", "quick")       # 09 trains nothing: quick is fast
    nb = cli.NOTEBOOKS / "09_strategy_showdown.ipynb"
    out = tmp_path / nb.name
    cli.run_notebook(nb, out)
    cells = json.loads(out.read_text())["cells"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert ("test set rt-test-2000: the 2,000 fixed test sentences; majority-class baseline "
            "58.8% accuracy, 50% balanced accuracy") in text
    yours = 100 * protocol.balanced_accuracy(bits(0.69, 2000, 7), protocol.labels("rt-test-2000"))
    assert "yours, balanced (%)" in text and f"{yours:.1f}" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    judged = compare.cells(compare.judge(compare.strategy_rows(ledger.read(ref), profile="quick")))
    assert compare.multiplicity(judged) in text          # the count, and Holm marked
    advice = compare.which_when(judged)
    assert len(advice) >= 4
    for sentence in advice:
        assert sentence in text
    for r in judged:                                     # a claim only from a resolved verdict
        v = r["vs_rival"]
        if v is not None and r["strategy"] in compare.ADVICE:
            (s,) = [s for s in advice if s.startswith(compare.ADVICE[r["strategy"]][0])]
            assert v.numbers() in s
            if not v.is_resolved:
                assert compare.NOT_RESOLVED in s
            else:
                meaning = compare.ADVICE[r["strategy"]][1]
                assert (meaning[v.verdict] if meaning else v.words()) in s
    # full fine-tuning at 128 labels is logged by 04 and 06: one number in the table
    ft = [r for r in judged if r["strategy"] == "full_ft" and r["budget"] == 128]
    assert len(ft) == 1 and ft[0]["also"] == ["06"] and "04 (also 06)" in text
    assert "scratch is worse than" in text             # the lesson cell judged, not skipped
