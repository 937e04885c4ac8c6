"""Checkers of notebook 12: the reference passes, the common mistakes fail with their own
hint, a stub falls back to the reference."""

import numpy as np

from labkit import checks, datacare
from checker_helpers import check, wrong


# --------------------------------------------------------------------------- 12.1
def test_shingle_jaccard_reference_passes_many_times():
    for _ in range(20):
        check("12.1", datacare.shingle_jaccard)


def _sets(a, b, k, *, words=datacare.words, short=True):
    def sh(t):
        w = words(t)
        if not w:
            return set()
        if len(w) < k:
            return {tuple(w)} if short else set()
        return {tuple(w[i:i + k]) for i in range(len(w) - k + 1)}
    return sh(a), sh(b)


def test_shingle_jaccard_common_mistakes_get_their_hint():
    def no_lower(a, b, k=3):
        A, B = _sets(a, b, k, words=str.split)
        return len(A & B) / len(A | B) if A | B else 0.0

    def chars(a, b, k=3):
        A = {a.lower()[i:i + k] for i in range(len(a) - k + 1)}
        B = {b.lower()[i:i + k] for i in range(len(b) - k + 1)}
        return len(A & B) / len(A | B) if A | B else 0.0

    def short_is_empty(a, b, k=3):
        A, B = _sets(a, b, k, short=False)
        return len(A & B) / len(A | B) if A | B else 0.0

    def overlap(a, b, k=3):
        A, B = _sets(a, b, k)
        return len(A & B) / min(len(A), len(B)) if A and B else 0.0

    def multiset(a, b, k=3):
        def lst(t):
            w = datacare.words(t)
            return [tuple(w[i:i + k]) for i in range(len(w) - k + 1)] or ([tuple(w)] if w else [])
        la, lb = lst(a), lst(b)
        inter = sum(min(la.count(s), lb.count(s)) for s in set(la) | set(lb))
        return inter / (len(la) + len(lb) - inter) if la or lb else 0.0

    def divides_by_zero(a, b, k=3):
        A, B = _sets(a, b, k)
        return len(A & B) / len(A | B)

    wrong("12.1", no_lower, "lower-cased")
    wrong("12.1", chars, "character")
    wrong("12.1", short_is_empty, "fewer than k words")
    wrong("12.1", overlap, "union")
    wrong("12.1", multiset, "set")
    wrong("12.1", divides_by_zero, "0.0")


def test_shingle_jaccard_stub_falls_back(capsys):
    def stub(a, b, k=3):
        raise NotImplementedError("your turn")
    assert checks.run("12.1", stub) is datacare.shingle_jaccard
    assert "not attempted" in capsys.readouterr().out


# --------------------------------------------------------------------------- 12.2
def test_label_issues_reference_passes_many_times():
    for _ in range(10):
        check("12.2", datacare.label_issues)


def test_label_issues_common_mistakes_get_their_hint():
    def rule(labels, probs, *, thresholds=None, first=False, keep_agree=False):
        k = probs.shape[1]
        t = thresholds if thresholds is not None else np.array(
            [probs[labels == j, j].mean() for j in range(k)])
        conf = probs >= t - 1e-6
        guess = conf.argmax(1) if first else np.where(conf.sum(1) > 1, probs.argmax(1),
                                                      conf.argmax(1))
        flag = conf.any(1) & (guess != labels)
        return flag if keep_agree else flag & (probs.argmax(1) != labels)

    wrong("12.2", lambda y, p: p.argmax(1) != y, "threshold")
    wrong("12.2", lambda y, p: p[np.arange(len(y)), y] < 0.5, "own threshold")
    wrong("12.2", lambda y, p: rule(y, p, thresholds=p.mean(0)), "all examples")
    wrong("12.2", lambda y, p: rule(y, p, first=True), "most probable")
    wrong("12.2", lambda y, p: rule(y, p, keep_agree=True), "not flagged")
    wrong("12.2", lambda y, p: np.flatnonzero(rule(y, p)), "one bool per example")


def test_label_issues_stub_falls_back(capsys):
    def stub(labels, probs):
        raise NotImplementedError("your turn")
    assert checks.run("12.2", stub) is datacare.label_issues
    assert "not attempted" in capsys.readouterr().out
