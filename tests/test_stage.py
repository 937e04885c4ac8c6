"""What notebook 10 leaves for notebook 11: saved as safetensors under runs/ (keyed by
profile and seed) and loaded back to the same numbers; a missing or foreign stage is
refused with the command that makes it; an interrupted save leaves the old stage whole;
`labkit run` starts 11 only after 10."""

from pathlib import Path

import numpy as np
import pytest
import torch

from labkit import align, course, models, peft, runner

ROOT = Path(__file__).resolve().parent.parent
LORA = dict(r=4, alpha=8, target_modules=("q_proj", "v_proj"), modules_to_save=())


@pytest.fixture(scope="module")
def parts():
    labeller, tok = models.load("tiny-mlm", task="sequence-classification", num_labels=2,
                                profile="smoke")
    base, lm_tok = align.tiny_causal_lm(tok)
    sft = peft.apply_lora(align.tiny_causal_lm(tok)[0], **LORA, seed=0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in peft.lora_layers(sft).values():
            layer.lora_B.weight.add_(torch.randn(layer.lora_B.weight.shape, generator=g))
    head = align.RewardHead(32, seed=3)
    return dict(labeller=labeller.eval(), tok=tok, base=base, lm_tok=lm_tok, sft=sft.eval(), head=head)


def save(folder, p, profile="smoke", seed=0):
    return align.save_stage(
        folder, sft=p["sft"], reward_model=p["head"], labeller=p["labeller"],
        labeller_tokenizer=p["tok"], arrays={"judge_sft": np.linspace(0, 1, 5)},
        info={"profile": profile, "seed": seed, "lora": {**LORA, "target_modules": list(LORA["target_modules"])},
              "pref_out": [["a", "b"]]})


def test_a_saved_stage_loads_to_the_same_numbers(parts, tmp_path):
    folder = save(tmp_path / "smoke-seed0", parts)
    stage = align.load_stage(folder, parts["base"], profile="smoke", seed=0)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.equal(stage.sft(ids).logits, parts["sft"](ids).logits)
        assert not torch.equal(stage.sft(ids).logits, parts["base"](ids).logits)
        feats = torch.randn(3, 32)
        assert torch.equal(stage.reward_model.reward(feats), parts["head"].reward(feats))
        enc = parts["tok"](["a fine film"], return_tensors="pt")
        assert torch.allclose(stage.labeller(**enc).logits, parts["labeller"](**enc).logits)
    assert np.array_equal(stage.arrays["judge_sft"], np.linspace(0, 1, 5))
    assert stage.info["pref_out"] == [["a", "b"]]
    assert sorted(p.name for p in folder.iterdir()) == [
        "arrays.safetensors", "labeller", "lora.safetensors", "reward_head.safetensors", "stage.json"]
    assert not any(p.suffix in (".bin", ".pt", ".pkl") for p in folder.rglob("*"))


def test_a_missing_or_foreign_stage_names_the_command_that_makes_it(parts, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"labkit run 10 --profile quick --seed 2"):
        align.load_stage(tmp_path / "none", parts["base"], profile="quick", seed=2)
    folder = save(tmp_path / "other", parts, seed=1)
    with pytest.raises(ValueError, match=r"seed 1, not smoke, 0: run notebook 10 first"):
        align.load_stage(folder, parts["base"], profile="smoke", seed=0)


def test_an_interrupted_save_leaves_the_old_stage_whole(parts, tmp_path, monkeypatch):
    folder = save(tmp_path / "smoke-seed0", parts)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}

    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(parts["labeller"], "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        save(folder, parts)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["smoke-seed0"]     # no temporary folder left


def test_the_stage_folder_is_keyed_by_profile_and_seed(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_RUNS", str(tmp_path))
    assert align.stage_dir("quick", 2) == tmp_path / "10_alignment" / "stage" / "quick-seed2"


def test_labkit_run_starts_11_after_10():
    notebooks = sorted((ROOT / "notebooks").glob("1[01]_*.ipynb"))
    assert [nb.stem[:2] for nb in notebooks] == ["10", "11"]
    after = runner.needs(notebooks)
    assert after["11_preference_optimisation"] == ["10_alignment"]
    assert after["10_alignment"] == []
    assert set(course.STARTS_FROM) <= set(course.READS)
    assert "11" in course.SYLLABUS and "10" in course.SYLLABUS
