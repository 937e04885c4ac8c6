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
    assert by["majority"]["balanced"] == pytest.approx(0.5)
    assert by["full_ft"]["vs_baseline"].words(baseline=True) == "above the majority line"
    assert by["scratch"]["vs_rival"].verdict == "worse"
    assert by["probe"]["vs_rival"].verdict == "not resolved"        # 0.727 vs 0.73
    assert by["zero_shot"]["vs_baseline"].verdict == "better"        # nothing trained: no seed noise
    v = by["scratch"]["vs_rival"]
    assert v.paired and v.low < v.diff < v.high < 0 and v.metric == "balanced_acc"
    assert "paired over 3 seeds" in v.numbers()
    text = compare.table(judged)
    assert "worse than full fine-tuning" in text and "balanced acc (%)" in text


def row(correct_by_seed, n=2000, strategy="full_ft", **kw):
    """A strategy row as strategy_rows builds it, from per-seed per-row results."""
    from labkit.metrics import mean_std

    vals = {s: sum(c) / n for s, c in correct_by_seed.items()}
    gold = protocol.labels("rt-test-2000")
    bal = {s: protocol.balanced_accuracy(c, gold) for s, c in correct_by_seed.items()}
    mean, std = mean_std(list(vals.values()))
    b_mean, b_std = mean_std(list(bal.values()))
    return dict({"strategy": strategy, "tag": "", "what": strategy, "notebook": "04",
                 "model": "m", "budget": 8, "test_set": "rt-test-2000", "rows": n,
                 "mean": mean, "std": std, "values": vals, "balanced": b_mean,
                 "balanced_std": b_std, "balanced_values": bal,
                 "seeds": sorted(correct_by_seed), "correct": correct_by_seed}, **kw)


def test_one_seed_has_an_unknown_spread_not_zero():
    """A trained side with one seed cannot resolve anything, however large the gap on
    the rows: its spread over seeds is unknown (it used to count as zero)."""
    n = 2000
    right = bits(0.80, n, 1)
    worse = list(right)
    for i in [i for i, x in enumerate(right) if x][:300]:       # b: 300 of a's rows wrong
        worse[i] = False
    a = row({0: right})
    b = row({0: worse})
    v = compare.versus(a, b)
    assert v.verdict == "not resolved" and v.low is None and not v.is_resolved
    assert "spread over seeds is unknown" in v.numbers()
    with pytest.raises(AssertionError, match="not resolved"):
        v.assert_resolved()
    base = row({0: [y == 1 for y in protocol.labels("rt-test-2000")]}, strategy="majority")
    assert compare.versus(a, base).low is None          # still one trained seed
    zs = row({0: right}, strategy="zero_shot")           # nothing trained: rows alone decide
    w = compare.versus(zs, base)
    assert w.is_resolved and w.low > 0 and w.assert_resolved("better") is w


def test_interval_is_for_the_difference_of_means_paired_over_seeds():
    """Two seeds each: the seed part of the interval comes from the per-seed differences
    (Student's t with 1 degree of freedom), so a gap that is consistent across seeds
    resolves and one that flips sign does not, whatever the row-level noise."""
    n = 2000
    base = bits(0.7, n, 5)

    def shifted(k, seed):
        out = list(base)
        idx = [i for i, x in enumerate(out) if not x]
        for i in random.Random(seed).sample(idx, k):
            out[i] = True
        return out
    b = row({0: base, 1: base})
    steady = row({0: shifted(200, 0), 1: shifted(210, 1)})       # +10 points on both seeds
    v = compare.versus(steady, b)
    assert v.verdict == "better" and "paired over 2 seeds" in v.seeds
    assert v.low < v.diff < v.high
    flippy = row({0: shifted(200, 0), 1: base})                  # +10 on one seed, 0 on the other
    u = compare.versus(flippy, b)
    assert u.verdict == "not resolved" and u.low < 0 < u.high
    assert u.high - u.low > 10 * (v.high - v.low)                  # t(1 df) on the seed spread
    assert compare.versus(b, steady).verdict == "worse"
    acc = compare.versus(steady, b, metric="accuracy")
    assert acc.metric == "accuracy" and acc.diff == pytest.approx(100 * (steady["mean"] - b["mean"]))


def test_row_interval_matches_the_protocols_claim():
    """protocol's docstring: on 2,000 rows, two models that disagree on 20% of them have
    a 95% interval of about +-2.0 points on their difference (no seed noise here: both
    are fixed, untrained answers)."""
    n, rng = 2000, random.Random(0)
    a = bits(0.7, n, 3)
    flip = set(rng.sample(range(n), n // 5))
    b = [(not x) if i in flip else x for i, x in enumerate(a)]
    v = compare.versus(row({0: a}, strategy="zero_shot"), row({0: b}, strategy="zero_shot"),
                       metric="accuracy")
    assert (v.high - v.low) / 2 == pytest.approx(1.96 * (0.2 / n) ** 0.5 * 100, rel=0.15)


def test_a_notebooks_own_runs_get_the_showdowns_interval():
    """Strategy notebooks judge their learning-curve runs with `versus_runs`: the same
    verdict, to the digit, as the showdown computes from the same runs once logged."""
    import numpy as np

    ts, rng = "rt-test-2000", np.random.default_rng(0)
    n = protocol.size(ts)
    truth = rng.random((3, n))
    strong = [{"seed": s, "correct": (truth[s] < 0.8).tolist()} for s in range(3)]
    weak = [{"seed": s, "correct": (truth[s] < 0.6).tolist()} for s in range(3)]
    v = compare.versus_runs(strong, weak, ts, a="strong", b="weak")
    assert v.verdict == "better" and v.low > 0 and 15 < v.diff < 25
    assert v.metric == "balanced_acc" and "paired over 3 seeds" in v.seeds
    assert v.sentence("strong", "weak").startswith("strong is better than weak (+")
    logged = compare.versus(row({s["seed"]: s["correct"] for s in strong}),
                            row({s["seed"]: s["correct"] for s in weak}))
    assert (v.diff, v.low, v.high, v.p) == pytest.approx((logged.diff, logged.low,
                                                          logged.high, logged.p))
    tie = compare.versus_runs(strong, strong, ts)
    assert not tie.is_resolved and "not resolved at this size" in tie.sentence()
    noisy = [{"seed": s, "correct": (rng.random(n) < 0.8).tolist()} for s in range(3)]
    close = compare.versus_runs(noisy, strong, ts)          # same rate, other draws
    assert close.low < 0 < close.high and not close.is_resolved
    base = compare.versus_runs(strong, "majority", ts, a="strong")
    assert base.verdict == "better" and base.against == "the majority class"
    one = compare.versus_runs(strong[:1], weak[:1], ts)      # one seed: spread unknown
    assert one.low is None and "run at least two seeds" in one.sentence()
    with pytest.raises(ValueError, match="no per-row results"):
        compare.versus_runs([{"seed": 0, "correct": [True] * 10}], weak, ts)
    with pytest.raises(ValueError, match="no runs"):
        compare.versus_runs([], weak, ts)


def test_holm_and_the_count_of_comparisons(showdown):
    judged = compare.cells(compare.judge(compare.strategy_rows(showdown, "quick",
                                                               test_set="rt-test-2000")))
    vs = compare.family(judged)
    sentence = compare.multiplicity(judged)
    assert f"makes {len(vs)} comparisons" in sentence and "Holm" in sentence
    kept = [v for v in vs if v.holm]
    assert all(v.is_resolved for v in kept)
    assert f"{len(kept)} of those survive" in sentence


def test_advice_comes_from_resolved_verdicts_only(showdown):
    judged = compare.judge(compare.strategy_rows(showdown, "quick", test_set="rt-test-2000"))
    sentences = compare.which_when(judged)
    by = {s.split(":")[0]: s for s in sentences}
    scratch = by["Pre-trained or from scratch"]
    assert "start from a pre-trained model" in scratch and "minilm, 128 labels, rt-test-2000" in scratch
    probe = by["Freeze the encoder or train it"]            # unresolved: no claim, its interval
    assert probe.startswith("Freeze the encoder or train it: not resolved at this size for minilm")
    assert not any(claim in probe for claim in compare.ADVICE["probe"][1].values())
    for r in judged:
        if r["strategy"] in compare.ADVICE and r["vs_rival"]:
            question, meaning = compare.ADVICE[r["strategy"]]
            (s,) = [s for s in sentences if s.startswith(question)]
            v = r["vs_rival"]
            assert v.numbers() in s and compare.regime(r) in s
            if v.is_resolved:
                assert meaning[v.verdict] in s
            else:
                assert compare.NOT_RESOLVED in s and not any(m in s for m in meaning.values())
    zero = next(s for s in sentences if s.startswith("No labels"))
    assert "above the majority line" in zero


def test_one_number_per_cell():
    """Full fine-tuning logged by 04, 05 and 07 (as head_ft) at the same model and budget
    is shown once, from 04, naming the others."""
    run = ledger.Run("04_head_replacement", profile="quick")
    protocol.log_baseline(run)
    log(run, "acc_full_ft_tinymlm@128", [0.6, 0.61], budget=128, model="tiny-mlm")
    log(ledger.Run("05_adaptive_finetuning", profile="quick"), "acc_full_ft@128",
        [0.62, 0.6], budget=128, model="tiny-mlm")
    log(ledger.Run("07_prompt_cloze", profile="quick"), "acc_head_ft@128", [0.57, 0.58],
        budget=128, model="tiny-mlm")
    shown = compare.cells(compare.judge(compare.strategy_rows(ledger.read(), "quick")))
    ft = [r for r in shown if r["strategy"] in ("full_ft", "head_ft")]
    assert len(ft) == 1 and ft[0]["notebook"].startswith("04") and ft[0]["also"] == ["05", "07"]


def test_classical_and_data_care_rows_are_strategies():
    assert compare.parse("acc_tfidf_lr@128") == ("tfidf_lr", 128, "")
    for name in ("noisy", "cleaned", "clean", "augmented", "self_training", "llm_labels"):
        assert compare.parse(f"acc_{name}@64") == (name, 64, "")
