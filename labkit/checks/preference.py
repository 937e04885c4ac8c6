"""Checkers for notebook 11's exercises: the DPO loss and the on-policy RL loss."""

from __future__ import annotations

import torch

from ..align import dpo_loss as reference_dpo_loss
from ..rl import rl_loss as reference_rl_loss
from ..rl import rloo_advantages
from ._core import Wrong, close, exercise, fresh_generator
from .align import loss_tensor


@exercise("11.1", "the DPO loss", reference=reference_dpo_loss)
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
                    "the loss falls as the chosen answer's log-ratio rises above the rejected "
                    "one's: which comes first in the difference?")
    if torch.allclose(out, reference_dpo_loss(pc, pr, rc, rr, 1.0), atol=1e-5):
        raise Wrong("beta is missing: it scales the log-ratios before the sigmoid",
                    "beta multiplies the difference of the log-ratios inside the logsigmoid, "
                    "not the loss outside it")
    close(out, want, what="the loss", hint="the loss of a pair is -log sigmoid of beta "
          "times the difference of the two log-ratios (chosen minus rejected)",
          stronger="check one pair by hand: each answer's log-ratio (policy minus "
                   "reference), chosen minus rejected, times beta, then minus logsigmoid; "
                   "one loss per pair")
    same = torch.as_tensor(fn(pc.clone(), pr.clone(), pc.clone(), pr.clone(), beta))
    close(same, torch.full((n,), torch.log(torch.tensor(2.0)).item()),
          what="the loss when the policy equals the reference",
          hint="with policy = reference every log-ratio is 0 and the loss is log 2")


@exercise("11.2", "the on-policy RL loss (RLOO with a KL penalty)", reference=reference_rl_loss,
          blocked=(rloo_advantages,))
def check_rl_loss(fn):
    g = fresh_generator()
    k = int(torch.randint(3, 6, (1,), generator=g))
    prompts = int(torch.randint(2, 5, (1,), generator=g))
    n = k * prompts
    logps = -20 * torch.rand(n, generator=g) - 1
    old = logps + 0.1 * torch.randn(n, generator=g)          # a later pass: pi != pi_old
    scores, log_ratio = torch.randn(n, generator=g), 3 * torch.rand(n, generator=g)
    beta = float(torch.empty(1).uniform_(0.05, 0.5, generator=g))
    x = logps.clone().requires_grad_()
    out = loss_tensor(fn(x, old.clone(), scores.clone(), log_ratio.clone(), k, beta),
                      "return the mean loss over the samples (a tensor of shape ())")
    if out.shape != ():
        raise Wrong("return one number, the mean over the samples: train.fit and "
                    "loss.backward() need a single loss", "end with .mean()")
    want = reference_rl_loss(logps, old, scores, log_ratio, k, beta)

    def plain(adv):
        return -(torch.exp(logps - old) * adv).mean()
    if torch.allclose(out, plain(rloo_advantages(scores, k)), atol=1e-5):
        raise Wrong("the KL penalty is missing: the reward is the reward model's score MINUS "
                    "beta times the log-ratio to the reference",
                    "the penalty is per sequence, beta times its log_ratio, taken off the "
                    "score before any baseline")
    if torch.allclose(out, plain(scores - beta * log_ratio), atol=1e-5):
        raise Wrong("the baseline is missing: subtract from each reward the mean reward of "
                    "the OTHER k - 1 samples of its prompt (leave-one-out)",
                    "the k samples of a prompt sit next to each other: view the rewards as "
                    "(prompts, k) and compare each with its k - 1 neighbours")
    mean_base = scores - beta * log_ratio
    grouped = mean_base.view(-1, k)
    if torch.allclose(out, plain((grouped - grouped.mean(1, keepdim=True)).view(-1)), atol=1e-5):
        raise Wrong("the baseline includes the sample itself (the group mean): leave it out, "
                    "the mean of the other k - 1 samples only",
                    "the other k - 1: the group's sum minus the sample itself, divided by "
                    "k - 1")
    if torch.allclose(out, -plain(rloo_advantages(mean_base, k)), atol=1e-5):
        raise Wrong("the sign is flipped: minimising the loss must RAISE the probability of "
                    "samples with a positive advantage", "gradient descent lowers the loss: "
                    "which sign makes a positive advantage push log pi up?")
    close(out, want, what="the loss", hint="rewards = scores - beta * log_ratio; advantage = "
          "reward minus the mean of the other k - 1 rewards of its prompt; loss = "
          "-mean(exp(logps - old_logps) * advantage)",
          stronger="check the parts one at a time on a small batch: the penalised reward, "
                   "the leave-one-out mean of each prompt's group, the ratio "
                   "exp(logps - old_logps) (1 in a first pass), then the mean of ratio times "
                   "advantage, negated")
    x.grad = None
    fn(x, old.clone(), scores.clone(), log_ratio.clone(), k, beta).backward()
    y = logps.clone().requires_grad_()
    reference_rl_loss(y, old, scores, log_ratio, k, beta).backward()
    if x.grad is None or not torch.allclose(x.grad, y.grad, atol=1e-5):
        raise Wrong("the value is right but the gradient is not: the rewards and advantages "
                    "are constants (no gradient through the reward model, the penalty or the "
                    "baseline); only log pi (logps) carries the gradient",
                    "which of the inputs should carry a gradient, and which are constants "
                    "of the sampling step?")
