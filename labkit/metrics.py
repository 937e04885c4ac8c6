"""The numbers the course reports: accuracy, macro-F1, BLEU (and a paired bootstrap between
two systems), perplexity, mean and spread."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def accuracy(predictions: Sequence, labels: Sequence) -> float:
    p, y = np.asarray(predictions), np.asarray(labels)
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"need as many predictions as labels (got {p.shape} and {y.shape})")
    return float((p == y).mean())


def macro_f1(predictions: Sequence, labels: Sequence) -> float:
    """F1 per class, averaged with equal weight (robust to class imbalance)."""
    p, y = np.asarray(predictions), np.asarray(labels)
    scores = []
    for c in np.unique(np.concatenate([p, y])):
        tp = np.sum((p == c) & (y == c))
        fp, fn = np.sum((p == c) & (y != c)), np.sum((p != c) & (y == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def bleu(hypotheses: Sequence[str], references: Sequence[str], **kwargs) -> float:
    """Corpus BLEU (0-100) with sacrebleu's standard 13a tokenisation, one reference each."""
    import sacrebleu

    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"need one reference per hypothesis (got {len(hypotheses)} "
                         f"hypotheses and {len(references)} references)")
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], **kwargs).score)


def paired_bootstrap_bleu(a: Sequence[str], b: Sequence[str], references: Sequence[str], *,
                          n: int = 1000, seed: int = 0, **kwargs) -> float:
    """Paired bootstrap (Koehn, 2004): the share of `n` resamples of the test sentences
    (the same resample for both systems) on which system `a` has the higher corpus BLEU
    than system `b`. Sentence statistics are extracted once and summed per resample, so
    it costs one BLEU computation per system, not per resample."""
    from sacrebleu.metrics import BLEU

    if not (len(a) == len(b) == len(references)) or not references:
        raise ValueError(f"need one output of each system per reference (got {len(a)}, "
                         f"{len(b)} and {len(references)})")
    metric = BLEU(**kwargs)
    refs = [list(references)]
    sa = np.asarray(metric._extract_corpus_statistics(list(a), refs), dtype=np.int64)
    sb = np.asarray(metric._extract_corpus_statistics(list(b), refs), dtype=np.int64)
    rng = np.random.default_rng(seed)
    wins = 0
    for _ in range(n):
        idx = rng.integers(0, len(references), len(references))
        score_a = metric._compute_score_from_stats(sa[idx].sum(0).tolist()).score
        score_b = metric._compute_score_from_stats(sb[idx].sum(0).tolist()).score
        wins += score_a > score_b
    return wins / n


def perplexity(mean_loss: float) -> float:
    """exp of a mean cross-entropy in nats; capped to stay finite for untrained models."""
    return float(math.exp(min(mean_loss, 50.0)))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    v = np.asarray(values, dtype=float)
    if v.size < 2 or np.all(v == v[0]):     # equal values: exactly 0, not rounding noise
        return float(v.mean()), 0.0
    return float(v.mean()), float(v.std(ddof=1))
