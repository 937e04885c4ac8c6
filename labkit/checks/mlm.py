"""Checkers for notebook 03 BERT masked-LM pre-training's exercises."""

from __future__ import annotations

from ._core import Wrong, exercise, verdict  # noqa: F401


def untrained_perplexity(answer: float, vocab_size: int) -> bool:
    """Exercise 03: the masked-LM perplexity of a BERT before any training."""
    ok = abs(float(answer) - vocab_size) <= 0.25 * vocab_size
    return verdict(ok, "before training the model has no reason to prefer one token over "
                        "another, so it spreads its probability about evenly; perplexity is "
                        "exp(loss), and a uniform guess among N options has loss log N")
