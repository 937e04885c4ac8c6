"""Checkers for notebook 02 word2vec's exercises.

02.1 the subsampling probability (`labkit.word2vec.keep_probabilities`);
02.2 the SGNS loss from the scores, values and gradients (`labkit.word2vec.sgns`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..word2vec import keep_probabilities as reference_keep
from ..word2vec import sgns as reference_sgns
from ._core import Wrong, close, exercise, fresh_generator


def _counts(g: torch.Generator, n: int = 60) -> torch.Tensor:
    """Word counts like a corpus's: two unused ids (count 0), one very frequent word,
    a few frequent ones and a long tail of rare words."""
    counts = torch.randint(1, 40, (n,), generator=g).double()
    counts[:2] = 0                       # the special tokens never occur
    counts[2] = 50_000                   # "the"
    counts[3:8] = torch.randint(2_000, 9_000, (5,), generator=g).double()
    return counts


@exercise("02.1", "subsampling: the probability of keeping a word",
          reference=reference_keep)
def check_keep(fn):
    g = fresh_generator()
    for t in (1e-3, 1e-4, 3e-3):
        counts = _counts(g)
        got = torch.as_tensor(fn(counts.clone(), t)).double()
        want = reference_keep(counts, t)
        if got.shape != want.shape:
            raise Wrong(f"return one probability per word id, shape {tuple(want.shape)}; got "
                        f"{tuple(got.shape)}.", "work element-wise on the counts tensor")
        if not torch.isfinite(got).all():
            raise Wrong("some probabilities are NaN or infinite: words with count 0 (the "
                        "special tokens) divide by zero. Give them probability 0.",
                        "torch.where(f > 0, formula, 0), with f clamped away from 0 inside "
                        "the formula")
        if torch.allclose(got[2:], 1 - want[2:], atol=1e-6):
            raise Wrong("you returned the probability of *dropping* a word; return the "
                        "probability of keeping it.", "1 minus what you have")
        if (got[:2] != 0).any():
            raise Wrong("ids with count 0 (the special tokens) must get probability 0: they "
                        "never occur in the text.", "torch.where(counts > 0, ..., 0.0)")
        if (got > 1 + 1e-9).any():
            raise Wrong("some probabilities are above 1: for rare words the formula gives "
                        "more than 1, and a probability is capped at 1 (rare words are "
                        "always kept).", ".clamp(max=1.0)")
        f = counts / counts.sum()
        paper = torch.where(f > 0, (t / f.clamp_min(1e-300)).sqrt(), 0 * f).clamp(max=1)
        if torch.allclose(got, paper, atol=1e-9):
            raise Wrong("that is the paper's formula, sqrt(t / f). The word2vec code (and "
                        "gensim, which we compare with) keep a word with probability "
                        "(sqrt(f / t) + 1) * t / f, a little more generous: use that one.",
                        ("the formula works on each word's share of the corpus, not on its raw "
                         'count'))
        close(got, want, what="the probabilities",
              hint=f"(t = {t:g}) f is the word's frequency, its count divided by the total "
                   "count, not the raw count; then (sqrt(f / t) + 1) * t / f, capped at 1.",
              stronger=("compute each word's frequency share first; words that never occur get "
                        'probability 0, and no probability goes above 1'), atol=1e-9, rtol=1e-7)


def _scores(g: torch.Generator, B: int = 48, share: int = 8, K: int = 5, scale: float = 3.0):
    pos = (torch.randn(B, generator=g) * scale).requires_grad_()
    neg = (torch.randn(B // share, share, K, generator=g) * scale).requires_grad_()
    return pos, neg


def _loss_and_grads(fn, pos, neg):
    p, n = pos.detach().clone().requires_grad_(), neg.detach().clone().requires_grad_()
    loss = fn(p, n)
    if not torch.is_tensor(loss) or loss.numel() != 1:
        raise Wrong("return the loss as one number in a tensor (the mean over the pairs).",
                    'sum the per-pair losses, then divide by the number of pairs')
    if not loss.requires_grad:
        raise Wrong("your loss has no gradient: compute it with torch operations on pos and "
                    "neg (no .item(), .detach(), numpy or float()), so that backward works.")
    gp, gn = torch.autograd.grad(loss.reshape(()), (p, n))
    return loss.detach().reshape(()), gp, gn


@exercise("02.2", "the skip-gram negative-sampling loss", reference=reference_sgns)
def check_sgns(fn):
    g = fresh_generator()
    pos, neg = _scores(g)
    loss, gp, gn = _loss_and_grads(fn, pos, neg)
    want, wp, wn = _loss_and_grads(reference_sgns, pos, neg)
    B, K = len(pos), neg.shape[-1]
    if torch.isclose(loss, want * B, rtol=1e-4):
        raise Wrong("that is the sum over the pairs; average it over the B pairs of the batch "
                    "(the learning rate is set for the mean).", "divide by len(pos)")
    if torch.isclose(loss, want * B / (B * (1 + K)), rtol=1e-4):
        raise Wrong("you averaged over every score (B + B*K of them); the loss of one pair "
                    "is its positive term plus the SUM over its K negatives, then average "
                    "over the B pairs.", ('sum the per-pair losses, then divide by the number of '
                                          'pairs'))
    flipped = -(F.logsigmoid(pos).sum() + F.logsigmoid(neg).sum()) / B
    if torch.isclose(loss, flipped.detach(), rtol=1e-4):
        raise Wrong("check the sign inside the negatives' term: a negative should score LOW, "
                    "so its term is log sigma(-score), not log sigma(score).",
                    "F.logsigmoid(-neg)")
    close(loss, want, what="the loss",
          hint="per pair: -log sigma(pos) - sum over its negatives of log sigma(-neg); "
               "then the mean over the pairs.",
          stronger="each pair's loss sums over its own K negatives; then average over the B pairs")
    close(gp, wp, what="the gradient with respect to pos",
          hint="autograd of your loss disagrees with the reference's: (sigma(pos) - 1) / B.")
    close(gn, wn, what="the gradient with respect to neg",
          hint="autograd of your loss disagrees with the reference's: sigma(neg) / B.")
    # large scores: a trained model produces them, and log(sigmoid(x)) breaks down there
    big_pos = torch.tensor([120.0, -120.0, 30.0, -30.0])
    big_neg = torch.tensor([[[120.0], [-120.0], [30.0], [-30.0]]])
    loss, gp, gn = _loss_and_grads(fn, big_pos, big_neg)
    if not torch.isfinite(loss) or not (torch.isfinite(gp).all() and torch.isfinite(gn).all()):
        raise Wrong("with large scores (|score| > 100, which a trained model reaches) your "
                    "loss or its gradient is infinite or NaN: log(sigmoid(x)) underflows to "
                    "log(0). Use a numerically stable form.",
                    ('torch.nn.functional.logsigmoid computes log(sigmoid(x)) without forming '
                     'sigmoid(x)'))
    want = reference_sgns(big_pos, big_neg)
    close(loss, want, what="the loss at large scores", rtol=1e-4, atol=1e-3,
          hint="use F.logsigmoid, which is exact for scores of any size.")
