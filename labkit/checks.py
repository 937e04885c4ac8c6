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
