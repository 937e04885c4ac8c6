"""Checkers for notebook 09 strategy showdown's exercises."""

from __future__ import annotations

from ._core import Wrong, exercise, verdict  # noqa: F401


def best_strategy(srows: list[dict], budget: int, answer: str, notebook: str = "04",
                  tag: str = "") -> bool:
    """Exercise 09: which strategy had the highest mean test accuracy at `budget` labels
    in one notebook's main comparison (rows of other notebooks used other models)."""
    at = [r for r in srows if r["budget"] == budget and r["notebook"].startswith(notebook)
          and r["tag"] == tag]
    if not at:
        return verdict(False, f"no strategy of notebook {notebook} was run with {budget} labels")
    best = max(at, key=lambda r: r["mean"])
    ok = answer.strip().lower() in {best["strategy"], best["what"].lower()}
    return verdict(ok, f"keep the rows of notebook {notebook} with budget == {budget} and an "
                        "empty 'tag', take the one with the largest 'mean' and answer with "
                        "its 'strategy' field")
