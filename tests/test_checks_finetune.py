"""Notebook 04's checkers: the reference passes, the common mistakes get their hint, a stub
falls back to labkit's reference."""

import torch

from labkit import checks, finetune
from labkit.checks import finetune as c04
from checker_helpers import wrong


def test_freeze_encoder_reference_passes_and_mistakes_get_their_hint():
    c04.check_freeze_encoder(finetune.freeze_encoder)

    def everything(model):                       # the head frozen too
        for p in model.parameters():
            p.requires_grad = False
        return model

    def by_name(model):                          # the pooler left learning
        for n, p in model.named_parameters():
            p.requires_grad = n.startswith("classifier") or "pooler" in n
        return model

    def eval_only(model):                        # eval() is not freezing
        return model.eval()

    def no_return(model):
        finetune.freeze_encoder(model)

    wrong(c04.check_freeze_encoder, everything, "head is frozen")
    wrong(c04.check_freeze_encoder, by_name, "pooler")
    wrong(c04.check_freeze_encoder, eval_only, "eval()", "requires_grad")
    wrong(c04.check_freeze_encoder, no_return, "returns none")


def test_mean_pool_reference_passes_and_mistakes_get_their_hint():
    c04.check_mean_pool(finetune.mean_pool)
    wrong(c04.check_mean_pool, lambda h, m: h.mean(1), "padding included")
    wrong(c04.check_mean_pool, lambda h, m: (h * m[..., None]).sum(1), "sum", "mask.sum(1)")
    wrong(c04.check_mean_pool, lambda h, m: (h * m[..., None]).sum(1) / h.shape[1],
          "padded length")
    wrong(c04.check_mean_pool, lambda h, m: h[:, 0], "differs")
    wrong(c04.check_mean_pool, lambda h, m: (h * m[..., None]).mean(2), "shape")


def test_stubs_fall_back_to_the_reference(capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError("your turn")

    assert checks.run("04.1", stub) is finetune.freeze_encoder
    assert checks.run("04.2", stub) is finetune.mean_pool
    assert "not attempted" in capsys.readouterr().out


def test_mean_pool_ignores_padding_on_a_real_batch():
    h = torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    out = finetune.mean_pool(h, mask)
    assert torch.allclose(out[0], h[0, :2].mean(0)) and torch.allclose(out[1], h[1].mean(0))
