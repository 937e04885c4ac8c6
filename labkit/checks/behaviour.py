"""Checkers for notebook 06 behavioural fine-tuning's exercises."""

from __future__ import annotations

from ._core import Wrong, exercise, verdict  # noqa: F401


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
    return verdict(ok, "swap the two rows of the head's weight matrix and the two entries "
                        "of its bias (under torch.no_grad()), on a copy of the model; the "
                        "encoder stays as it is")
