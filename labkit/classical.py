"""The classical baseline: TF-IDF features and logistic regression (scikit-learn).

    >>> from labkit import classical
    >>> rows = classical.learning_curve(run, budgets=[128, 512], seeds=[0, 1, 2])

Before pre-trained encoders, a sentiment classifier was a bag of words and bigrams,
weighted by TF-IDF (a word counts more in a review the rarer it is across reviews), fed
to a logistic regression. It trains in a fraction of a second on a CPU, so it is the
line every pre-trained model must clear to earn its cost.

It sees exactly what notebook 04's models see: the label budget drawn with
`data.sample(pool, n, seed=seed)` from the same training split (so the same reviews for
the same seed), the regularisation strength chosen by the course's one selection rule
(the best of four candidates, `C` in 0.01..100, by accuracy on the protocol's validation
rows), and scored on the fixed test rows, logged through `protocol.log_accuracy` as
`acc_tfidf_lr@N` with its per-row results and balanced accuracy.
"""

from __future__ import annotations

import time
from typing import Sequence

CANDIDATES = (0.01, 1.0, 10.0, 100.0)     # inverse regularisation strengths C, one per checkpoint


def _pipeline(c: float, seed: int):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                         LogisticRegression(C=c, max_iter=2000, random_state=seed))


def fit(texts: Sequence[str], labels: Sequence[int], *, validation: tuple, seed: int = 0,
        candidates: Sequence[float] = CANDIDATES):
    """A TF-IDF + logistic-regression classifier trained on `texts`/`labels`, its `C`
    picked among `candidates` by accuracy on `validation` = (texts, labels) (the first
    best on a tie). Returns (pipeline, chosen C, validation accuracy)."""
    if len(texts) == 0 or len(texts) != len(labels):
        raise ValueError(f"classical.fit needs as many labels as texts, got {len(texts)} "
                         f"texts and {len(labels)} labels")
    if len(set(int(y) for y in labels)) < 2:
        raise ValueError("classical.fit needs both classes among the labels: draw the "
                         "budget with data.sample, which balances them")
    v_texts, v_labels = validation
    best = None
    for c in candidates:
        model = _pipeline(c, seed).fit(list(texts), [int(y) for y in labels])
        acc = sum(int(p) == int(y) for p, y in zip(model.predict(list(v_texts)), v_labels))
        acc /= len(v_labels)
        if best is None or acc > best[2]:
            best = (model, c, acc)
    return best


def learning_curve(run, budgets: Sequence[int], seeds: Sequence[int], *,
                   profile: str | None = None, model: str = "tfidf-lr") -> list[dict]:
    """TF-IDF + logistic regression at every label budget x seed, on the rows notebook 04
    draws (`data.sample(train, n, seed=seed)`; a budget at or above the pool's size means
    all of it), scored on the fixed test rows and logged as `acc_tfidf_lr@N`. Returns one
    row per run: {n, seed, accuracy, balanced_acc, C, seconds}."""
    from . import data, protocol

    profile = profile or run.profile
    raw = protocol._raw(profile)
    pool = raw["train"]
    valid = raw["validation"].select(range(protocol.VALIDATION_ROWS[profile]))
    test = protocol.test_split(profile)
    name = protocol.test_set(profile)
    out = []
    for n in budgets:
        for seed in seeds:
            rows = pool if n >= len(pool) else data.sample(pool, n, seed=seed)
            started = time.perf_counter()
            clf, c, _ = fit(rows["text"], rows["label"], seed=seed,
                            validation=(valid["text"], valid["label"]))
            seconds = time.perf_counter() - started
            preds = clf.predict(list(test["text"]))
            correct = [int(p) == int(y) for p, y in zip(preds, test["label"])]
            size = len(rows)
            acc = protocol.log_accuracy(run, f"acc_tfidf_lr@{size}", correct, budget=size,
                                        model=model, seed=seed, wall_s=seconds, test_set=name,
                                        trainable=int(clf[-1].coef_.size + clf[-1].intercept_.size),
                                        C=c)
            out.append({"n": size, "seed": seed, "accuracy": acc,
                        "balanced_acc": protocol.balanced_accuracy(correct, test["label"]),
                        "C": c, "seconds": round(seconds, 2)})
    return out
