"""The one evaluation protocol of the course's target task (movie-review sentiment).

    >>> from labkit import protocol
    >>> task = protocol.target_task(tokenizer, "quick")      # train / validation / test
    >>> protocol.log_baseline(run)                            # acc_majority on the test set
    >>> correct = protocol.score(model, task["test"])         # one bool per test row
    >>> protocol.log_accuracy(run, "acc_full_ft@128", correct, budget=128, model="minilm",
    ...                       seed=0, trainable=22_713_986, wall_s=41.0)

Every notebook from 02 on scores the target task on the same fixed rows, so their numbers
compare:

* The test set is the whole bundled test split, 2,000 sentences (`rt-test-2000`), in
  `quick` and in `full` alike (the bundled files are read in every profile, so a `full`
  run on a machine that reaches the hub still scores the same rows). `smoke` scores the
  first 32 of them (`rt-test-smoke-32`) and claims nothing.
* A notebook that must score fewer rows for time scores the first `n` (the stored split is
  in random order, so they are a random sample) and names them `slice_name(profile, n)`,
  e.g. `rt-test-2000:500`; it logs that slice's own majority baseline, and comparisons
  never mix test sets.
* The majority class is decided on the training split (positive, 57.6% of 9,751
  sentences); always answering it scores `majority(profile)` on the test rows (58.75% on
  `rt-test-2000`). Every accuracy is read against that line.
* Each accuracy row in the ledger carries `test_set`, `label_budget`, `model`,
  `trainable`, `train_wall_s` and the per-row correctness packed as a hex bitmask
  (`correct_hex`, bit i = row i), so `labkit.compare` can run a paired test between any
  two strategies scored on the same rows.

How large a difference is meaningful on 2,000 rows: one model's accuracy near 70% has a
standard error of sqrt(0.7 * 0.3 / 2000) = 1.0 point. Two models scored on the same rows
differ only where they disagree, and a paired bootstrap over the rows resamples exactly
those disagreements: if they disagree on a fraction d of the rows, the 95% interval of
their difference has a half-width of about 1.96 * sqrt(d / 2000) (1.4 points at d = 10%,
2.0 at 20%, 2.9 at 42%). Measured with the quick recipe at 128 labels: two seeds of
MiniLM (67.6% and 59.7%) disagree on 41.7% of the rows, half-width 2.9 points; two seeds
of tiny-mlm on 42.9%, half-width 2.8. So between two single small-budget runs the rows
resolve about 3 points; 2 points only between models that agree on 80% of the rows or
more, or between means over seeds (averaging each row over seeds shrinks the
disagreement). On 1,000 rows every half-width is 1.4 times larger (4.0 points at
d = 42%), which is why the protocol scores all 2,000. The seed spread is the other source
of noise; `labkit.compare` asks a verdict to clear both.

Scoring 2,000 rows is cheap next to training: `score` runs the model without autograd
(`torch.inference_mode`) on length-bucketed batches (rows sorted by length, so a batch
pads to its own longest sentence). Measured on one thread of a shared 2-core CPU, all
2,000 rows at max_length 64: MiniLM (22.7M parameters) 19 s (33 s through
`train.evaluate`, unsorted batches of 128), tiny-mlm (4.4M) 0.8 s (1.5 s).
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import torch

from .batching import by_length
from .text import tokenize
from .train import scoring

TARGET = "movie_reviews"
TEST_ROWS = {"smoke": 32, "quick": 2_000, "full": 2_000}     # the first n test rows
VALIDATION_ROWS = {"smoke": 32, "quick": 250, "full": 1_000}  # for early stopping only
EVAL_ROWS = {p: (VALIDATION_ROWS[p], TEST_ROWS[p]) for p in TEST_ROWS}   # (validation, test)
_NAME = re.compile(r"^(?P<base>rt-test-(?:smoke-)?\d+)(?::(?P<n>\d+))?$")


# --------------------------------------------------------------------------- the rows
def test_set(profile: str = "quick") -> str:
    """The name of the fixed test rows of `profile`: 'rt-test-2000' in quick and full,
    'rt-test-smoke-32' in smoke."""
    from .profile import check

    n = TEST_ROWS[check(profile)]
    return f"rt-test-smoke-{n}" if profile == "smoke" else f"rt-test-{n}"


def slice_name(profile: str, n: int) -> str:
    """The name of the first `n` rows of the fixed test set, for a notebook that must
    score fewer rows for time (e.g. 'rt-test-2000:500'). `n` at or above the test set's
    size names the whole test set."""
    if n < 1:
        raise ValueError(f"a test slice needs at least one row, got n={n}")
    full = TEST_ROWS[_check(profile)]
    return test_set(profile) if n >= full else f"{test_set(profile)}:{n}"


def size(name: str) -> int:
    """How many rows a test-set name stands for: 'rt-test-2000' -> 2000,
    'rt-test-2000:500' -> 500."""
    m = _NAME.match(name or "")
    if m is None:
        raise ValueError(f"{name!r} is not a test-set name of the protocol; use "
                         "protocol.test_set(profile) or protocol.slice_name(profile, n)")
    return int(m["n"]) if m["n"] else int(re.search(r"\d+$", m["base"]).group())


def _check(profile: str) -> str:
    from .profile import check
    return check(profile)


def _raw(profile: str):
    from .data import load
    return load(TARGET, profile=_check(profile), source="bundled")


def test_split(profile: str = "quick", n: int | None = None):
    """The fixed test rows, raw (`text`, `label`), as a `datasets.Dataset`; with `n`, the
    first `n` of them (name that slice with `slice_name(profile, n)`). For notebooks that
    do not use a Hugging Face tokenizer (02 word2vec, 07 cloze)."""
    rows = TEST_ROWS[_check(profile)] if n is None else min(n, TEST_ROWS[profile])
    return _raw(profile)["test"].select(range(rows))


def target_task(tokenizer, profile: str = "quick", *, max_length: int = 64) -> dict:
    """The target task, tokenised: {"train", "validation", "test"}.

    `train` is the whole training split (9,751 sentences), the pool that label budgets
    are drawn from with `data.sample`; `validation` its first 250 rows in quick (1,000 in
    full, 32 in smoke), used to pick the best weights only; `test` the fixed test rows
    (`test_set(profile)`). Always the bundled files, so every profile scores the same
    rows."""
    splits = tokenize(_raw(profile), tokenizer, max_length=max_length)
    return {"train": splits["train"],
            "validation": splits["validation"].select(range(VALIDATION_ROWS[profile])),
            "test": splits["test"].select(range(TEST_ROWS[profile]))}


# --------------------------------------------------------------------------- the baseline
def majority_label(profile: str = "quick") -> int:
    """The majority class of the training split (1 = positive)."""
    labels = _raw(profile)["train"]["label"]
    ones = sum(int(x) for x in labels)
    return int(ones * 2 > len(labels))


def majority(profile: str = "quick", labels: Sequence[int] | None = None) -> float:
    """Accuracy of always answering the training split's majority class, on the fixed
    test rows (or on `labels`, those of a slice)."""
    if labels is None:
        labels = test_split(profile)["label"]
    if len(labels) == 0:
        raise ValueError("majority() got no labels")
    label = majority_label(profile)
    return sum(int(x) == label for x in labels) / len(labels)


def log_baseline(run, *, profile: str | None = None, test_set: str | None = None,
                 labels: Sequence[int] | None = None) -> float:
    """Log `acc_majority` for one test set (with its per-row correctness, so verdicts
    against the baseline are paired too) and return it. Without arguments: the fixed
    test set of the run's profile. For a slice pass its name (and, optionally, its
    labels), e.g. `log_baseline(run, test_set=slice_name(PROFILE, 500))`."""
    profile = profile or run.profile
    name = test_set or globals()["test_set"](profile)
    if labels is None:
        labels = test_split(profile, size(name))["label"]
    _check_size(name, len(labels))
    label = majority_label(profile)
    correct = [int(y) == label for y in labels]
    value = sum(correct) / len(correct)
    run.log("acc_majority", value, test_set=name, label_budget=0, model="-",
            correct_hex=pack(correct))
    return value


# --------------------------------------------------------------------------- scoring
def predict(model, rows, *, batch_size: int = 64, pad_id: int | None = None,
            device=None) -> list[int]:
    """The predicted class of every tokenised row (`input_ids`, ...), in the rows' order.

    Scored as `train.evaluate` scores (`train.scoring`: no autograd, the precision `fit`
    trains with on that device) on length-bucketed batches: the rows are sorted by
    length, so each batch pads to its own longest row, then the predictions are put
    back in order."""

    if len(rows) == 0:
        raise ValueError("predict() got no rows")
    if "input_ids" not in rows.column_names:
        raise ValueError("predict() needs tokenised rows (input_ids): use "
                         "protocol.target_task(tokenizer, profile) or finetune.tokenize")
    if pad_id is None:
        pad_id = getattr(model.config, "pad_token_id", None) or 0
    preds = [0] * len(rows)
    with scoring(model, device) as dev:
        for idx, batch in by_length(rows, batch_size, pad_id, dev):
            for i, p in zip(idx, model(**batch).logits.argmax(-1).tolist()):
                preds[i] = int(p)
    return preds


def score(model, rows, **kwargs) -> list[bool]:
    """Whether the model classifies each tokenised row right: one bool per row, in order
    (what `log_accuracy` takes)."""
    preds = predict(model, rows, **kwargs)
    return [p == int(y) for p, y in zip(preds, rows["label"])]


# --------------------------------------------------------------------------- the ledger
def pack(correct: Sequence[bool]) -> str:
    """Per-row correctness as a hex string: bit i (little-endian) is row i."""
    value = 0
    for i, c in enumerate(correct):
        if c:
            value |= 1 << i
    return format(value, "x").zfill(math.ceil(len(correct) / 4) or 1)


def unpack(hexstr: str, n: int) -> list[bool]:
    """The inverse of `pack`: `n` bools from a hex string."""
    value = int(hexstr, 16)
    if value >> n:
        raise ValueError(f"the packed correctness has bits beyond row {n}")
    return [bool(value >> i & 1) for i in range(n)]


def _check_size(name: str, n: int) -> None:
    if size(name) != n:
        raise ValueError(f"test set {name!r} has {size(name)} rows but {n} were given: score "
                         "the same rows you name, or name a slice with "
                         "protocol.slice_name(profile, n)")


def log_accuracy(run, metric: str, correct: Sequence[bool], *, budget: int | None, model: str,
                 seed: int | None = None, trainable: int | None = None,
                 wall_s: float | None = None, test_set: str | None = None, **extra) -> float:
    """Log one accuracy on the protocol's test rows and return it.

    `correct` holds one bool per test row (`score(model, task["test"])`); the value logged
    is their mean. `budget` is the number of labelled training examples (0 or None for
    zero-shot), `model` the checkpoint name, `trainable` the parameters that learned,
    `wall_s` the training time. `test_set` defaults to the fixed test set of the run's
    profile; pass `slice_name(profile, n)` for a slice."""
    name = test_set or globals()["test_set"](run.profile)
    correct = [bool(c) for c in correct]
    if not correct:
        raise ValueError(f"{metric}: no per-row results given")
    _check_size(name, len(correct))
    value = sum(correct) / len(correct)
    run.log(metric, value, seed=seed, test_set=name, label_budget=budget, model=model,
            trainable=trainable, train_wall_s=None if wall_s is None else round(wall_s, 1),
            correct_hex=pack(correct), **extra)
    return value
