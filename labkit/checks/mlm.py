"""Checkers for notebook 03 BERT masked-LM pre-training's exercises.

03.1 the 80/10/10 masking rule (`labkit.mlm.mask_tokens`);
03.2 warmup then cosine decay of the learning rate (`labkit.mlm.warmup_cosine`).
"""

from __future__ import annotations

import math

import torch

from ..mlm import IGNORE
from ..mlm import mask_tokens as reference_mask_tokens
from ..mlm import warmup_cosine as reference_warmup_cosine
from ._core import Wrong, exercise, fresh_generator

SPECIALS = (0, 1, 2, 3, 4)         # [PAD] [UNK] [CLS] [SEP] [MASK], as in train_wordpiece
MASK_ID, VOCAB = 4, 60


def _blocks(g: torch.Generator, rows: int = 500, width: int = 48) -> torch.Tensor:
    """[CLS] tokens [SEP] [PAD]...: rows of random real tokens of random lengths."""
    ids = torch.randint(len(SPECIALS), VOCAB, (rows, width), generator=g)
    lengths = torch.randint(8, width + 1, (rows,), generator=g)
    pos = torch.arange(width)[None, :]
    ids[:, 0] = 2
    ids = torch.where(pos == lengths[:, None] - 1, torch.tensor(3), ids)
    return torch.where(pos >= lengths[:, None], torch.tensor(0), ids)


def _mask(fn, ids, seed, probability=0.15):
    out = fn(ids.clone(), mask_token_id=MASK_ID, vocab_size=VOCAB, special_ids=SPECIALS,
             probability=probability, generator=torch.Generator().manual_seed(seed))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Wrong("return two tensors: (inputs, labels).", "return inputs, labels")
    inputs, labels = (torch.as_tensor(x) for x in out)
    if inputs.shape != ids.shape or labels.shape != ids.shape:
        raise Wrong(f"inputs and labels must both have the shape of input_ids, "
                    f"{tuple(ids.shape)}.", "work element-wise; no flattening")
    return inputs.long(), labels.long()


@exercise("03.1", "the 80/10/10 masking rule", reference=reference_mask_tokens)
def check_mask_tokens(fn):
    g = fresh_generator()
    ids = _blocks(g)
    seed = int(torch.randint(1 << 30, (1,), generator=g))
    inputs, labels = _mask(fn, ids, seed)
    again = _mask(fn, ids, seed)
    if not (torch.equal(inputs, again[0]) and torch.equal(labels, again[1])):
        raise Wrong("two calls with generators seeded alike gave different masks: draw "
                    "every random number from `generator` (torch.rand(..., "
                    "generator=generator), torch.randint(..., generator=generator)), so "
                    "that fit's seed and evaluate's fixed masks work.")
    special = torch.isin(ids, torch.tensor(SPECIALS))
    chosen = labels != IGNORE
    if not chosen.any():
        raise Wrong("no label is set: at the chosen positions the label is the original "
                    "token id; -100 everywhere else.")
    if chosen.all():
        raise Wrong("every position has a label: only the chosen positions are graded; give "
                    "every other position the label -100, which the loss skips.",
                    'at chosen positions the label is the original id; everywhere else it is -100')
    if (chosen & special).any():
        raise Wrong("special tokens or padding were chosen for prediction: [CLS], [SEP] and "
                    "[PAD] must never be masked or graded (padding is not text, and [CLS]/"
                    "[SEP] are always the same).",
                    ('draw the choice for every position, then exclude the special ids (torch.isin '
                     'helps)'))
    if not torch.equal(labels[chosen], ids[chosen]):
        raise Wrong("at a chosen position the label must be the ORIGINAL token id (what the "
                    "model must guess), not what the model sees.")
    if not torch.equal(inputs[~chosen], ids[~chosen]):
        raise Wrong("positions that were not chosen must be left exactly as they are, and "
                    "their label is -100 (the loss skips them). Did you set labels only "
                    "where you put [MASK]?",
                    ('build the labels from input_ids before you change anything, and change '
                     'inputs only at chosen positions'))
    share = chosen.sum().item() / (~special).sum().item()
    if abs(share - 0.15) > 0.025:
        raise Wrong(f"{share:.1%} of the real tokens were chosen; it should be about 15% "
                    "(`probability`) of the tokens that are not special.")
    n = chosen.sum().item()
    as_mask = (inputs[chosen] == MASK_ID).sum().item() / n
    same = (inputs[chosen] == ids[chosen]).sum().item() / n
    replaced = 1 - as_mask - same
    if replaced < 0.03:
        raise Wrong(f"of the chosen tokens {as_mask:.0%} became [MASK] and {same:.0%} stayed, "
                    "but none was replaced by a random token: the rule is 80% [MASK], 10% a "
                    "random token, 10% unchanged.",
                    "one uniform draw u per position: u < 0.8 -> [MASK]; 0.8 <= u < 0.9 -> a "
                    "random non-special token; else unchanged")
    if abs(as_mask - 0.8) > 0.05 or abs(replaced - 0.1) > 0.04 or abs(same - 0.1) > 0.04:
        raise Wrong(f"of the chosen tokens {as_mask:.0%} became [MASK], {replaced:.0%} a "
                    f"random token and {same:.0%} stayed: the rule is 80/10/10 OF THE CHOSEN "
                    "tokens (not of all tokens, and not 10% of the remaining 20%).",
                    "one uniform draw u per chosen position: u < 0.8 -> [MASK]; "
                    "0.8 <= u < 0.9 -> random; else unchanged")
    randoms = inputs[chosen & (inputs != ids) & (inputs != MASK_ID)]
    if torch.isin(randoms, torch.tensor(SPECIALS)).any() or (randoms >= VOCAB).any():
        raise Wrong("some random replacements are special tokens (or outside the "
                    "vocabulary): draw them from the ordinary tokens only.",
                    'draw the random replacements among the ids that are not special tokens')
    inputs, labels = _mask(fn, ids, seed + 1, probability=0.4)
    share = (labels != IGNORE).sum().item() / (~special).sum().item()
    if abs(share - 0.4) > 0.03:
        raise Wrong(f"with probability=0.4, {share:.0%} of the real tokens were chosen: use "
                    "the `probability` argument rather than a fixed 0.15.")


def _steps(fn, total, warmup, min_ratio):
    return [float(fn(s, total, warmup, min_ratio)) for s in range(total + 1)]


@exercise("03.2", "warmup then cosine decay", reference=reference_warmup_cosine)
def check_warmup_cosine(fn):
    g = fresh_generator()
    cases = [(100, 10, 0.0), (1200, 72, 0.1), (50, 0, 0.1),
             (int(torch.randint(30, 400, (1,), generator=g)),
              int(torch.randint(1, 30, (1,), generator=g)),
              round(float(torch.rand(1, generator=g)) * 0.3, 3))]
    for total, warmup, low in cases:
        try:
            got = _steps(fn, total, warmup, low)
        except ZeroDivisionError as e:
            raise Wrong(f"with warmup_steps=0 (no warmup) your function divides by zero: "
                        "then the warmup branch is never taken.",
                        ("with warmup_steps = 0 there is no warmup phase: its branch must never "
                         "run, so nothing divides by it")) from e
        want = _steps(reference_warmup_cosine, total, warmup, low)
        where = f"(total_steps={total}, warmup_steps={warmup}, min_lr_ratio={low})"
        if warmup and got[0] == 0.0:
            raise Wrong(f"{where} the first step (step 0) has learning rate 0, a wasted step: "
                        "the warmup is off by one. Step 0 is the first of warmup_steps steps.",
                        "during warmup the multiplier is (step + 1) / warmup_steps")
        if max(got) > 1 + 1e-9:
            raise Wrong(f"{where} the multiplier goes above 1 (at step "
                        f"{max(range(len(got)), key=got.__getitem__)}): the warmup must end "
                        "at exactly 1, at step warmup_steps - 1; step warmup_steps is the "
                        "first step of the decay.",
                        "use step < warmup_steps for the warmup branch, not <=")
        if abs(got[-1] - low) > 1e-6 and low > 0 and abs(got[-1]) < 1e-6:
            raise Wrong(f"{where} the schedule ends at 0; it should end at min_lr_ratio "
                        "(the cosine goes from 1 down to min_lr_ratio, not to 0).",
                        ('after warmup the multiplier goes from 1 down to min_lr_ratio along half '
                         'a cosine period'))
        bad = [s for s in range(total + 1) if not math.isclose(got[s], want[s], abs_tol=1e-6)]
        if bad:
            s = bad[0]
            hint = (f"{where} at step {s} you give {got[s]:.4f}. ")
            if s >= warmup:
                hint += ("After warmup, progress runs from 0 at step warmup_steps to 1 at "
                         "total_steps: (step - warmup_steps) / (total_steps - warmup_steps), "
                         "and stays 1 after that.")
            else:
                hint += "During warmup the multiplier rises linearly, reaching 1 at step " \
                        "warmup_steps - 1."
            raise Wrong(hint, ('compute the fraction of the decay phase done (0 at warmup_steps, 1 '
                               'at total_steps, never above 1), then put it through the cosine; '
                               'check step 0, warmup_steps - 1 and total_steps by hand'))
