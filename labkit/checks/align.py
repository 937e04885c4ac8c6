"""Checkers for notebook 10's exercise (the Bradley-Terry loss) and the loss helper that
notebook 11's checkers (`checks.preference`) share."""

from __future__ import annotations

import torch

from ..align import bradley_terry_loss as reference_bt_loss
from ._core import Wrong, close, exercise, fresh_generator, verdict  # noqa: F401


def loss_tensor(out, none_hint: str) -> torch.Tensor:
    """The learner's loss, detached for comparing, once it is known to be a tensor still in
    the autograd graph (`train.fit` backpropagates through it)."""
    if out is None:
        raise Wrong(f"your function returns None: {none_hint}")
    if not (torch.is_tensor(out) and out.requires_grad):
        raise Wrong("your loss is cut off from the graph (a float, .item(), .detach() or "
                    "numpy): training backpropagates through it, so keep it a torch tensor "
                    "computed from the inputs", "use torch operations only, e.g. "
                    "torch.nn.functional.logsigmoid, and return the tensor itself")
    return out.detach()


@exercise("10.1", "the Bradley-Terry loss", reference=reference_bt_loss)
def check_bradley_terry_loss(fn):
    g = fresh_generator()
    n = int(torch.randint(4, 12, (1,), generator=g))
    chosen, rejected = 3 * torch.randn(n, generator=g), 3 * torch.randn(n, generator=g)
    out = loss_tensor(fn(chosen.clone().requires_grad_(), rejected.clone().requires_grad_()),
                      "return the mean loss over the pairs (a tensor of shape ())")
    if out.shape == (n,):
        raise Wrong("return one number, the mean over the pairs: train.fit backpropagates "
                    "a single loss", "end with .mean()")
    want = reference_bt_loss(chosen, rejected)
    if torch.allclose(out, reference_bt_loss(rejected, chosen), atol=1e-5):
        raise Wrong("the sign is flipped: the loss should be small when the chosen "
                    "continuation's reward is the larger one",
                    "the chosen answer's reward comes first in the difference")
    if torch.allclose(out, -torch.sigmoid(chosen - rejected).mean(), atol=1e-5) or \
            torch.allclose(out, (1 - torch.sigmoid(chosen - rejected)).mean(), atol=1e-5):
        raise Wrong("the log is missing: Bradley-Terry gives the probability that the chosen "
                    "wins, sigmoid(r_chosen - r_rejected), and the loss is its negative log "
                    "(the likelihood of the rankings seen)",
                    'torch.nn.functional.logsigmoid gives log(sigmoid(x)) without overflow')
    close(out, want, what="the loss", hint="the loss of a pair is -log sigmoid("
          "r_chosen - r_rejected); return its mean over the pairs",
          stronger=('write P(chosen wins) as a sigmoid of the reward difference; the loss is minus '
                    'its log (logsigmoid is the stable way), averaged over the pairs'))
    shifted = torch.as_tensor(fn(chosen + 100.0, rejected + 100.0))
    close(shifted, want, what="the loss after adding 100 to every reward",
          hint="only the DIFFERENCE of the two rewards may count: a reward model's scale "
               "has no zero point")
