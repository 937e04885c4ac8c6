"""Checkers for notebook 12 (the data when labels are few): the exact Jaccard similarity
of two texts' word shingles, and confident learning's rule for flagging a label, checked
against cleanlab's own result."""

from __future__ import annotations

import numpy as np

from ..datacare import label_issues, shingle_jaccard, words
from ._core import Wrong, exercise, fresh_generator

# --------------------------------------------------------------------------- 12.1
_VOCAB = ["the", "film", "A", "movie", "is", "not", "great", "Dull", "fun", "plot", "and",
          "acting", "it", "was", "Funny", "slow"]


def _text(rng: np.random.Generator, n: int) -> str:
    """A random "review" of n words from a small vocabulary (so shingles repeat and
    overlap), with mixed case and punctuation."""
    w = [_VOCAB[int(i)] for i in rng.integers(len(_VOCAB), size=n)]
    if n and rng.random() < 0.5:
        w[0] = w[0].capitalize()
    return " ".join(w) + (rng.choice([".", "!", " ...", ""]) if n else "?!")


def _pairs(rng: np.random.Generator) -> list[tuple[str, str, int]]:
    """Fresh text pairs for each shingle size: overlapping, repeated, short, empty."""
    pairs = []
    for k in (1, 2, 3, 4):
        base = _text(rng, int(rng.integers(8, 14)))
        w = base.split()
        edited = w.copy()
        edited[int(rng.integers(len(w)))] = "UNUSUAL"
        pairs.append((base, " ".join(edited), k))                     # near duplicates
        pairs.append((base.upper(), base.lower(), k))                   # case only
        pairs.append((_text(rng, int(rng.integers(6, 12))), _text(rng, int(rng.integers(6, 12))), k))
        rep = " ".join(w[:3] * 3)
        pairs.append((rep, " ".join(w[:3]), k))                         # repeated shingles
    pairs.append(("Dull!", "dull", 3))                                  # shorter than k
    pairs.append(("fun plot", "fun plot", 3))
    pairs.append(("great fun", "Great fun indeed and more", 3))
    pairs.append(("...", "?!", 2))                                      # no words at all
    pairs.append(("...", "a fine film", 2))
    return pairs


def _variants(a: str, b: str, k: int) -> dict[str, float]:
    """What common mistakes would answer for one pair."""
    def jac(x, y):
        u = len(x | y)
        return len(x & y) / u if u else 0.0

    def sh(ws, kk):
        return {tuple(ws[i:i + kk]) for i in range(len(ws) - kk + 1)}

    wa, wb = words(a), words(b)
    raw_a, raw_b = a.split(), b.split()
    out = {"short": jac(sh(wa, k), sh(wb, k)),
           "chars": jac({a.lower()[i:i + k] for i in range(len(a) - k + 1)},
                        {b.lower()[i:i + k] for i in range(len(b) - k + 1)}),
           "case": jac(sh(raw_a, k) if len(raw_a) >= k else {tuple(raw_a)},
                       sh(raw_b, k) if len(raw_b) >= k else {tuple(raw_b)})}
    A = sh(wa, k) if len(wa) >= k else ({tuple(wa)} if wa else set())
    B = sh(wb, k) if len(wb) >= k else ({tuple(wb)} if wb else set())
    out["overlap"] = len(A & B) / min(len(A), len(B)) if A and B else 0.0
    la = [tuple(wa[i:i + k]) for i in range(len(wa) - k + 1)] or ([tuple(wa)] if wa else [])
    lb = [tuple(wb[i:i + k]) for i in range(len(wb) - k + 1)] or ([tuple(wb)] if wb else [])
    inter = sum(min(la.count(s), lb.count(s)) for s in set(la) | set(lb))
    out["multiset"] = inter / (len(la) + len(lb) - inter) if la or lb else 0.0
    return out


_HINTS = {
    "case": ("the words must be compared lower-cased and without punctuation: 'Film' and "
             "'film.' are the same word. Use datacare.words(text).",
             "Look at the first thing your function does with each text: the words it "
             "splits out must already be lower-cased and stripped of punctuation."),
    "chars": ("these are character shingles. A shingle here is k consecutive *words*.",
              "Slide a window of k over the list of words, not over the string: each "
              "window, as a tuple, is one shingle."),
    "short": ("a text with fewer than k words (but at least one) must still count: it is "
              "one shingle made of all its words, not an empty set.",
              "Check what your window loop gives when the text has fewer than k words: "
              "that case needs one shingle of its own."),
    "overlap": ("this divides by the smaller set. Jaccard divides the intersection by the "
                "union: |A & B| / |A | B|.",
                "Read your denominator again: it must count every shingle in either set "
                "once."),
    "multiset": ("a repeated shingle counted more than once. Shingles form a *set*: each "
                 "one counts once however often it occurs.",
                 "put the shingles in a Python set before intersecting"),
}


@exercise("12.1", "Jaccard similarity of word shingles", reference=shingle_jaccard)
def check_shingle_jaccard(fn):
    rng = np.random.default_rng(int(fresh_generator().initial_seed()) % 2**32)
    first = None                # the first pair answered wrong
    for a, b, k in _pairs(rng):
        want = shingle_jaccard(a, b, k)
        try:
            got = fn(a, b, k)
        except ZeroDivisionError:
            raise Wrong(f"two texts without any word ({a!r}, {b!r}) divided by zero. Their "
                        "shingle sets are both empty: say their similarity is 0.0.",
                        "Handle the case of two empty shingle sets before you divide.") from None
        if got is None or not np.isfinite(float(got)):
            raise Wrong(f"shingle_jaccard({a!r}, {b!r}, k={k}) returned {got!r}; return a "
                        "number between 0 and 1.")
        if abs(float(got) - want) <= 1e-9:
            continue
        first = first or (a, b, k, float(got), want)
        # a mistake is named only where its answer is the only one that fits this pair
        fits = [n for n, v in _variants(a, b, k).items()
                if abs(float(got) - v) <= 1e-9 and abs(v - want) > 1e-9]
        values = _variants(a, b, k)
        if len(fits) == 1 and sum(abs(v - values[fits[0]]) <= 1e-9 for v in values.values()) == 1:
            hint, stronger = _HINTS[fits[0]]
            raise Wrong(f"for {a!r} and {b!r} with k={k} you gave {float(got):.4f}, the "
                        f"exact Jaccard is {want:.4f}: {hint}", stronger)
    if first:
        a, b, k, got, want = first
        raise Wrong(f"for {a!r} and {b!r} with k={k} you gave {got:.4f}; the exact "
                    f"Jaccard of their {k}-word shingle sets is {want:.4f}.",
                    "Test your function on two short texts you can work out by hand: "
                    "list their shingles (tuples of k lower-cased words), then count the "
                    "shared ones and all of them.")


# --------------------------------------------------------------------------- 12.2
def _noisy_probs(rng: np.random.Generator, n: int, k: int, sure: float = 3.5):
    """Predicted probabilities and given labels like a real detector's input: the model
    mostly agrees with the labels, some labels are wrong, some rows are unsure (a small
    `sure`: an unsure model, whose thresholds are low enough for several classes to pass)."""
    true = rng.integers(k, size=n)
    logits = rng.normal(0, 1.0, size=(n, k))
    logits[np.arange(n), true] += rng.uniform(0, sure, size=n)
    probs = np.exp(logits)
    probs /= probs.sum(1, keepdims=True)
    labels = true.copy()
    flip = rng.random(n) < 0.2
    labels[flip] = (labels[flip] + rng.integers(1, k, size=flip.sum())) % k
    return labels, probs


def _edge_cases(rng: np.random.Generator):
    """A small set (rows in a fresh order) where the rule's fine print decides: one row
    whose label is confident but a more probable class is too (the guess is the most
    probable one), and one whose most probable class is its label although another
    class passes its threshold (not flagged)."""
    rows = ([(0, [0.4, 0.3, 0.3])] * 3 + [(1, [0.3, 0.45, 0.25])] * 3
            + [(2, [0.05, 0.05, 0.9])] * 2
            + [(0, [0.42, 0.5, 0.08]), (2, [0.41, 0.1, 0.49])])
    order = rng.permutation(len(rows))
    return (np.array([rows[i][0] for i in order]),
            np.array([rows[i][1] for i in order], dtype=float))


def _cleanlab(labels, probs) -> np.ndarray:
    from cleanlab.filter import find_label_issues

    return np.asarray(find_label_issues(labels, probs, filter_by="confident_learning"))


def _wrong_rules(labels, probs) -> dict[str, np.ndarray]:
    """What common mistakes would flag."""
    y, k = labels, probs.shape[1]
    rows = np.arange(len(y))
    out = {}

    def rule(t, *, first=False, keep_agree=False):
        conf = probs >= t - 1e-6
        guess = conf.argmax(1) if first else np.where(conf.sum(1) > 1, probs.argmax(1),
                                                      conf.argmax(1))
        flag = conf.any(1) & (guess != y)
        return flag if keep_agree else flag & (probs.argmax(1) != y)

    own = np.array([probs[y == j, j].mean() for j in range(k)])
    out["first"] = rule(own, first=True)
    out["agree"] = rule(own, keep_agree=True)
    out["half"] = probs[rows, y] < 0.5
    out["argmax"] = probs.argmax(1) != y
    out["all_rows"] = rule(probs.mean(0))      # low thresholds: much like "argmax"
    return out


_RULE_HINTS = {
    "argmax": ("this flags (almost) every example whose most probable class is not its "
               "label. Confident learning is stricter: a class counts only when its "
               "probability reaches that class's own threshold, the mean p_j over the "
               "examples labelled j (not over all examples).",
               "Compute one threshold per class first; then a class is 'confident' for an "
               "example only when its probability reaches that class's threshold."),
    "half": ("a fixed threshold of 0.5 is not the rule: each class j has its own "
             "threshold, the mean probability of j among the examples *labelled* j (not among "
             "all examples).",
             "Which rows enter class j's threshold? Only those whose given label is j, "
             "and only their probability of j."),
    "all_rows": ("the thresholds were averaged over all examples. t[j] is the mean of "
                 "p_j over the examples whose given label is j (its own threshold).",
                 "Select the rows by their given label before you average class j's "
                 "probability."),
    "first": ("when several classes pass their thresholds, the guess is the *most "
              "probable* of them, not the first one.",
              "Where more than one class is confident, pick among them by probability, not "
              "by class index."),
    "agree": ("an example whose most probable class is its given label is not flagged, "
              "even when another class also passes its threshold (cleanlab removes those).",
              "Add one more condition to the flag: the model's single most probable class "
              "must also differ from the given label."),
}


@exercise("12.2", "confident learning: flag the labels to doubt", reference=label_issues)
def check_label_issues(fn):
    rng = np.random.default_rng(int(fresh_generator().initial_seed()) % 2**32)
    first = None
    draws = [_noisy_probs(rng, int(rng.integers(300, 500)), k, sure)
             for k, sure in ((2, 3.5), (3, 3.5), (4, 3.5), (4, 1.0))] + [_edge_cases(rng)]
    for labels, probs in draws:
        k = probs.shape[1]
        want = _cleanlab(labels, probs)
        got = fn(labels.copy(), probs.copy())
        got = np.asarray(got)
        if got.dtype != bool or got.shape != want.shape:
            raise Wrong(f"return one bool per example, shape {want.shape} (got dtype "
                        f"{got.dtype}, shape {got.shape}).",
                        "Combine your conditions with & into one boolean array of the "
                        "examples' length.")
        if (got == want).all():
            continue
        first = first or (int((got != want).sum()), len(want), k)
        # the most specific mistake that gives this answer is named
        fits = [name for name, mask in _wrong_rules(labels, probs).items()
                if (got == mask).all() and not (mask == want).all()]
        if fits:
            hint, stronger = _RULE_HINTS[fits[0]]
            raise Wrong(f"{int((got != want).sum())} of {len(want)} flags differ from "
                        f"cleanlab's ({k} classes): {hint}", stronger)
    if first:
        raise Wrong(f"{first[0]} of {first[1]} flags differ from cleanlab's "
                    f"find_label_issues(filter_by='confident_learning') ({first[2]} classes).",
                    "Print your thresholds, one per class, and the flags of a few rows, "
                    "then walk one flagged row through the rule by hand: its confident "
                    "classes, its guess, its label.")
