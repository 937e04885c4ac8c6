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


def test_majority_is_decided_on_train():
    labels = protocol.test_split("quick")["label"]
    label = protocol.majority_label("quick")
    assert label == 1                      # more positive than negative training sentences
    assert protocol.majority("quick") == sum(y == label for y in labels) / len(labels)
    assert protocol.majority("quick", [0, 0, 1, 1]) == 0.5


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
