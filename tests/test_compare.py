"""Reading strategies out of the ledger for the showdown."""

import matplotlib
import pytest

from labkit import compare, ledger

matplotlib.use("Agg")


def test_parse_metric_names():
    assert compare.parse("acc_full_ft@128") == ("full_ft", 128, "")
    assert compare.parse("acc_behavioural_unrelated@32") == ("behavioural_unrelated", 32, "")
    assert compare.parse("acc_full_ft_tinymlm@32") == ("full_ft", 32, "tinymlm")
    assert compare.parse("acc_lora") == ("lora", None, "")
    assert compare.parse("clf_acc_w2v_init") == ("clf_acc_w2v_init", None, "")
    assert compare.parse("mlm_ppl_final") is None
    assert compare.parse("acc_something_new@8") is None


def test_strategy_rows_group_seeds_and_budgets():
    run = ledger.Run("04_head_replacement", profile="quick")
    for seed, (a, b) in enumerate([(0.60, 0.70), (0.62, 0.74), (0.64, 0.72)]):
        run.log("acc_probe@128", a, seed=seed)
        run.log("acc_full_ft@128", b, seed=seed)
    ledger.Run("08_lora_and_peft", profile="quick").log("acc_lora", 0.7, label_budget=512)
    ledger.Run("07_prompt_cloze", profile="quick").log("acc_majority", 0.58)
    ledger.Run("03_bert_mlm_pretraining", profile="quick").log("mlm_ppl_final", 40.0)
    rows = compare.strategy_rows(ledger.read(), profile="quick")
    assert [(r["strategy"], r["budget"]) for r in rows] == [
        ("majority", None), ("probe", 128), ("full_ft", 128), ("lora", 512)]
    full = rows[2]
    assert full["mean"] == pytest.approx(0.72) and full["seeds"] == [0, 1, 2]
    text = compare.table(rows, budget=128)
    assert "linear probe" in text and "LoRA" not in text and "majority" in text
    compare.plot(rows)
