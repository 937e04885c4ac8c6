"""Notebook 03's checkers: the reference passes, the common mistakes fail with their hint,
a stub falls back to the reference."""

import math

import torch

from labkit import checks, mlm
from checker_helpers import wrong


# --------------------------------------------------------------------------- 03.1
def _mask(input_ids, *, mask_token_id, vocab_size, special_ids=(), probability=0.15,
          mask_rate=0.8, random_rate=0.1, generator=None, skip_specials=True,
          labels_everywhere=False, random_any=False, use_generator=True):
    """The masking rule with switchable common mistakes."""
    gen = generator if use_generator else None
    special = torch.isin(input_ids, torch.tensor(sorted(special_ids)))
    chosen = torch.rand(input_ids.shape, generator=gen) < probability
    if skip_specials:
        chosen &= ~special
    labels = input_ids.clone() if labels_everywhere else torch.where(chosen, input_ids, -100)
    u = torch.rand(input_ids.shape, generator=gen)
    to_mask = chosen & (u < mask_rate)
    to_random = chosen & (u >= mask_rate) & (u < mask_rate + random_rate)
    low = 0 if random_any else max(special_ids) + 1
    rand = torch.randint(low, vocab_size, input_ids.shape, generator=gen)
    out = torch.where(to_mask, mask_token_id, input_ids)
    return torch.where(to_random, rand, out), labels


def test_mask_reference_and_the_switchable_copy_pass():
    for _ in range(3):
        checks.get("03.1").check(mlm.mask_tokens)
    checks.get("03.1").check(_mask)


def test_mask_forgetting_the_random_replacement():
    def no_random(ids, **kw):
        return _mask(ids, **{**kw, "random_rate": 0.0})
    assert "random token" in wrong("03.1", no_random)


def test_mask_always_mask():
    def always(ids, **kw):
        return _mask(ids, **{**kw, "mask_rate": 1.0, "random_rate": 0.0})
    assert "none was replaced by a random token" in wrong("03.1", always)


def test_mask_ten_percent_of_the_remaining_twenty():
    def nested(ids, **kw):      # 80% mask, then random for a quarter of the other 20%
        return _mask(ids, **{**kw, "random_rate": 0.05})
    assert "80/10/10 OF THE CHOSEN" in wrong("03.1", nested)


def test_mask_choosing_special_tokens_and_padding():
    assert "special tokens or padding" in wrong(
        "03.1", lambda ids, **kw: _mask(ids, skip_specials=False, **kw))


def test_mask_labels_everywhere():
    assert "-100" in wrong("03.1", lambda ids, **kw: _mask(ids, labels_everywhere=True, **kw))


def test_mask_random_special_tokens():
    assert "random replacements are special" in wrong(
        "03.1", lambda ids, **kw: _mask(ids, random_any=True, **kw))


def test_mask_ignoring_the_generator():
    assert "generator" in wrong("03.1", lambda ids, **kw: _mask(ids, use_generator=False, **kw))


def test_mask_fixed_probability():
    def fixed(ids, **kw):
        return _mask(ids, **{**kw, "probability": 0.15})
    assert "probability" in wrong("03.1", fixed)


# --------------------------------------------------------------------------- 03.2
def _sched(step, total, warmup, low=0.0, *, off_by_one=False, le=False, to_zero=False,
           over_total=False):
    if (step <= warmup if le else step < warmup):
        return (step if off_by_one else step + 1) / warmup
    start = 0 if over_total else warmup
    progress = min(1.0, (step - start) / max(1, total - start))
    c = 0.5 * (1 + math.cos(math.pi * progress))
    return c if to_zero else low + (1 - low) * c


def test_schedule_reference_and_the_switchable_copy_pass():
    checks.get("03.2").check(mlm.warmup_cosine)
    checks.get("03.2").check(_sched)


def test_schedule_off_by_one_at_the_start():
    assert "off by one" in wrong("03.2", lambda *a: _sched(*a, off_by_one=True))


def test_schedule_off_by_one_at_the_warmup_boundary():
    assert "above 1" in wrong("03.2", lambda *a: _sched(*a, le=True))


def test_schedule_decays_to_zero():
    assert "min_lr_ratio" in wrong("03.2", lambda *a: _sched(*a, to_zero=True))


def test_schedule_cosine_over_the_whole_run():
    assert "progress runs from 0" in wrong("03.2", lambda *a: _sched(*a, over_total=True))


def test_schedule_no_warmup_divides_by_zero():
    def naive(step, total, warmup, low=0.0):
        if step < warmup or warmup == 0:
            return (step + 1) / warmup
        return _sched(step, total, warmup, low)
    assert "divides by zero" in wrong("03.2", naive)


# --------------------------------------------------------------------------- fallback, use
def test_stubs_fall_back_to_the_reference(capsys):
    def stub(*a, **kw):
        raise NotImplementedError("your turn")
    assert checks.run("03.1", stub) is mlm.mask_tokens
    assert checks.run("03.2", stub) is mlm.warmup_cosine
    assert capsys.readouterr().out.count("not attempted") == 2


def test_the_collator_uses_the_masking_rule_it_is_given():
    tok = mlm.train_wordpiece(["the cat sat on the mat. a dog ran."] * 50, vocab_size=120)
    seen = []

    def rule(ids, **kw):
        seen.append(kw["probability"])
        return mlm.mask_tokens(ids, **kw)
    batch = mlm.MLMCollator(tok, 0.3, mask_fn=rule)([{"input_ids": [2, 10, 11, 3]}])
    assert seen == [0.3] and batch["labels"].shape == (1, 4)
