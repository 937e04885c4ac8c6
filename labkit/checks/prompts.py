"""Checkers for notebook 07 prompt cloze's exercises."""

from __future__ import annotations

from ._core import Wrong, exercise, verdict  # noqa: F401


def prompt_worth(answer: float) -> bool:
    """Exercise 07: by hand, how many labelled examples the prompt is worth for two toy
    learning curves (prompt: 10, 20, 40 labels -> 60, 70, 80%; head: 10, 20, 40, 80
    labels -> 50, 60, 70, 80%), with Le Scao & Rush's horizontal gap."""
    from ..prompts import data_points_worth

    true = data_points_worth({10: 0.60, 20: 0.70, 40: 0.80},
                             {10: 0.50, 20: 0.60, 40: 0.70, 80: 0.80}).examples
    return verdict(abs(float(answer) - true) <= 0.5,
                    "the shared accuracy range is 60-80%; at 60%, 70% and 80% read how many "
                    "labels each curve needs and take the difference; between those levels "
                    "the gap changes linearly, so average each half's two ends, then average "
                    "the halves")
