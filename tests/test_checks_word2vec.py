"""Notebook 02's checkers: the reference passes, the common mistakes fail with their hint,
a stub falls back to the reference."""

import torch
import torch.nn.functional as F

from labkit import checks
from labkit import word2vec as w2v
from checker_helpers import wrong


# --------------------------------------------------------------------------- 02.1
def test_keep_reference_passes():
    for _ in range(5):
        checks.get("02.1").check(w2v.keep_probabilities)


def _keep(counts, t, *, cap=True, normalise=True, paper=False, zero_guard=True, drop=False):
    f = counts / counts.sum() if normalise else counts
    keep = (t / f).sqrt() if paper else (torch.sqrt(f / t) + 1) * t / f
    if zero_guard:
        keep = torch.where(counts > 0, keep, torch.zeros_like(keep))
    if cap:
        keep = keep.clamp(max=1.0)
    return 1 - keep if drop else keep


def test_keep_switchable_copy_passes():
    checks.get("02.1").check(_keep)


def test_keep_not_capped_at_one():
    assert "capped at 1" in wrong("02.1", lambda c, t: _keep(c, t, cap=False))


def test_keep_paper_formula():
    assert "paper's formula" in wrong("02.1", lambda c, t: _keep(c, t, paper=True))


def test_keep_raw_counts_instead_of_frequencies():
    assert "divided by the total" in wrong("02.1", lambda c, t: _keep(c, t, normalise=False))


def test_keep_count_zero_divides_by_zero():
    assert "count 0" in wrong("02.1", lambda c, t: _keep(c, t, zero_guard=False))


def test_keep_drop_probability():
    assert "dropping" in wrong("02.1", lambda c, t: _keep(c, t, drop=True))


# --------------------------------------------------------------------------- 02.2
def test_sgns_reference_passes():
    for _ in range(5):
        checks.get("02.2").check(w2v.sgns)


def test_sgns_sign_of_the_negatives():
    def flipped(pos, neg):
        return -(F.logsigmoid(pos).sum() + F.logsigmoid(neg).sum()) / len(pos)
    assert "sign" in wrong("02.2", flipped)


def test_sgns_mean_over_every_score():
    def all_mean(pos, neg):
        return -torch.cat([F.logsigmoid(pos), F.logsigmoid(-neg).flatten()]).mean()
    assert "every score" in wrong("02.2", all_mean)


def test_sgns_sum_not_mean():
    def summed(pos, neg):
        return -(F.logsigmoid(pos).sum() + F.logsigmoid(-neg).sum())
    assert "sum over the pairs" in wrong("02.2", summed)


def test_sgns_unstable_log_of_sigmoid():
    def naive(pos, neg):
        return -(torch.log(torch.sigmoid(pos)).sum()
                 + torch.log(torch.sigmoid(-neg)).sum()) / len(pos)
    assert "large scores" in wrong("02.2", naive)


def test_sgns_without_gradient():
    def numpy_loss(pos, neg):
        return torch.tensor(w2v.sgns(pos, neg).item())
    assert "no gradient" in wrong("02.2", numpy_loss)


# --------------------------------------------------------------------------- fallback, use
def test_stubs_fall_back_to_the_reference(capsys):
    def stub(*a, **kw):
        raise NotImplementedError("your turn")
    assert checks.run("02.1", stub) is w2v.keep_probabilities
    assert checks.run("02.2", stub) is w2v.sgns
    assert capsys.readouterr().out.count("not attempted") == 2


def test_the_batches_and_the_loss_use_the_functions_they_are_given():
    sents = [["a", "b", "c", "a", "b", "d"] * 5] * 20
    corpus = w2v.Corpus.build(sents, min_count=1)
    calls = []

    def keep(counts, t):
        calls.append(t)
        return w2v.keep_probabilities(counts, t)
    batches = w2v.SkipGramBatches(corpus, batch_size=64, keep_fn=keep, sample=1e-2)
    assert calls == [1e-2]
    batch = next(iter(batches))
    model = w2v.SkipGram(len(corpus.vocab), dim=8)
    assert torch.equal(w2v.sgns_loss(model, batch, objective=lambda p, n: p.sum() * 0 + 7.0),
                       torch.tensor(7.0))
