"""Checkers for notebook 05 (adaptive pre-training): the summed loss at the masked
tokens of one batch, and the perplexity of a whole held-out text from its batches."""

from __future__ import annotations

import math

import torch

from ..adapt import corpus_perplexity as reference_perplexity
from ..adapt import token_nll as reference_nll
from ._core import Wrong, close, exercise, fresh_generator


@exercise("05.1", "summed loss at the masked tokens", reference=reference_nll)
def check_token_nll(fn):
    g = fresh_generator()
    n, vocab = 12, 9
    logits = torch.randn(n, vocab, generator=g) * 2
    labels = torch.randint(0, vocab, (n,), generator=g)
    labels[torch.tensor([1, 4, 5, 10])] = -100            # not scored (padding, unmasked)
    out = fn(logits.clone(), labels.clone())
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Wrong("return two things: (summed negative log-likelihood, number of scored "
                    "tokens).")
    nll, count = out
    want_nll, want_count = reference_nll(logits, labels)
    if int(count) == n:
        raise Wrong("the count includes the positions labelled -100; only tokens with a "
                    "real label are scored.",
                    'compare the labels with -100 and count the positions that differ')
    if int(count) != want_count:
        raise Wrong(f"the count is {int(count)}; count the positions whose label is not -100.")
    nll = float(torch.as_tensor(nll))
    scored = labels != -100
    mean = torch.nn.functional.cross_entropy(logits[scored], labels[scored]).item()
    if math.isclose(nll, mean, rel_tol=1e-4):
        raise Wrong("that is the mean loss of this batch; return the sum (reduction='sum'), "
                    "so that batches can be added up token by token.",
                    ('cross_entropy averages by default; ask it for the sum instead (its reduction '
                     'argument)'))
    if nll < 0:
        raise Wrong("a negative log-likelihood is never negative: take minus the log "
                    "probability of the right token.")
    close(nll, want_nll, what="the summed NLL", atol=1e-4,
          hint="log_softmax over the vocabulary (the last dimension), pick the right "
               "token's entry, negate, and add up over the scored positions.",
          stronger=('keep only the positions whose label is not -100, and let cross_entropy add '
                    'the losses up rather than average them'))


@exercise("05.2", "perplexity of a whole text", reference=reference_perplexity)
def check_corpus_perplexity(fn):
    g = fresh_generator()
    counts = [3, 250, 40, 7, 180]                       # batches with very different sizes
    means = (torch.rand(len(counts), generator=g) * 2 + 2).tolist()   # 2-4 nats per token
    sums = [m * c for m, c in zip(means, counts)]
    got = float(fn(list(sums), list(counts)))
    want = reference_perplexity(sums, counts)
    if math.isclose(got, sum(math.exp(m) for m in means) / len(means), rel_tol=1e-4):
        raise Wrong("that is the mean of the batches' perplexities. exp is convex, so this "
                    "overstates the perplexity, and a 3-token batch weighs like a 250-token one.",
                    ('add up the NLL of every batch and the tokens of every batch first; take one '
                     'exponential at the very end'))
    if math.isclose(got, math.exp(sum(means) / len(means)), rel_tol=1e-4):
        raise Wrong("that averages the batches' mean losses with equal weight; every token "
                    "should count once, so a batch with more tokens weighs more.",
                    ('a batch of 1,000 tokens must weigh 1,000 times more than a batch of 1: pool '
                     'the sums and the counts before dividing'))
    if math.isclose(got, sum(sums) / sum(counts), rel_tol=1e-4):
        raise Wrong("that is the mean loss in nats; perplexity is its exponential.")
    close(got, want, what="the perplexity", rtol=1e-4,
          hint="perplexity = exp(total NLL / total number of scored tokens).")
