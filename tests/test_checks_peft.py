"""Checkers of notebook 08: LoRA's initialisation, forward pass and merge. The reference
passes; the common mistakes (r instead of alpha / r, B not zero, a transposed merge) fail
with their own hint; a stub falls back to the reference."""

import math

import torch
import torch.nn.functional as F

from labkit import checks, peft
from checker_helpers import check, wrong


def test_references_pass_many_times():
    for _ in range(20):
        check("08.1", peft.lora_init)
        check("08.2", peft.lora_forward)
        check("08.3", peft.lora_merge)


# --------------------------------------------------------------------------- 08.1
def test_init_mistakes():
    def b_random(n_in, n_out, r):
        A, _ = peft.lora_init(n_in, n_out, r)
        return A, torch.randn(n_out, r) * 0.01

    def both_zero(n_in, n_out, r):
        return torch.zeros(r, n_in), torch.zeros(n_out, r)

    def a_unscaled(n_in, n_out, r):
        return torch.randn(r, n_in), torch.zeros(n_out, r)

    def transposed(n_in, n_out, r):
        A, B = peft.lora_init(n_in, n_out, r)
        return A.T, B.T

    def swapped(n_in, n_out, r):
        A, _ = peft.lora_init(n_out, n_in, r)
        return torch.zeros(r, n_in), A.T.contiguous()

    wrong("08.1", b_random, "not zero", "pre-trained")
    wrong("08.1", swapped, "convention")
    wrong("08.1", both_zero, "never learns")
    wrong("08.1", a_unscaled, "standard deviation", "1/sqrt(in_features)")
    wrong("08.1", transposed, "transposed")


def test_a_hand_written_init_passes():
    def mine(n_in, n_out, r):
        bound = 1 / math.sqrt(n_in)
        return torch.empty(r, n_in).uniform_(-bound, bound), torch.zeros(n_out, r)
    check("08.1", mine)


# --------------------------------------------------------------------------- 08.2
def test_forward_mistakes():
    def scaled_by_r(x, W, b, A, B, alpha):
        return F.linear(x, W, b) + A.shape[0] * (x @ A.T @ B.T)

    def scaled_by_alpha(x, W, b, A, B, alpha):
        return F.linear(x, W, b) + alpha * (x @ A.T @ B.T)

    def not_scaled(x, W, b, A, B, alpha):
        return F.linear(x, W, b) + x @ A.T @ B.T

    def no_bias(x, W, b, A, B, alpha):
        return x @ W.T + alpha / A.shape[0] * (x @ A.T @ B.T)

    def update_only(x, W, b, A, B, alpha):
        return b + alpha / A.shape[0] * (x @ A.T @ B.T)

    wrong("08.2", scaled_by_r, "scaled by r", "alpha / r")
    wrong("08.2", scaled_by_alpha, "divides it by the rank")
    wrong("08.2", not_scaled, "not scaled")
    wrong("08.2", no_bias, "bias")
    wrong("08.2", update_only, "adds")


def test_a_hand_written_forward_passes():
    def mine(x, W, b, A, B, alpha):
        return x @ W.T + b + (alpha / A.shape[0]) * (x @ A.T) @ B.T
    check("08.2", mine)


# --------------------------------------------------------------------------- 08.3
def test_merge_mistakes():
    def transposed(W, A, B, alpha):
        return W + (alpha / A.shape[0]) * (A.T @ B.T)

    def scaled_by_r(W, A, B, alpha):
        return W + A.shape[0] * (B @ A)

    def not_scaled(W, A, B, alpha):
        return W + B @ A

    wrong("08.3", transposed, "transposed")
    wrong("08.3", scaled_by_r, "scaled by r")
    wrong("08.3", not_scaled, "not scaled")


def test_merge_in_place_passes():
    def mine(W, A, B, alpha):
        W += (alpha / A.shape[0]) * B @ A
        return W
    check("08.3", mine)


def test_stubs_fall_back(capsys):
    def stub(*args):
        raise NotImplementedError("your turn")
    assert checks.run("08.1", stub) is peft.lora_init
    assert checks.run("08.2", stub) is peft.lora_forward
    assert checks.run("08.3", stub) is peft.lora_merge
    assert capsys.readouterr().out.count("not attempted") == 3


def test_a_wrong_answer_hints_then_shows_the_solution(capsys):
    def scaled_by_r(x, W, b, A, B, alpha):
        return F.linear(x, W, b) + A.shape[0] * (x @ A.T @ B.T)
    assert checks.run("08.2", scaled_by_r) is peft.lora_forward
    first = capsys.readouterr().out
    assert "alpha / r" in first and "show me" not in first
    checks.run("08.2", scaled_by_r)
    assert "show me" in capsys.readouterr().out


def test_lora_layer_is_built_on_the_reference_functions():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 4)
    layer = peft.LoRALinear(base, r=2, alpha=8)
    assert torch.equal(layer.lora_B.weight, torch.zeros(4, 2))
    with torch.no_grad():
        layer.lora_B.weight.normal_()
    x = torch.randn(3, 6)
    want = peft.lora_forward(x, base.weight, base.bias, layer.lora_A.weight,
                             layer.lora_B.weight, 8)
    assert torch.allclose(layer(x), want)
    W = base.weight.detach().clone()
    layer.merge()
    assert torch.allclose(base.weight, peft.lora_merge(W, layer.lora_A.weight,
                                                       layer.lora_B.weight, 8))
    assert torch.allclose(layer(x), want, atol=1e-5)
