"""Checkers for the notebooks' "your turn" exercises.

    from labkit import checks
    attention_weights = checks.run("01.1", attention_weights)

`_core` holds the machinery (run, hints, fallback to the reference, progress); one
module per notebook holds that notebook's checkers, each registered with
`@exercise("NN.k", title, reference=...)`:

    setup (00)  seq2seq (01)  word2vec (02)  mlm (03)  finetune (04)  adapt (05)
    behaviour (06)  prompts (07)  peft (08)  compare (09)  align (10)  preference (11)
    datacare (12)
"""

from __future__ import annotations

import importlib

from ._core import (BEGIN, END, EXERCISES, CalledReference, Exercise, Wrong,  # noqa: F401
                    close, exercise, fresh_generator, get, is_instructor_solution,
                    preserved_random_state, progress, progress_path, reference_blocked, run,
                    solution_link, solution_path)
from .compare import best_strategy  # noqa: F401  (notebook 09's question, a number answer)

# notebook number -> the module of its checkers
MODULES = {"00": "setup", "01": "seq2seq", "02": "word2vec", "03": "mlm", "04": "finetune",
           "05": "adapt", "06": "behaviour", "07": "prompts", "08": "peft", "09": "compare",
           "10": "align", "11": "preference", "12": "datacare"}


def load_all() -> None:
    """Import every notebook's checker module, so that EXERCISES is complete."""
    for name in MODULES.values():
        importlib.import_module(f"{__name__}.{name}")
