"""Reading strategies out of the ledger for the showdown, and the computed verdicts."""

import random

import matplotlib
import pytest

from labkit import compare, ledger, protocol

matplotlib.use("Agg")


def test_parse_metric_names():
    assert compare.parse("acc_full_ft@128") == ("full_ft", 128, "")
    assert compare.parse("acc_behavioural_unrelated@32") == ("behavioural_unrelated", 32, "")
    assert compare.parse("acc_full_ft_tinymlm@32") == ("full_ft", 32, "tinymlm")
    assert compare.parse("acc_lora") == ("lora", None, "")
    assert compare.parse("clf_acc_w2v_init") == ("clf_acc_w2v_init", None, "")
    assert compare.parse("mlm_ppl_final") is None
    assert compare.parse("acc_something_new@8") is None


def bits(p, n, seed):
    """n per-row results with accuracy close to p (exactly round(p * n) rows right)."""
    k = round(p * n)
    out = [True] * k + [False] * (n - k)
    random.Random(seed).shuffle(out)
    return out


def log(run, metric, accs, *, budget, model="minilm", start=0, test_set=None, n=2000):
    for seed, p in enumerate(accs):
        protocol.log_accuracy(run, metric, bits(p, n, hash((metric, model, seed, start)) % 10**6),
                              budget=budget, model=model, seed=seed, trainable=1000,
                              wall_s=10.0, test_set=test_set)


@pytest.fixture
def showdown():
    run = ledger.Run("04_head_replacement", profile="quick")
    protocol.log_baseline(run)                                   # 58.75% on rt-test-2000
    log(run, "acc_full_ft@128", [0.72, 0.74, 0.73], budget=128)
    log(run, "acc_scratch@128", [0.585, 0.59, 0.58], budget=128)
    log(run, "acc_probe@128", [0.71, 0.745, 0.725], budget=128)
    run.log("acc_probe@32", 0.6, model="minilm")                 # before the protocol
    other = ledger.Run("07_prompt_cloze", profile="quick")
    protocol.log_baseline(other, test_set=protocol.slice_name("quick", 200))
    log(other, "acc_zero_shot", [0.70], budget=0, model="smollm2",
        test_set=protocol.slice_name("quick", 200), n=200)
    protocol.log_baseline(other)                                 # a second copy: one row kept
    log(other, "acc_zero_shot", [0.66], budget=0, model="smollm2")
    return ledger.read()


def test_strategy_rows_keep_test_sets_apart(showdown):
    assert compare.legacy(showdown) == 1
    srows = compare.strategy_rows(showdown, profile="quick")
    assert all(r["test_set"] for r in srows)
    main = [r for r in srows if r["test_set"] == "rt-test-2000"]
    assert [(r["strategy"], r["budget"]) for r in main] == [
        ("majority", None), ("scratch", 128), ("probe", 128), ("full_ft", 128),
        ("zero_shot", None)]
    assert main[0]["notebook"] == "04, 07" and main[0]["mean"] == pytest.approx(0.5875)
    full = main[3]
    assert full["mean"] == pytest.approx(0.73) and full["seeds"] == [0, 1, 2]
    assert len(full["correct"][1]) == 2000 and sum(full["correct"][1]) == 1480
    assert compare.main_test_set(srows, "quick") == "rt-test-2000"
    sliced = [r for r in srows if r["test_set"] == "rt-test-2000:200"]
    with pytest.raises(ValueError, match="different test sets"):
        compare.versus(sliced[1], full)
    with pytest.raises(ValueError, match="one test set"):
        compare.plot(srows)
    compare.plot(main)


def test_verdicts(showdown):
    judged = compare.judge(compare.strategy_rows(showdown, "quick", test_set="rt-test-2000"))
    by = {r["strategy"]: r for r in judged}
    assert by["majority"]["vs_baseline"] is None
    assert by["full_ft"]["vs_baseline"].words(baseline=True) == "above baseline"
    assert by["scratch"]["vs_baseline"].verdict == "within the spread"     # at baseline
    assert by["scratch"]["vs_rival"].verdict == "worse"
    assert by["probe"]["vs_rival"].verdict == "within the spread"
    assert by["zero_shot"]["vs_baseline"].verdict == "better"
    v = by["scratch"]["vs_rival"]
    assert v.paired and v.low < v.diff < v.high < 0
    text = compare.table(judged)
    assert "worse than full fine-tuning" in text and "at baseline" in text


def test_seed_spread_can_veto_a_resolved_difference():
    n = 2000
    base = {"strategy": "full_ft", "test_set": "rt-test-2000", "rows": n, "what": "x",
            "notebook": "04", "model": "m", "budget": 8}
    right = bits(0.75, n, 1)
    worse = list(right)
    for i in [i for i, x in enumerate(right) if x][:100]:      # b: 100 of a's rows wrong
        worse[i] = False
    a = dict(base, mean=0.75, std=0.06, seeds=[0, 1], correct={0: right})
    b = dict(base, mean=0.70, std=0.0, seeds=[0], correct={0: worse})
    v = compare.versus(a, b)
    assert v.low > 0 and v.spread == pytest.approx(6.0) and v.verdict == "within the spread"
    a["std"] = 0.01
    assert compare.versus(a, b).verdict == "better"
    assert compare.versus(b, a).verdict == "worse"
    a["correct"] = None                             # an old row: unpaired, wider interval
    u = compare.versus(a, b)
    assert not u.paired and u.high - u.low > v.high - v.low


def test_bootstrap_interval_matches_the_protocols_claim():
    """protocol's docstring: on 2,000 rows, two models that disagree on 20% of them have
    a 95% interval of about +-2.0 points on their difference."""
    n, rng = 2000, random.Random(0)
    a = bits(0.7, n, 3)
    flip = set(rng.sample(range(n), n // 5))
    b = [(not x) if i in flip else x for i, x in enumerate(a)]
    row = {"test_set": "rt-test-2000", "rows": n, "std": 0.0, "seeds": [0], "what": "x",
           "notebook": "04", "model": "m", "budget": 8, "strategy": "full_ft"}
    v = compare.versus(dict(row, mean=sum(a) / n, correct={0: a}),
                       dict(row, mean=sum(b) / n, correct={0: b}))
    assert (v.high - v.low) / 2 == pytest.approx(1.96 * (0.2 / n) ** 0.5 * 100, rel=0.15)


def test_which_when_follows_the_verdicts(showdown):
    judged = compare.judge(compare.strategy_rows(showdown, "quick", test_set="rt-test-2000"))
    sentences = compare.which_when(judged)
    by = {s.split(":")[0]: s for s in sentences}
    assert "start from a pre-trained model" in by["Pre-trained or from scratch"]
    assert "within the spread" in by["Freeze the encoder or train it"]
    zero = next(s for s in sentences if s.startswith("No labels"))
    assert "above baseline" in zero and "worse than" in zero
    for r in judged:                 # every sentence quotes its own verdict's phrase
        if r["strategy"] in compare.ADVICE and r["vs_rival"]:
            question, meaning = compare.ADVICE[r["strategy"]]
            (s,) = [s for s in sentences if s.startswith(question)]
            assert meaning[r["vs_rival"].verdict] in s
            assert r["vs_rival"].numbers() in s
