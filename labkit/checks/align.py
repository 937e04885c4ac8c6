"""Checkers for notebook 10's exercises: the Bradley-Terry loss and the DPO loss."""

from __future__ import annotations

import torch

from ..align import bradley_terry_loss as reference_bt_loss
from ..align import dpo_loss as reference_dpo_loss
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


@exercise("10.2", "the DPO loss", reference=reference_dpo_loss)
def check_dpo_loss(fn):
    g = fresh_generator()
    n = int(torch.randint(3, 9, (1,), generator=g))
    pc, pr, rc, rr = (-20 * torch.rand(n, generator=g) - 1 for _ in range(4))
    beta = float(torch.empty(1).uniform_(0.05, 0.9, generator=g))
    out = loss_tensor(fn(pc.clone().requires_grad_(), pr.clone().requires_grad_(), rc.clone(),
                         rr.clone(), beta), "return one loss per pair (a tensor)")
    want = reference_dpo_loss(pc, pr, rc, rr, beta)
    if out.shape != want.shape:
        raise Wrong(f"return one loss per pair, shape ({n},), not {tuple(out.shape)}: no "
                    ".mean() here, train.fit's loss takes the mean",
                    "the loss of pair i uses only the four numbers of pair i")
    if torch.allclose(out, -torch.nn.functional.logsigmoid(beta * (pc - pr)), atol=1e-5):
        raise Wrong("the reference model is missing: DPO compares how much MORE the policy "
                    "prefers the chosen than the reference does",
                    "use the log-ratios pi/pi_ref: policy_chosen - ref_chosen and "
                    "policy_rejected - ref_rejected")
    if torch.allclose(out, reference_dpo_loss(pr, pc, rr, rc, beta), atol=1e-5):
        raise Wrong("the sign is flipped: the loss should be small when the chosen "
                    "continuation's log-ratio is the larger one",
                    ("the loss falls as the chosen answer's log-ratio rises above the rejected "
                     "one's: which comes first in the difference?"))
    if torch.allclose(out, reference_dpo_loss(pc, pr, rc, rr, 1.0), atol=1e-5):
        raise Wrong("beta is missing: it scales the log-ratios before the sigmoid",
                    ('beta multiplies the difference of the log-ratios inside the logsigmoid, not '
                     'the loss outside it'))
    close(out, want, what="the loss", hint="the loss of a pair is -log sigmoid of beta "
          "times the difference of the two log-ratios (chosen minus rejected)",
          stronger=("check one pair by hand: each answer's log-ratio (policy minus reference), "
                    'chosen minus rejected, times beta, then minus logsigmoid; one loss per pair'))
    same = torch.as_tensor(fn(pc.clone(), pr.clone(), pc.clone(), pr.clone(), beta))
    close(same, torch.full((n,), torch.log(torch.tensor(2.0)).item()),
          what="the loss when the policy equals the reference",
          hint="with policy = reference every log-ratio is 0 and the loss is log 2")
