"""Answers to the notebooks' exercises, checked without giving them away.

Each function takes the learner's answer, prints a verdict with a hint when it is wrong,
and returns True or False (so a notebook can assert on it).
"""

from __future__ import annotations


def _verdict(ok: bool, hint: str) -> bool:
    print("correct" if ok else f"not yet: {hint}")
    return ok


def parameter_count(model, answer: int) -> bool:
    """Exercise 00: count the parameters of a model by hand from its config."""
    from .models import count_parameters

    true = count_parameters(model)
    return _verdict(int(answer) == true,
                    "count embeddings (word + position + token type + LayerNorm), then per "
                    "layer: Q, K, V and output projections with biases, two LayerNorms and the "
                    "two feed-forward matrices with biases; the MLM head adds a transform, a "
                    "LayerNorm and an output bias (its weight is tied to the word embeddings)")


def untrained_perplexity(answer: float, vocab_size: int) -> bool:
    """Exercise 03: the masked-LM perplexity of a BERT before any training."""
    ok = abs(float(answer) - vocab_size) <= 0.25 * vocab_size
    return _verdict(ok, "before training the model has no reason to prefer one token over "
                        "another, so it spreads its probability about evenly; perplexity is "
                        "exp(loss), and a uniform guess among N options has loss log N")


def new_parameters(checkpoint: str, model, answer: int) -> bool:
    """Exercise 04: how many parameters of a classifier built from the named
    `checkpoint` are new (randomly initialised) after head replacement."""
    from .finetune import surgery

    true = sum(r["parameters"] for r in surgery(checkpoint, model) if r["status"] == "new")
    return _verdict(int(answer) == true,
                    "the classifier has hidden_size x num_labels weights plus num_labels "
                    "biases; then look at the surgery table for any other part the "
                    "checkpoint did not have (BertForMaskedLM is saved without a pooler)")


def flipped_head(original, flipped) -> bool:
    """Exercise 06: a 2-class head whose outputs are swapped (for a related task that
    numbers its labels the other way round) gives the same logits in reverse order."""
    import torch

    ids = torch.tensor([[101, 1045, 2293, 2023, 3185, 102], [101, 2025, 2204, 1012, 102, 0]])
    ids = ids.to(next(original.parameters()).device)
    mask = (ids != 0).long()
    flipped.to(ids.device)
    was = original.training, flipped.training
    original.eval(), flipped.eval()
    with torch.no_grad():
        a = original(input_ids=ids, attention_mask=mask).logits
        b = flipped(input_ids=ids, attention_mask=mask).logits
    original.train(was[0]), flipped.train(was[1])
    ok = a.shape == b.shape and torch.allclose(a.flip(-1), b, atol=1e-5)
    return _verdict(ok, "swap the two rows of the head's weight matrix and the two entries "
                        "of its bias (under torch.no_grad()), on a copy of the model; the "
                        "encoder stays as it is")


def lora_parameter_count(model, answer: int, *, r: int, target_modules) -> bool:
    """Exercise 08: how many parameters LoRA with rank `r` adds to `target_modules`."""
    from .peft import find_modules

    layers = [model.get_submodule(n) for n in find_modules(model, target_modules)]
    true = sum(r * (m.in_features + m.out_features) for m in layers)
    return _verdict(int(answer) == true,
                    "each adapted linear layer W (out x in) gets A (r x in) and B (out x r), "
                    "so r x (in + out) new numbers; no biases. Count the matching layers in "
                    "every block (how many blocks does MiniLM have?)")


def expected_skipgram_pairs(n_words: int, window: int, answer: float) -> bool:
    """Exercise 02: the expected number of (centre, context) pairs a sentence of
    `n_words` words makes with word2vec's dynamic window (no subsampling)."""
    true = 2 * sum((n_words - d) * (window - d + 1) / window
                   for d in range(1, min(window, n_words - 1) + 1))
    return _verdict(abs(float(answer) - true) < 1e-6,
                    "count the pairs at each distance d = 1..window: a sentence has n - d "
                    "word pairs at distance d, each pair gives two (centre, context) pairs "
                    "(one per direction), and a centre uses distance d only when its drawn "
                    "window is at least d, which happens with probability (window - d + 1) / "
                    "window")


def teacher_forcing(target: str, decoder_input: list[str], labels: list[str]) -> bool:
    """Exercise 01: under teacher forcing, what does the decoder read and what must it
    predict at each step, for the target sentence `target` (words as `labkit.text.words`
    splits them, with the special tokens "<s>" and "</s>")?"""
    from .text import BOS, EOS, words

    tokens = words(target)
    ok = list(decoder_input) == [BOS, *tokens] and list(labels) == [*tokens, EOS]
    return _verdict(ok, "both lists are as long as the sentence plus one; the decoder reads "
                        "the true previous word at every step, starting from <s>, and must "
                        "predict the word after it, ending with </s>")


def loss_drop_for_perplexity_ratio(answer: float, ratio: float = 0.8) -> bool:
    """Exercise 05: how far the mean loss (nats) must fall for perplexity to reach
    `ratio` times its starting value, whatever that value was."""
    import math

    ok = abs(abs(float(answer)) - (-math.log(ratio))) <= 0.005
    return _verdict(ok, "perplexity is exp(mean loss), so a ratio of two perplexities is exp of "
                        "the difference of their losses: solve exp(after - before) = ratio")


def best_strategy(srows: list[dict], budget: int, answer: str, notebook: str = "04",
                  tag: str = "") -> bool:
    """Exercise 09: which strategy had the highest mean test accuracy at `budget` labels
    in one notebook's main comparison (rows of other notebooks used other models)."""
    at = [r for r in srows if r["budget"] == budget and r["notebook"].startswith(notebook)
          and r["tag"] == tag]
    if not at:
        return _verdict(False, f"no strategy of notebook {notebook} was run with {budget} labels")
    best = max(at, key=lambda r: r["mean"])
    ok = answer.strip().lower() in {best["strategy"], best["what"].lower()}
    return _verdict(ok, f"keep the rows of notebook {notebook} with budget == {budget} and an "
                        "empty 'tag', take the one with the largest 'mean' and answer with "
                        "its 'strategy' field")


def prompt_worth(answer: float) -> bool:
    """Exercise 07: by hand, how many labelled examples the prompt is worth for two toy
    learning curves (prompt: 10, 20, 40 labels -> 60, 70, 80%; head: 10, 20, 40, 80
    labels -> 50, 60, 70, 80%), with Le Scao & Rush's horizontal gap."""
    from .prompts import data_points_worth

    true = data_points_worth({10: 0.60, 20: 0.70, 40: 0.80},
                             {10: 0.50, 20: 0.60, 40: 0.70, 80: 0.80}).examples
    return _verdict(abs(float(answer) - true) <= 0.5,
                    "the shared accuracy range is 60-80%; at 60%, 70% and 80% read how many "
                    "labels each curve needs and take the difference; between those levels "
                    "the gap changes linearly, so average each half's two ends, then average "
                    "the halves")
