"""Checkers for notebook 05 adaptive fine-tuning's exercises."""

from __future__ import annotations

from ._core import Wrong, exercise, verdict  # noqa: F401


def loss_drop_for_perplexity_ratio(answer: float, ratio: float = 0.8) -> bool:
    """Exercise 05: how far the mean loss (nats) must fall for perplexity to reach
    `ratio` times its starting value, whatever that value was."""
    import math

    ok = abs(abs(float(answer)) - (-math.log(ratio))) <= 0.005
    return verdict(ok, "perplexity is exp(mean loss), so a ratio of two perplexities is exp of "
                        "the difference of their losses: solve exp(after - before) = ratio")
