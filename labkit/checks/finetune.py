"""Checkers for notebook 04 head replacement's exercises."""

from __future__ import annotations

from ._core import Wrong, exercise, verdict  # noqa: F401


def new_parameters(checkpoint: str, model, answer: int) -> bool:
    """Exercise 04: how many parameters of a classifier built from the named
    `checkpoint` are new (randomly initialised) after head replacement."""
    from ..finetune import surgery

    true = sum(r["parameters"] for r in surgery(checkpoint, model) if r["status"] == "new")
    return verdict(int(answer) == true,
                    "the classifier has hidden_size x num_labels weights plus num_labels "
                    "biases; then look at the surgery table for any other part the "
                    "checkpoint did not have (BertForMaskedLM is saved without a pooler)")
