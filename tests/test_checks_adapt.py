"""Notebook 05's checkers: the reference passes, the common mistakes get their hint, a stub
falls back to labkit's reference."""

import math

import pytest
import torch

from labkit import adapt, checks
from labkit.checks import adapt as c05
from checker_helpers import wrong


def test_token_nll_reference_passes_and_mistakes_get_their_hint():
    c05.check_token_nll(adapt.token_nll)
    F = torch.nn.functional

    def mean(logits, labels):
        return F.cross_entropy(logits, labels), int((labels != -100).sum())

    def counts_all(logits, labels):
        return F.cross_entropy(logits, labels, reduction="sum"), len(labels)

    def wrong_dim(logits, labels):
        keep = labels != -100
        logp = logits[keep].log_softmax(0)
        return -logp.gather(1, labels[keep, None]).sum(), int(keep.sum())

    wrong(c05.check_token_nll, mean, "mean loss", "reduction='sum'")
    wrong(c05.check_token_nll, counts_all, "-100")
    wrong(c05.check_token_nll, wrong_dim, "log_softmax over the vocabulary")


def test_corpus_perplexity_reference_passes_and_mistakes_get_their_hint():
    c05.check_corpus_perplexity(adapt.corpus_perplexity)

    def mean_of_ppl(sums, counts):
        return sum(math.exp(s / c) for s, c in zip(sums, counts)) / len(sums)

    def unweighted(sums, counts):
        return math.exp(sum(s / c for s, c in zip(sums, counts)) / len(sums))

    def no_exp(sums, counts):
        return sum(sums) / sum(counts)

    wrong(c05.check_corpus_perplexity, mean_of_ppl, "mean of the batches' perplexities")
    wrong(c05.check_corpus_perplexity, unweighted, "equal weight")
    wrong(c05.check_corpus_perplexity, no_exp, "exponential")


def test_stubs_fall_back_to_the_reference(capsys):
    def stub(*args, **kwargs):
        raise NotImplementedError("your turn")

    assert checks.run("05.1", stub) is adapt.token_nll
    assert checks.run("05.2", stub) is adapt.corpus_perplexity
    assert "not attempted" in capsys.readouterr().out


def test_corpus_perplexity_refuses_no_tokens():
    with pytest.raises(ValueError, match="no scored tokens"):
        adapt.corpus_perplexity([0.0], [0])
