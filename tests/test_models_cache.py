"""SmolLM2's GGUF file is dequantised once and cached as safetensors: the cached copy
loads the same weights and tokenizer, faster, under a key of the package versions."""

import time

import torch

from labkit import models


def test_the_cache_key_follows_the_versions(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    first = models.dequantised_cache("smollm2")
    assert first.parent == tmp_path / "dequantised" and first.name.startswith("smollm2-")
    monkeypatch.setattr(models, "_version", lambda dist: "9.9" if dist == "gguf" else "1")
    assert models.dequantised_cache("smollm2") != first


def test_smollm2_is_dequantised_once_and_reads_back_the_same(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    unfinished = models.dequantised_cache("smollm2")
    unfinished.mkdir(parents=True)
    (unfinished / "config.json").write_text("{}")   # no weights: made again, not read
    t0 = time.perf_counter()
    model, tok = models.load("smollm2", task="causal-lm")
    first = time.perf_counter() - t0
    folder = models.dequantised_cache("smollm2")
    assert (folder / "model.safetensors").exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]   # no temp left
    t0 = time.perf_counter()
    again, tok2 = models.load("smollm2", task="causal-lm")
    second = time.perf_counter() - t0
    assert second < first / 3, (first, second)
    print(f"GGUF load {first:.1f}s, cached {second:.1f}s")
    mine, theirs = model.state_dict(), again.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    text = "Movie review: a sensitive and astute film"
    assert tok(text)["input_ids"] == tok2(text)["input_ids"]
    assert tok2.pad_token is not None
