"""Checkers for notebook 01 seq2seq translator's exercises.

01.1 attention weights and context vector (`labkit.seq2seq.attend`);
01.2 one step of beam search (`labkit.seq2seq.beam_step`).
"""

from __future__ import annotations

import torch

from ..seq2seq import attend as reference_attend
from ..seq2seq import beam_step as reference_beam_step
from ._core import Wrong, close, exercise, fresh_generator


def _attention_inputs(g: torch.Generator, B: int = 3, T: int = 4, S: int = 6, M: int = 5):
    scores = torch.randn(B, T, S, generator=g) * 3
    memory = torch.randn(B, S, M, generator=g)
    lengths = torch.tensor([S, 1] + [int(torch.randint(2, S, (1,), generator=g))
                                     for _ in range(B - 2)])          # full, one word, some
    mask = torch.arange(S)[None, :] < lengths[:, None]
    return scores, memory, mask


@exercise("01.1", "attention weights and context vector", reference=reference_attend)
def check_attend(fn):
    g = fresh_generator()
    scores, memory, mask = _attention_inputs(g)
    out = fn(scores.clone(), memory.clone(), mask.clone())
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Wrong("return two tensors: (context, weights).",
                    "return two things: the context vectors first, then the weights")
    context, weights = (torch.as_tensor(x) for x in out)
    want_context, want_weights = reference_attend(scores, memory, mask)
    if weights.shape != want_weights.shape:
        raise Wrong(f"the weights have shape {tuple(weights.shape)}; they should have the "
                    f"shape of the scores, (B, T, S) = {tuple(want_weights.shape)}.",
                    "mask the scores, then softmax over the last dimension (the source "
                    "positions); do not transpose anything.")
    if torch.isnan(weights).any():
        raise Wrong("some weights are NaN. Did you give -inf to real words, or to a whole "
                    "row? Only padding (mask False) gets -inf.",
                    ('the mask is (B, S) and marks real positions: it needs a T dimension, and the '
                     'positions to hide are where it is False'))
    if not torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-4):
        raise Wrong("for each output step the weights over the source positions must add "
                    "up to 1: take the softmax over the source dimension (the last one), "
                    "not over the output steps.",
                    ("the softmax runs over the source positions (the last dimension), after "
                     "masking"))
    if (weights.masked_select(~mask[:, None, :].expand_as(weights)).abs() > 1e-6).any():
        raise Wrong("padded source positions get a weight above 0: padding must never "
                    "change the answer. Setting their score to 0 is not enough (exp(0) = 1); "
                    "give them a score of -inf before the softmax.",
                    ('padded positions must get weight exactly 0 after the softmax: which score '
                     'gives exp(score) = 0?'))
    close(weights, want_weights, what="the weights",
          hint="mask the padding with -inf, then a softmax over the source positions.")
    close(context, want_context, what="the context vectors",
          hint="the context of step t is the weighted mean of the memory vectors, "
               "sum over s of weights[b, t, s] * memory[b, s]: a batched matrix product.",
          stronger=('the context is a weighted sum of the memory rows; a batched matrix product '
                    'does it'))


def _step_inputs(g: torch.Generator, B: int, K: int, V: int, *, done_share: float = 0.3,
                 first: bool = False):
    """A beam in the middle of decoding (or at its first step, `first`)."""
    logp = torch.randn(B, K, V, generator=g).mul(2).log_softmax(-1)
    if first:           # only "<s>" is alive: the other slots are empty (-inf)
        score = torch.full((B, K), float("-inf"))
        score[:, 0] = 0.0
        return score, torch.zeros(B, K), torch.zeros(B, K, dtype=torch.bool), logp
    length = torch.randint(1, 8, (B, K), generator=g).float()
    score = -length * (0.5 + 2 * torch.rand(B, K, generator=g))
    done = torch.rand(B, K, generator=g) < done_share
    return score, length, done, logp


def _compare_step(fn, inputs, *, eos_id, pad_id, length_penalty, hint, stronger=None):
    score, length, done, logp = inputs
    try:
        got = fn(score.clone(), length.clone(), done.clone(), logp.clone(), eos_id=eos_id,
                 pad_id=pad_id, length_penalty=length_penalty)
    except NotImplementedError:                  # the stub: "not attempted"
        raise
    except (RuntimeError, IndexError) as e:      # e.g. topk(K) over fewer than K words
        raise Wrong(f"your step raised {type(e).__name__} ({str(e)[:80]}): {hint}",
                    stronger) from e
    if not isinstance(got, (tuple, list)) or len(got) != 5:
        raise Wrong("return five (B, K) tensors: score, length, done, parent, word.",
                    "return five tensors, in the order the docstring gives")
    want = reference_beam_step(score, length, done, logp, eos_id=eos_id, pad_id=pad_id,
                               length_penalty=length_penalty)
    names = ["score", "length", "done", "parent", "word"]
    got = [torch.as_tensor(x) for x in got]
    for name, a, b in zip(names, got, want):
        if a.shape != b.shape:
            raise Wrong(f"{name} has shape {tuple(a.shape)}, expected (B, K) = "
                        f"{tuple(b.shape)}: keep exactly K candidates per sentence.",
                        "flatten each sentence's K x V candidates and take topk(K)")
    live = torch.isfinite(want[0])          # empty slots (-inf) may hold any word
    if not torch.equal(torch.isfinite(got[0]), live):
        raise Wrong("your beam keeps a different number of real (finite-score) candidates: "
                    f"{hint}", stronger)
    for name, a, b in zip(names, got, want):
        a, b = a[live].double(), b[live].double()
        if not torch.allclose(a, b, atol=1e-5, rtol=1e-5):
            raise Wrong(f"{name} differs from the reference: {hint}", stronger)


@exercise("01.2", "one step of beam search", reference=reference_beam_step)
def check_beam_step(fn):
    g = fresh_generator()
    eos, pad = 3, 0
    # 1. no finished hypotheses, equal lengths and scores: only the flattening and the top-K
    for _ in range(3):
        _, length, done, logp = _step_inputs(g, 2, 3, 7, done_share=0.0)
        plain = (torch.zeros(2, 3), torch.full_like(length, 2.0), done, logp)
        _compare_step(fn, plain, eos_id=eos, pad_id=pad, length_penalty=1.0,
                      hint="look at all K x V extensions of a sentence at once (flatten K "
                           "and V) and keep the K best; the flat index i is hypothesis i // V, "
                           "word i % V.",
                      stronger=("add each hypothesis' score to its next-word log-probabilities, "
                                'flatten the K x V candidates of a sentence, take the top K, and '
                                'recover parent and word from the flat index'))
    # 2. finished hypotheses must stay, frozen: here the two best ones are finished
    score, length, done, logp = _step_inputs(g, 2, 4, 9, done_share=0.0)
    done[:, :2] = True
    score[:, :2] = -0.01 * torch.rand(2, 2, generator=g)
    _compare_step(fn, (score, length, done, logp), eos_id=eos, pad_id=pad,
                  length_penalty=0.0,
                  hint="a finished hypothesis (done) may only be extended by <pad>, at a cost "
                       "of 0, and it stays finished; its score must not change.",
                  stronger=('a finished hypothesis may only add <pad>, at log-probability 0, so '
                            'its score is frozen; every other word is impossible for it'))
    # 3. length normalisation, with the length after the new word
    _compare_step(fn, _step_inputs(g, 3, 4, 9, done_share=0.3), eos_id=eos, pad_id=pad,
                  length_penalty=1.0,
                  hint="rank candidates by total / new_length ** length_penalty, where "
                       "new_length counts the new word (finished hypotheses do not grow); "
                       "return the total log-probability as the score, not the ranked value.",
                  stronger=('the length grows by one only for hypotheses that are not finished; '
                            'rank by score divided by length ** length_penalty, then keep the raw '
                            'score of the picks'))
    # 4. the first step, with a beam larger than the vocabulary
    _compare_step(fn, _step_inputs(g, 2, 6, 4, first=True), eos_id=eos, pad_id=pad,
                  length_penalty=1.0,
                  hint="at the first step only slot 0 is alive (the others score -inf), and "
                       "here the beam (6) is larger than the vocabulary (4): take the top K "
                       "over all K x V candidates at once, not the top K words of each "
                       "hypothesis (there are fewer than K).",
                  stronger="ranked.reshape(B, K * V).topk(K, dim=1)")
    # 5. anything goes: random beams and penalties
    for _ in range(3):
        lp = float(torch.rand(1, generator=g)) * 1.5
        _compare_step(fn, _step_inputs(g, 4, 5, 11), eos_id=eos, pad_id=pad,
                      length_penalty=lp,
                      hint=f"(length_penalty={lp:.2f}) rank by total / new_length ** "
                           "length_penalty, best first.")
