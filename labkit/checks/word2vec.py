"""Checkers for notebook 02 word2vec's exercises."""

from __future__ import annotations

from ._core import Wrong, exercise, verdict  # noqa: F401


def expected_skipgram_pairs(n_words: int, window: int, answer: float) -> bool:
    """Exercise 02: the expected number of (centre, context) pairs a sentence of
    `n_words` words makes with word2vec's dynamic window (no subsampling)."""
    true = 2 * sum((n_words - d) * (window - d + 1) / window
                   for d in range(1, min(window, n_words - 1) + 1))
    return verdict(abs(float(answer) - true) < 1e-6,
                    "count the pairs at each distance d = 1..window: a sentence has n - d "
                    "word pairs at distance d, each pair gives two (centre, context) pairs "
                    "(one per direction), and a centre uses distance d only when its drawn "
                    "window is at least d, which happens with probability (window - d + 1) / "
                    "window")
