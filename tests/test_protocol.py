"""The evaluation protocol: fixed test rows, majority baseline, per-row correctness."""

import pytest

from labkit import protocol
from labkit.ledger import Run, read


def test_names_and_sizes():
    assert protocol.test_set("quick") == protocol.test_set("full") == "rt-test-2000"
    assert protocol.test_set("smoke") == "rt-test-smoke-32"
    assert protocol.slice_name("quick", 500) == "rt-test-2000:500"
    assert protocol.slice_name("quick", 5000) == "rt-test-2000"
    assert protocol.size("rt-test-2000:500") == 500
    assert protocol.size(protocol.test_set("smoke")) == 32
    with pytest.raises(ValueError, match="not a test-set name"):
        protocol.size("first-1000")
    with pytest.raises(ValueError, match="at least one row"):
        protocol.slice_name("quick", 0)


def test_same_rows_in_quick_and_full():
    quick, full = protocol.test_split("quick"), protocol.test_split("full")
    assert len(quick) == 2000 and quick["text"] == full["text"]
    assert protocol.test_split("quick", 10)["text"] == quick["text"][:10]


def test_majority_is_the_scored_rows_own():
    labels = protocol.test_split("quick")["label"]
    assert protocol.majority_label("quick") == 1          # 58.75% of the test rows are positive
    assert protocol.majority("quick") == pytest.approx(0.5875)
    assert protocol.majority("quick", [0, 0, 1, 1]) == 0.5
    # a slice whose majority is negative: its line is its own majority's share, not the
    # share of the training split's majority label (which would read 0.4 here)
    assert protocol.majority_label(labels=[0, 0, 0, 1, 1]) == 0
    assert protocol.majority(labels=[0, 0, 0, 1, 1]) == pytest.approx(0.6)
    first = protocol.test_split("quick", 20)["label"]
    share = sum(first) / 20
    assert protocol.majority(labels=first) == pytest.approx(max(share, 1 - share))
    assert protocol.labels("rt-test-2000:20") == list(first)
    assert protocol.labels("rt-test-2000") == list(labels)


def test_balanced_accuracy():
    gold = [1, 1, 1, 0]
    assert protocol.balanced_accuracy([True, True, True, False], gold) == 0.5   # always "1"
    assert protocol.balanced_accuracy([False, False, False, True], gold) == 0.5  # always "0"
    assert protocol.balanced_accuracy([True, False, False, True], gold) == pytest.approx(
        (1 / 3 + 1) / 2)
    with pytest.raises(ValueError, match="3 results for 4 labels"):
        protocol.balanced_accuracy([True] * 3, gold)


def test_one_selection_rule():
    from labkit import finetune
    assert protocol.fit_options("quick") == {"evals": protocol.CHECKPOINTS, "group_by_length": True}
    assert protocol.CHECKPOINTS == 4
    for strategy in ("full_ft", "scratch"):
        recipe = finetune.recipe("quick", strategy)
        assert recipe["evals"] == protocol.CHECKPOINTS and recipe["group_by_length"]


@pytest.mark.parametrize("n", [1, 7, 8, 33, 2000])
def test_pack_roundtrip(n):
    import random
    bits = [random.Random(n).random() < 0.6 for _ in range(n)]
    assert protocol.unpack(protocol.pack(bits), n) == bits


def test_log_accuracy_and_baseline(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path))
    run = Run("99_test", profile="smoke", seed=0)
    base = protocol.log_baseline(run)
    correct = [i % 3 != 0 for i in range(32)]
    value = protocol.log_accuracy(run, "acc_full_ft@8", correct, budget=8, model="tiny-mlm",
                                  trainable=10, wall_s=1.234)
    rows = read(tmp_path / "ledger.jsonl")
    assert [r["metric"] for r in rows] == ["acc_majority", "acc_full_ft@8"]
    assert rows[0]["value"] == base and rows[0]["test_set"] == "rt-test-smoke-32"
    assert rows[1]["value"] == value == sum(correct) / 32
    assert rows[1]["label_budget"] == 8 and rows[1]["train_wall_s"] == 1.2
    assert protocol.unpack(rows[1]["correct_hex"], 32) == correct
    gold = protocol.labels("rt-test-smoke-32")
    assert rows[0]["balanced_acc"] == 0.5                       # a constant answer
    assert rows[1]["balanced_acc"] == pytest.approx(protocol.balanced_accuracy(correct, gold))
    with pytest.raises(ValueError, match="has 32 rows but 31"):
        protocol.log_accuracy(run, "acc_x", correct[:31], budget=8, model="m")
    # a slice logs its own baseline from its own labels
    sliced = protocol.log_baseline(run, test_set=protocol.slice_name("smoke", 10))
    assert sliced == protocol.majority("smoke", protocol.test_split("smoke", 10)["label"])


def test_score_matches_evaluate():
    from labkit import finetune, train
    model, tok = finetune.build_classifier("tiny-mlm", seed=0)
    test = protocol.target_task(tok, "smoke")["test"]
    correct = protocol.score(model, test, batch_size=5)
    acc = train.evaluate(model, test, collate_fn=finetune.collate(tok.pad_token_id))["accuracy"]
    assert len(correct) == 32 and sum(correct) / 32 == pytest.approx(acc)


def test_tfidf_baseline_rows(tmp_path, monkeypatch):
    """TF-IDF + logistic regression on notebook 04's rows: acc_tfidf_lr@N per budget and
    seed, with balanced accuracy and per-row results, on the same reviews data.sample
    gives the networks."""
    from labkit import classical, data

    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path))
    run = Run("04_head_replacement", profile="smoke", seed=0)
    out = classical.learning_curve(run, [16, 32], [0, 1])
    rows = read(tmp_path / "ledger.jsonl")
    assert [r["metric"] for r in rows] == ["acc_tfidf_lr@16"] * 2 + ["acc_tfidf_lr@32"] * 2
    assert [r["seed"] for r in rows] == [0, 1, 0, 1]
    gold = protocol.labels("rt-test-smoke-32")
    for r, o in zip(rows, out):
        assert r["test_set"] == "rt-test-smoke-32" and r["model"] == "tfidf-lr"
        correct = protocol.unpack(r["correct_hex"], 32)
        assert r["value"] == o["accuracy"] == sum(correct) / 32
        assert r["balanced_acc"] == pytest.approx(protocol.balanced_accuracy(correct, gold))
        assert r["C"] in classical.CANDIDATES
    raw = protocol._raw("smoke")
    budget = data.sample(raw["train"], 16, seed=1)
    valid = raw["validation"].select(range(protocol.VALIDATION_ROWS["smoke"]))
    clf, c, _ = classical.fit(budget["text"], budget["label"], seed=1,
                              validation=(valid["text"], valid["label"]))
    assert c == rows[1]["C"]                                # the same reviews, the same choice
    with pytest.raises(ValueError, match="both classes"):
        classical.fit(["good", "fine"], [1, 1], validation=(["x"], [0]))


def test_results_and_error_analysis(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path))
    run = Run("04_head_replacement", profile="smoke", seed=0)
    gold = protocol.labels("rt-test-smoke-32")
    always_pos = [y == 1 for y in gold]
    good = [True] * 30 + [False] * 2
    protocol.log_baseline(run)
    protocol.log_accuracy(run, "acc_probe@8", always_pos, budget=8, model="m", seed=0)
    for seed in (0, 1):
        protocol.log_accuracy(run, "acc_full_ft@8", good, budget=8, model="m", seed=seed)
    table = protocol.results(run, show=False)
    assert [r["metric"] for r in table] == ["acc_full_ft@8", "acc_probe@8"]
    assert table[1]["balanced_acc"] == 0.5 and table[1]["accuracy"] == pytest.approx(sum(gold) / 32)
    out = protocol.error_analysis(run, k=4)
    assert out["metric"] == "acc_full_ft@8" and out["seed"] == 0
    m = out["matrix"]
    assert sum(map(sum, m)) == 32 and m[0][1] + m[1][0] == 2
    texts = protocol.test_split("smoke")["text"]
    assert [e[0] for e in out["errors"]] == [texts[30], texts[31]]
    assert all(p == 1 - y for _, y, p in out["errors"])
    probe = protocol.error_analysis(run, "acc_probe@8", show=False)
    assert probe["matrix"][0][0] == 0                    # a constant "positive" gets no negative right
    with pytest.raises(ValueError, match="no target-task accuracy named"):
        protocol.error_analysis(run, "acc_nothing@8")
