"""Checkers for notebook 07 (prompt cloze): the score of a verbalizer at the mask, and
how many labelled examples a prompt is worth (Le Scao & Rush's horizontal gap)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..prompts import mask_scores, worth_examples
from ._core import Wrong, close, exercise, fresh_generator


# --------------------------------------------------------------------------- 07.1
def _cloze_batch(g: torch.Generator, rows: int = 6, length: int = 11, vocab: int = 40):
    """Random masked-LM logits and rows of different lengths (padded with 0), each with
    one mask (id 3) at its own position, never the first or last real token."""
    mask_id = 3
    lengths = torch.randint(4, length + 1, (rows,), generator=g)
    lengths[0] = length                        # the longest row is first: padding below
    ids = torch.randint(5, vocab, (rows, length), generator=g)
    for i, n in enumerate(lengths.tolist()):
        ids[i, n:] = 0
        ids[i, int(torch.randint(1, n - 1, (1,), generator=g))] = mask_id
    positions = (ids == mask_id).float().argmax(1)
    if len(set(positions.tolist())) < 2:       # rows must not all share one position
        return _cloze_batch(g, rows, length, vocab)
    logits = torch.randn(rows, length, vocab, generator=g) * 3
    label_ids = [int(x) for x in torch.randperm(vocab - 5, generator=g)[:2] + 5]
    if label_ids[0] < label_ids[1]:            # not in increasing order: order is meaning
        label_ids.reverse()
    return logits, ids, mask_id, label_ids


@exercise("07.1", "scores of the verbalizer at the mask", reference=mask_scores)
def check_mask_scores(fn):
    g = fresh_generator()
    logits, ids, mask_id, label_ids = _cloze_batch(g)
    out = fn(logits.clone(), ids.clone(), mask_id, list(label_ids))
    want = mask_scores(logits, ids, mask_id, label_ids)
    out = torch.as_tensor(out)
    if out.shape == want.shape and not torch.allclose(out.double(), want.double(), atol=1e-5):
        rows = torch.arange(len(ids))
        at_mask = logits[rows, (ids == mask_id).float().argmax(1)]
        same_pos = logits[:, int((ids[0] == mask_id).float().argmax())][:, label_ids]
        if torch.allclose(out, logits[:, 0][:, label_ids], atol=1e-5):
            raise Wrong("these are the logits at position 0 (the [CLS] token). The answer "
                        "is predicted at the mask: find where input_ids == mask_token_id.",
                        ("compare input_ids with the mask id; indexing the logits with that "
                         "boolean gives one row per example; then keep the verbalizer's columns"))
        if torch.allclose(out, same_pos, atol=1e-5):
            raise Wrong("every row was read at the first row's mask position. Rows have "
                        "different lengths, so each row's mask sits elsewhere.",
                        "use a boolean mask over the whole batch: logits[input_ids == "
                        "mask_token_id] picks each row's own position")
        if torch.allclose(out, at_mask.log_softmax(-1)[:, label_ids], atol=1e-5) or \
                torch.allclose(out, at_mask.softmax(-1)[:, label_ids], atol=1e-5):
            raise Wrong("these are probabilities over the whole vocabulary. Return the "
                        "logits themselves (the scores before any softmax).",
                        "no softmax: index the logits at the mask with label_ids")
        if torch.allclose(out, want.softmax(-1), atol=1e-5) or \
                torch.allclose(out, want.log_softmax(-1), atol=1e-5):
            raise Wrong("these are normalised over the labels. Return the raw logits; the "
                        "classifier's softmax (and calibration) come later.",
                        'no softmax: index the logits at the mask with label_ids')
        if torch.allclose(out, want.flip(-1), atol=1e-5) or \
                torch.allclose(out, at_mask[:, sorted(label_ids)], atol=1e-5):
            raise Wrong("the label columns are in the wrong order. Column k must be the "
                        "score of label k, i.e. of token label_ids[k].",
                        "index with label_ids as given, do not sort them")
    close(out, want, what="the scores", hint="one row per example, one column per label: "
          "the logit of label k's token at that row's mask.",
          stronger=("find the mask's position in each row with a comparison, then keep only the "
                    "verbalizer's columns of the logits there"))
    # edge case: a row without its mask (or with two) cannot be scored
    for broken in ("none", "two"):
        bad = ids.clone()
        row = 1
        if broken == "none":
            bad[row][bad[row] == mask_id] = 7
        else:
            bad[row, 0] = mask_id
        try:
            fn(logits.clone(), bad, mask_id, list(label_ids))
        except ValueError:
            continue
        except NotImplementedError:
            raise
        except Exception as e:        # the wrong kind of failure
            raise Wrong(f"a row with {broken} mask tokens raised {type(e).__name__}; raise a "
                        "ValueError that says every row needs exactly one mask.") from None
        raise Wrong(f"a row with {broken} mask tokens was scored anyway: the blank is the "
                    "question, so raise a ValueError when a row does not have exactly one.",
                    "count the masks per row: (input_ids == mask_token_id).sum(1); if any "
                    "count is not 1, raise ValueError(...)")


# --------------------------------------------------------------------------- 07.2
BUDGETS = (8, 16, 32, 64, 128, 256, 512)


def _curve(g: torch.Generator, low: float, high: float, dip: bool) -> dict[int, float]:
    steps = torch.rand(len(BUDGETS), generator=g).numpy()
    accs = low + (high - low) * np.cumsum(steps) / steps.sum()
    if dip:                                     # the last budget dips: noise in the mean
        accs[-1] = accs[-2] - 0.02 - 0.03 * float(torch.rand(1, generator=g))
    return dict(zip(BUDGETS, [round(float(a), 4) for a in accs]))


def _shuffled(curve: dict[int, float], g: torch.Generator) -> dict[int, float]:
    keys = list(curve)
    order = torch.randperm(len(keys), generator=g).tolist()
    if order == sorted(order):
        order = order[::-1]
    return {keys[i]: curve[keys[i]] for i in order}


def _worth_close(fn, prompt, head, want, *, what: str, hint: str, stronger: str) -> None:
    try:
        mine = fn(prompt, head)
    except ValueError as e:
        raise Wrong(f"{what}: your function raised ValueError ({e}), but these curves do "
                    f"share an accuracy range. {hint}", stronger) from None
    try:
        mine = float(mine)
    except (TypeError, ValueError):
        raise Wrong(f"{what}: return one number (a float), not {type(mine).__name__}.") from None
    if not math.isfinite(mine):
        raise Wrong(f"{what}: got {mine}. Some levels have no answer: only accuracies that "
                    "BOTH curves reach count (from the higher of the two starts to the lower "
                    "of the two best accuracies).",
                    "low = max(start of each running max), high = min(best of each curve)")
    if abs(mine - want) > 0.5 + 0.02 * abs(want):
        if abs(want) > 5 and abs(mine + want) <= 0.5 + 0.02 * abs(want):
            raise Wrong(f"{what}: the sign is reversed. The worth is how many MORE labels "
                        "the head needs than the prompt: n_head - n_prompt.")
        raise Wrong(f"{what}: {mine:.1f} differs from the reference. {hint}", stronger)


@exercise("07.2", "how many data points a prompt is worth", reference=worth_examples)
def check_prompt_worth(fn):
    g = fresh_generator()
    # 1. a head curve that is the prompt curve 100 examples later, made up by hand
    prompt = {10: 0.60, 20: 0.70, 40: 0.80}
    head = {110: 0.60, 120: 0.70, 140: 0.80, 300: 0.85}
    _worth_close(fn, dict(prompt), dict(head), worth_examples(prompt, head),
                 what="a head curve that is the prompt curve shifted by 100 labels",
                 hint="at every accuracy both reach, read off how many labels each curve "
                      "needs (prompts.labels_needed) and average the difference.",
                 stronger=('on a fine grid of accuracy levels that both curves reach, take how '
                           'many labels each needs and average the difference'))
    # 2. random curves with dips, given with their budgets in random order
    for _ in range(3):
        while True:
            p = _curve(g, 0.50 + 0.1 * float(torch.rand(1, generator=g)), 0.75, dip=True)
            lag = 0.02 + 0.04 * float(torch.rand(1, generator=g))   # the head lags behind
            h = {n: round(a - lag, 4) for n, a in p.items()}
            h[BUDGETS[-1]] = round(max(p.values()) - 0.01, 4)     # but catches up at the end
            try:
                want = worth_examples(p, h)
            except ValueError:
                continue
            if want > 5:
                break
        _worth_close(fn, dict(p), dict(h), want, what="two learning curves with a dip",
                     hint="a dip does not undo an accuracy already reached: the range ends at "
                          "each curve's BEST accuracy (its running maximum), not its last one.",
                     stronger="use np.maximum.accumulate over the accuracies sorted by budget "
                              "to find each curve's start and best")
        _worth_close(fn, _shuffled(p, g), _shuffled(h, g), want,
                     what="the same curves with their budgets in another order",
                     hint="a {budget: accuracy} dict may come in any order: sort by budget "
                          "before reading the first and best accuracies.",
                     stronger="ns = sorted(curve); accs = [curve[n] for n in ns]")
    # 3. curves that never meet: one is above the other everywhere
    apart_p, apart_h = {8: 0.80, 64: 0.85, 512: 0.90}, {8: 0.55, 64: 0.60, 512: 0.70}
    try:
        value = fn(apart_p, apart_h)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as e:
        raise Wrong(f"curves that share no accuracy range raised {type(e).__name__}; raise a "
                    "ValueError that says the gap is undefined.") from None
    raise Wrong(f"curves that share no accuracy range gave {value!r}: when one curve is "
                "above the other everywhere, no accuracy is reached by both, so the gap is "
                "undefined. Raise a ValueError.",
                "when the two curves share no accuracy range, raise a ValueError that says so")
