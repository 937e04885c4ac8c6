"""Checkers for notebook 10 alignment's exercises."""

from __future__ import annotations

import torch

from ..align import dpo_loss as reference_dpo_loss
from ._core import Wrong, close, exercise, fresh_generator, verdict  # noqa: F401


@exercise("10.1", "the DPO loss", reference=reference_dpo_loss)
def check_dpo_loss(fn):
    g = fresh_generator()
    n = int(torch.randint(3, 9, (1,), generator=g))
    pc, pr, rc, rr = (-20 * torch.rand(n, generator=g) - 1 for _ in range(4))
    beta = float(torch.empty(1).uniform_(0.05, 0.9, generator=g))
    out = fn(pc.clone(), pr.clone(), rc.clone(), rr.clone(), beta)
    if out is None:
        raise Wrong("your function returns None: return one loss per pair (a tensor)")
    out = torch.as_tensor(out)
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
                    "-logsigmoid(beta * (chosen log-ratio - rejected log-ratio))")
    if torch.allclose(out, reference_dpo_loss(pc, pr, rc, rr, 1.0), atol=1e-5):
        raise Wrong("beta is missing: it scales the log-ratios before the sigmoid",
                    "-logsigmoid(beta * (...))")
    close(out, want, what="the loss", hint="the loss of a pair is -log sigmoid of beta "
          "times the difference of the two log-ratios (chosen minus rejected)",
          stronger="-F.logsigmoid(beta * ((policy_chosen - ref_chosen) - "
                   "(policy_rejected - ref_rejected)))")
    same = torch.as_tensor(fn(pc.clone(), pr.clone(), pc.clone(), pr.clone(), beta))
    close(same, torch.full((n,), torch.log(torch.tensor(2.0)).item()),
          what="the loss when the policy equals the reference",
          hint="with policy = reference every log-ratio is 0 and the loss is log 2")
