"""Notebook 01's checkers: the reference passes, the common mistakes fail with their hint,
a stub falls back to the reference."""

import torch

from labkit import checks, seq2seq
from checker_helpers import check, wrong


# --------------------------------------------------------------------------- 01.1
def test_attend_reference_passes_several_draws():
    for _ in range(5):
        check("01.1", seq2seq.attend)


def test_attend_softmax_over_the_wrong_dimension():
    def over_steps(scores, memory, mask):
        w = scores.masked_fill(~mask[:, None, :], float("-inf")).softmax(dim=1)
        return w @ memory, w
    assert "add up to 1" in wrong("01.1", over_steps) or "NaN" in wrong("01.1", over_steps)


def test_attend_padding_set_to_zero_not_minus_infinity():
    def zero_pad(scores, memory, mask):
        w = scores.masked_fill(~mask[:, None, :], 0.0).softmax(-1)
        return w @ memory, w
    assert "-inf" in wrong("01.1", zero_pad)


def test_attend_no_mask_at_all():
    def unmasked(scores, memory, mask):
        w = scores.softmax(-1)
        return w @ memory, w
    assert "padded source positions" in wrong("01.1", unmasked)


def test_attend_wrong_context():
    def summed(scores, memory, mask):
        _, w = seq2seq.attend(scores, memory, mask)
        return memory.mean(1, keepdim=True).expand(-1, w.shape[1], -1), w
    assert "weighted mean" in wrong("01.1", summed)


# --------------------------------------------------------------------------- 01.2
def _step(score, length, done, logp, *, eos_id, pad_id, length_penalty=1.0, parent_div=None,
          freeze=True, normalise=True, old_length=False):
    """beam_step with switchable common mistakes."""
    B, K, V = logp.shape
    if freeze:
        frozen = torch.full((V,), float("-inf"))
        frozen[pad_id] = 0.0
        logp = torch.where(done[..., None], frozen, logp)
    total = score[..., None] + logp
    new_len = length[..., None] + (~done[..., None]).float()
    denom = (length[..., None].expand_as(total) if old_length else new_len).clamp(min=1)
    ranked = total / denom ** length_penalty if normalise else total
    pick = ranked.reshape(B, K * V).topk(K, dim=1).indices
    d = parent_div or V
    parent, word = pick // d, pick % V
    parent = parent.clamp(max=K - 1)
    return (total.reshape(B, K * V).gather(1, pick),
            new_len.expand(B, K, V).reshape(B, K * V).gather(1, pick),
            done.gather(1, parent) | (word == eos_id), parent, word)


def test_beam_step_reference_and_the_switchable_copy_pass():
    for _ in range(5):
        check("01.2", seq2seq.beam_step)
    check("01.2", _step)


def test_beam_step_parent_off_by_the_beam():
    def by_k(score, length, done, logp, **kw):
        return _step(score, length, done, logp, parent_div=logp.shape[1], **kw)
    assert "i // V" in wrong("01.2", by_k)


def test_beam_step_finished_hypotheses_not_frozen():
    def unfrozen(*a, **kw):
        return _step(*a, freeze=False, **kw)
    assert "finished hypothesis" in wrong("01.2", unfrozen)


def test_beam_step_ranked_by_raw_log_probability():
    def raw(*a, **kw):
        return _step(*a, normalise=False, **kw)
    assert "new_length" in wrong("01.2", raw)


def test_beam_step_length_before_the_new_word():
    def old(*a, **kw):
        return _step(*a, old_length=True, **kw)
    assert "new_length" in wrong("01.2", old)


def test_beam_step_top_k_per_hypothesis_fails_when_the_beam_exceeds_the_vocabulary():
    def per_hypothesis(score, length, done, logp, *, eos_id, pad_id, length_penalty=1.0):
        B, K, V = logp.shape
        logp.topk(K, dim=-1)            # the shortcut: K best words of each hypothesis
        return seq2seq.beam_step(score, length, done, logp, eos_id=eos_id, pad_id=pad_id,
                                 length_penalty=length_penalty)
    assert "larger than the vocabulary" in wrong("01.2", per_hypothesis)


# --------------------------------------------------------------------------- fallback
def test_stubs_fall_back_to_the_reference(capsys):
    def stub(*a, **kw):
        raise NotImplementedError("your turn")
    assert checks.run("01.1", stub) is seq2seq.attend
    assert checks.run("01.2", stub) is seq2seq.beam_step
    assert capsys.readouterr().out.count("not attempted") == 2


def test_a_model_built_with_the_learners_attention_decodes_like_the_reference():
    torch.manual_seed(0)
    a = seq2seq.Seq2Seq(20, 20, emb_dim=8, hidden=8, dropout=0.0)
    torch.manual_seed(0)
    b = seq2seq.Seq2Seq(20, 20, emb_dim=8, hidden=8, dropout=0.0,
                        attend=lambda s, m, k: seq2seq.attend(s, m, k))
    src, lengths = torch.tensor([[5, 6, 7, 3], [8, 3, 0, 0]]), torch.tensor([4, 2])
    ha = seq2seq.beam_search(a, src, lengths, beam=3, max_len=6)
    hb = seq2seq.beam_search(b, src, lengths, beam=3, max_len=6, step=_step)
    assert [h.tokens for h in ha] == [h.tokens for h in hb]
