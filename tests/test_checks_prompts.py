"""Checkers of notebook 07: the reference passes, the common mistakes fail with their own
hint, a stub falls back to the reference."""

import numpy as np
import pytest
import torch

from labkit import checks, prompts
from checker_helpers import check, wrong


# --------------------------------------------------------------------------- 07.1
def test_mask_scores_reference_passes_many_times():
    for _ in range(20):
        check("07.1", prompts.mask_scores)


def test_mask_scores_common_mistakes_get_their_hint():
    def cls_position(logits, ids, mask_id, label_ids):
        return logits[:, 0][:, label_ids]

    def first_rows_position(logits, ids, mask_id, label_ids):
        pos = int((ids[0] == mask_id).nonzero()[0])
        return logits[:, pos][:, label_ids]

    def vocab_softmax(logits, ids, mask_id, label_ids):
        return logits[ids == mask_id].log_softmax(-1)[:, label_ids]

    def label_softmax(logits, ids, mask_id, label_ids):
        return logits[ids == mask_id][:, label_ids].softmax(-1)

    def sorted_labels(logits, ids, mask_id, label_ids):
        return logits[ids == mask_id][:, sorted(label_ids)]

    def no_check(logits, ids, mask_id, label_ids):
        rows = torch.arange(len(ids))
        return logits[rows, (ids == mask_id).float().argmax(1)][:, label_ids]

    wrong("07.1", cls_position, "position 0")
    wrong("07.1", first_rows_position, "different lengths")
    wrong("07.1", vocab_softmax, "whole vocabulary")
    wrong("07.1", label_softmax, "normalised over the labels")
    wrong("07.1", sorted_labels, "wrong order")
    wrong("07.1", no_check, "exactly one", "ValueError")


def test_mask_scores_stub_falls_back(capsys):
    def stub(logits, ids, mask_id, label_ids):
        raise NotImplementedError("your turn")
    assert checks.run("07.1", stub) is prompts.mask_scores
    assert "not attempted" in capsys.readouterr().out


# --------------------------------------------------------------------------- 07.2
def test_prompt_worth_reference_passes_many_times():
    for _ in range(10):
        check("07.2", prompts.worth_examples)


def mean_gap(low, high, prompt, head, points=2001):
    levels = np.linspace(low, high, points)
    return float(np.mean(prompts.labels_needed(head, levels) - prompts.labels_needed(prompt, levels)))


def test_a_coarser_but_correct_grid_passes():
    def coarse(prompt, head):
        ends = []
        for c in (prompt, head):
            accs = np.maximum.accumulate([c[n] for n in sorted(c)])
            ends.append((accs[0], accs[-1]))
        low, high = max(e[0] for e in ends), min(e[1] for e in ends)
        if not high > low:
            raise ValueError("no shared range")
        return mean_gap(low, high, prompt, head, points=1001)
    check("07.2", coarse)


def test_prompt_worth_common_mistakes_get_their_hint():
    def ends(c, *, sort=True, running=True):
        ns = sorted(c) if sort else list(c)
        accs = [c[n] for n in ns]
        if running:
            accs = np.maximum.accumulate(accs)
        return accs[0], accs[-1]

    def worth(prompt, head, **kw):
        (p0, p1), (h0, h1) = ends(prompt, **kw), ends(head, **kw)
        low, high = max(p0, h0), min(p1, h1)
        if not high > low:
            raise ValueError("no shared range")
        return mean_gap(low, high, prompt, head)

    def unsorted(prompt, head):
        return worth(prompt, head, sort=False)

    def no_running_max(prompt, head):
        return worth(prompt, head, running=False)

    def union_range(prompt, head):
        (p0, p1), (h0, h1) = ends(prompt), ends(head)
        return mean_gap(min(p0, h0), max(p1, h1), prompt, head)

    def reversed_sign(prompt, head):
        return -prompts.worth_examples(prompt, head)

    def never_raises(prompt, head):
        try:
            return prompts.worth_examples(prompt, head)
        except ValueError:
            return 0.0

    wrong("07.2", unsorted, "any order")
    wrong("07.2", no_running_max, "running maximum")
    wrong("07.2", union_range, "both")
    wrong("07.2", reversed_sign, "sign")
    wrong("07.2", never_raises, "ValueError")


def test_prompt_worth_stub_falls_back(capsys):
    def stub(prompt, head):
        raise NotImplementedError
    assert checks.run("07.2", stub) is prompts.worth_examples
    assert "not attempted" in capsys.readouterr().out


def test_from_scores_reads_raw_and_calibrated_from_one_pass():
    g = np.random.default_rng(0)
    scores, labels = g.normal(size=(2, 30, 2)), g.integers(0, 2, 30)
    bias = g.normal(size=(2, 2))
    z = prompts.from_scores(scores, labels, ["a", "b"], bias)
    assert z.per_pattern["a"] == float((scores[0].argmax(1) == labels).mean())
    probs = torch.as_tensor(scores).softmax(-1).mean(0).numpy()
    assert (z.predictions == probs.argmax(1)).all() and set(z.bias) == {"a", "b"}
    with pytest.raises(ValueError, match="patterns"):
        prompts.from_scores(scores, labels, ["a"])
