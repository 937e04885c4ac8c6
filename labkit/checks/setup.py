"""Checkers for notebook 00 set-up's exercises."""

from __future__ import annotations

from ._core import Wrong, exercise, verdict  # noqa: F401


def parameter_count(model, answer: int) -> bool:
    """Exercise 00: count the parameters of a model by hand from its config."""
    from ..models import count_parameters

    true = count_parameters(model)
    return verdict(int(answer) == true,
                    "count embeddings (word + position + token type + LayerNorm), then per "
                    "layer: Q, K, V and output projections with biases, two LayerNorms and the "
                    "two feed-forward matrices with biases; the MLM head adds a transform, a "
                    "LayerNorm and an output bias (its weight is tied to the word embeddings)")
