"""The one evaluation protocol of the course's target task (movie-review sentiment).

    >>> from labkit import protocol
    >>> task = protocol.target_task(tokenizer, "quick")      # train / validation / test
    >>> protocol.log_baseline(run)                            # acc_majority on the test set
    >>> correct = protocol.score(model, task["test"])         # one bool per test row
    >>> protocol.log_accuracy(run, "acc_full_ft@128", correct, budget=128, model="minilm",
    ...                       seed=0, trainable=22_713_986, wall_s=41.0)  # + balanced_acc
    >>> protocol.error_analysis(run)                          # what the best model gets wrong

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
* The majority line is the scored rows' own: always answering the majority class *of
  those rows* (positive, 58.75% on `rt-test-2000`; a slice has its own share).
* Label budgets are balanced 50/50 while the test rows are not, so every accuracy row
  carries `balanced_acc` beside plain accuracy: the mean of the accuracy on each class,
  where chance and any constant answer score 0.5. It is the course's headline number;
  plain accuracy is read against the majority line.
* Each accuracy row in the ledger carries `test_set`, `label_budget`, `model`,
  `trainable`, `train_wall_s` and the per-row correctness packed as a hex bitmask
  (`correct_hex`, bit i = row i), so `labkit.compare` can run a paired test between any
  two strategies scored on the same rows.
* How a run reads its batches and which of its weights are scored is one rule for every
  notebook (`fit_options`): batches grouped by length, and the best of four validation
  checkpoints on the protocol's validation rows.
* `results(run)` prints a run's results, balanced accuracy first; `error_analysis(run)`
  shows the confusion matrix and a few misclassified sentences of its best model.

How large a difference is meaningful on 2,000 rows: one model's accuracy near 70% has a
standard error of sqrt(0.7 * 0.3 / 2000) = 1.0 point. Two models scored on the same rows
differ only where they disagree, and an interval paired over the rows sees exactly those
disagreements: if they disagree on a fraction d of the rows, the 95% interval of their
difference has a half-width of about 1.96 * sqrt(d / 2000) (1.4 points at d = 10%,
2.0 at 20%, 2.9 at 42%). Measured with the quick recipe at 128 labels: two seeds of
MiniLM (67.6% and 59.7%) disagree on 41.7% of the rows, half-width 2.9 points; two seeds
of tiny-mlm on 42.9%, half-width 2.8. So between two single small-budget runs the rows
resolve about 3 points; 2 points only between models that agree on 80% of the rows or
more, or between means over seeds (averaging each row over seeds shrinks the
disagreement). On 1,000 rows every half-width is 1.4 times larger (4.0 points at
d = 42%), which is why the protocol scores all 2,000. The spread over seeds is the other
source of noise; `labkit.compare` puts both in one interval for a difference of means.

Scoring 2,000 rows is cheap next to training: `score` runs the model without autograd
(`torch.inference_mode`) on length-bucketed batches (rows sorted by length, so a batch
pads to its own longest sentence). Measured on one thread of a shared 2-core CPU, all
2,000 rows at max_length 64: MiniLM (22.7M parameters) 19 s (33 s through
`train.evaluate`, unsorted batches of 128), tiny-mlm (4.4M) 0.8 s (1.5 s).
"""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from typing import Sequence

import torch

from .batching import by_length
from .device import scoring_batch_size
from .text import tokenize
from .train import scoring

TARGET = "movie_reviews"
TEST_ROWS = {"smoke": 32, "quick": 2_000, "full": 2_000}     # the first n test rows
# Validation rows pick the weights (early stopping) and nothing else. In `quick` they are
# 128, of the order of the label budgets they serve (8 to 512): a validation set many times
# the training labels is a luxury that few-label work does not have (Perez et al. 2021,
# "True few-shot learning with language models", arXiv 2105.11447), and its cost is paid
# at every checkpoint of every run (it halves validation's share of the course's time).
# The standard error of an accuracy near 65% on 128 rows is 4.2 points, so the choice
# between close checkpoints is noisier. Measured before the switch, on the exploration
# seeds 100-111 (tiny-mlm, the quick recipe, 128 labels): the checkpoint chosen on 128
# rows was the one chosen on 250 in 6 of 12 runs, and scored 0.7 points lower on the
# test rows on average (paired standard error 0.3; `benchmarks/validation_rows.py`).
# The rule is the same for every strategy, so comparisons stay like for like.
VALIDATION_ROWS = {"smoke": 32, "quick": 128, "full": 1_000}
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
    are drawn from with `data.sample`; `validation` its first 128 rows in quick (1,000 in
    full, 32 in smoke), used to pick the best weights only; `test` the fixed test rows
    (`test_set(profile)`). Always the bundled files, so every profile scores the same
    rows."""
    splits = tokenize(_raw(profile), tokenizer, max_length=max_length)
    return {"train": splits["train"],
            "validation": splits["validation"].select(range(VALIDATION_ROWS[profile])),
            "test": splits["test"].select(range(TEST_ROWS[profile]))}


# --------------------------------------------------------------------------- the baseline
@functools.lru_cache(maxsize=16)
def _labels(name: str) -> tuple[int, ...]:
    profile = "smoke" if name.startswith("rt-test-smoke-") else "quick"
    return tuple(int(y) for y in test_split(profile, size(name))["label"])


def labels(name: str) -> list[int]:
    """The gold labels of the test rows a test-set name stands for, in order
    ('rt-test-2000:500' -> the labels of the first 500 test sentences)."""
    return list(_labels(name))


def majority_label(profile: str = "quick", labels: Sequence[int] | None = None) -> int:
    """The majority class of the test rows scored (1 = positive): of `labels` (a slice's),
    else of the fixed test rows of `profile`. A tie goes to the positive class."""
    if labels is None:
        labels = test_split(profile)["label"]
    if len(labels) == 0:
        raise ValueError("majority_label() got no labels")
    ones = sum(int(x) for x in labels)
    return int(ones * 2 >= len(labels))


def majority(profile: str = "quick", labels: Sequence[int] | None = None) -> float:
    """Accuracy of always answering the majority class of the rows scored, on those rows:
    the fixed test rows of `profile`, or `labels` (a slice's own). Its balanced accuracy
    is 0.5 by construction."""
    if labels is None:
        labels = test_split(profile)["label"]
    if len(labels) == 0:
        raise ValueError("majority() got no labels")
    label = majority_label(profile, labels)
    return sum(int(x) == label for x in labels) / len(labels)


def balanced_accuracy(correct: Sequence[bool], labels: Sequence[int]) -> float:
    """The mean over classes of the share of each class's rows classified right (recall
    per class, averaged). Chance, and any constant answer, scores 0.5 on two classes,
    whatever the classes' shares; plain accuracy rewards a constant answer with the
    majority's share."""
    if len(correct) != len(labels):
        raise ValueError(f"{len(correct)} results for {len(labels)} labels: score the rows "
                         "you pass the labels of")
    if not labels:
        raise ValueError("balanced_accuracy() got no rows")
    hits, seen = defaultdict(int), defaultdict(int)
    for c, y in zip(correct, labels):
        seen[int(y)] += 1
        hits[int(y)] += bool(c)
    return sum(hits[y] / seen[y] for y in seen) / len(seen)


def log_baseline(run, *, profile: str | None = None, test_set: str | None = None,
                 labels: Sequence[int] | None = None) -> float:
    """Log `acc_majority` for one test set (with its per-row correctness, so verdicts
    against the baseline are paired too, and `balanced_acc` 0.5) and return it: always
    answering the majority class *of those rows*. Without arguments: the fixed test set
    of the run's profile. For a slice pass its name (and, optionally, its labels), e.g.
    `log_baseline(run, test_set=slice_name(PROFILE, 500))`."""
    profile = profile or run.profile
    name = test_set or globals()["test_set"](profile)
    if labels is None:
        labels = test_split(profile, size(name))["label"]
    _check_size(name, len(labels))
    label = majority_label(profile, labels)
    correct = [int(y) == label for y in labels]
    value = sum(correct) / len(correct)
    run.log("acc_majority", value, test_set=name, label_budget=0, model="-",
            balanced_acc=balanced_accuracy(correct, [int(y) for y in labels]),
            majority_label=label, correct_hex=pack(correct))
    return value


# --------------------------------------------------------------------------- scoring
def predict(model, rows, *, batch_size: int | None = None, pad_id: int | None = None,
            device=None) -> list[int]:
    """The predicted class of every tokenised row (`input_ids`, ...), in the rows' order.

    Scored as `train.evaluate` scores (`train.scoring`: no autograd, the precision `fit`
    trains with on that device) on length-bucketed batches: the rows are sorted by
    length, so each batch pads to its own longest row, then the predictions are put
    back in order. `batch_size` rows at a time (default: `device.scoring_batch_size`)."""

    if len(rows) == 0:
        raise ValueError("predict() got no rows")
    if "input_ids" not in rows.column_names:
        raise ValueError("predict() needs tokenised rows (input_ids): use "
                         "protocol.target_task(tokenizer, profile) or finetune.tokenize")
    if pad_id is None:
        pad_id = getattr(model.config, "pad_token_id", None) or 0
    preds = [0] * len(rows)
    with scoring(model, device) as dev:
        batch_size = batch_size or scoring_batch_size(dev)
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
                 wall_s: float | None = None, test_set: str | None = None,
                 labels: Sequence[int] | None = None, **extra) -> float:
    """Log one accuracy on the protocol's test rows and return it.

    `correct` holds one bool per test row (`score(model, task["test"])`); the value logged
    is their mean, and `balanced_acc` (chance 0.5, see `balanced_accuracy`) goes beside
    it, from the gold labels of the named rows (`labels(test_set)`, or `labels` when
    given). `budget` is the number of labelled training examples (0 or None for
    zero-shot), `model` the checkpoint name, `trainable` the parameters that learned,
    `wall_s` the training time. `test_set` defaults to the fixed test set of the run's
    profile; pass `slice_name(profile, n)` for a slice."""
    name = test_set or globals()["test_set"](run.profile)
    correct = [bool(c) for c in correct]
    if not correct:
        raise ValueError(f"{metric}: no per-row results given")
    _check_size(name, len(correct))
    gold = [int(y) for y in labels] if labels is not None else globals()["labels"](name)
    _check_size(name, len(gold))
    value = sum(correct) / len(correct)
    run.log(metric, value, seed=seed, test_set=name, label_budget=budget, model=model,
            balanced_acc=balanced_accuracy(correct, gold),
            trainable=trainable, train_wall_s=None if wall_s is None else round(wall_s, 1),
            correct_hex=pack(correct), **extra)
    return value


# --------------------------------------------------------------------------- model selection
CHECKPOINTS = 4
SELECTION = (f"the best of {CHECKPOINTS} evenly spaced checkpoints by accuracy on the "
             "protocol's validation rows (128 in quick, 1,000 in full)")


def fit_options(profile: str = "quick") -> dict:
    """The course's one rule for how a target-task run reads its batches and which of its
    weights get scored, as `fit_classifier` options: batches of rows of similar length
    (`fit`'s `group_by_length`: less padding, same rows per epoch), and validation
    `CHECKPOINTS` times, evenly spread, keeping the best (pass the validation rows of
    `target_task`, `VALIDATION_ROWS[profile]` of them). Every notebook whose numbers the
    showdown (09) compares trains with it, so no strategy is picked by a rule another
    lacks."""
    _check(profile)
    return {"evals": CHECKPOINTS, "group_by_length": True}


# --------------------------------------------------------------------------- reading a run
def _split_for(name: str):
    profile = "smoke" if name.startswith("rt-test-smoke-") else "quick"
    return test_split(profile, size(name))


def run_rows(run) -> list[dict]:
    """The target-task accuracies `run` has logged so far (rows with per-row results,
    the majority baseline left out), read back from the ledger it writes; the latest row
    wins for each (metric, seed, test set)."""
    from .ledger import ledger_path, read

    keep = {}
    for r in read(ledger_path()):
        if (r.get("run") == run.id and r.get("correct_hex") and r.get("test_set")
                and r["metric"] != "acc_majority"):
            keep[(r["metric"], r["seed"], r["test_set"])] = r
    return list(keep.values())


def results(run, *, show: bool = True) -> list[dict]:
    """This run's target-task results, balanced accuracy first: one row per (metric, test
    set) with the mean and standard deviation over seeds of `balanced_acc` (chance 0.5)
    and of plain accuracy (read against the majority line of the same rows), best
    balanced accuracy first. Printed as a table unless `show=False`."""
    from .metrics import mean_std

    groups = defaultdict(list)
    for r in run_rows(run):
        groups[(r["metric"], r["test_set"])].append(r)
    out = []
    for (metric, name), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        gold = labels(name)
        bal = [r.get("balanced_acc", balanced_accuracy(unpack(r["correct_hex"], len(gold)), gold))
               for r in rs]
        b_mean, b_std = mean_std(bal)
        a_mean, a_std = mean_std([r["value"] for r in rs])
        out.append({"metric": metric, "test_set": name, "model": rs[0].get("model"),
                    "budget": rs[0].get("label_budget"), "seeds": [r["seed"] for r in rs],
                    "balanced_acc": b_mean, "balanced_std": b_std, "accuracy": a_mean,
                    "accuracy_std": a_std, "majority": majority(labels=gold),
                    "rows": {r["seed"]: r for r in rs}})
    out.sort(key=lambda r: -r["balanced_acc"])
    if show:
        if not out:
            print("this run has logged no target-task accuracy yet")
        else:
            print(f"{'metric':32s} {'test set':18s} {'balanced acc (%)':>16s} "
                  f"{'accuracy (%)':>13s} {'majority (%)':>12s}  seeds")
        for r in out:
            sd = len(r["seeds"]) > 1
            bal = f"{100 * r['balanced_acc']:.1f}" + (f" ± {100 * r['balanced_std']:.1f}" if sd else "")
            acc = f"{100 * r['accuracy']:.1f}" + (f" ± {100 * r['accuracy_std']:.1f}" if sd else "")
            print(f"{r['metric']:32s} {r['test_set']:18s} {bal:>16s} {acc:>13s} "
                  f"{100 * r['majority']:>12.1f}  {','.join(map(str, r['seeds']))}")
        if out:
            print("balanced accuracy: the mean of the accuracy on positive and on negative "
                  "reviews; chance and any constant answer score 50%.")
    return out


def confusion(correct: Sequence[bool], gold: Sequence[int]) -> list[list[int]]:
    """The 2x2 confusion matrix [[true neg -> neg, neg -> pos], [pos -> neg, pos -> pos]]
    of a two-class run, from its per-row correctness and the gold labels."""
    m = [[0, 0], [0, 0]]
    for c, y in zip(correct, gold):
        m[int(y)][int(y) if c else 1 - int(y)] += 1
    return m


def error_analysis(run, metric: str | None = None, *, seed: int | None = None, k: int = 6,
                   ax=None, show: bool = True) -> dict:
    """What a model gets wrong: for one of `run`'s target-task results (by default the
    one with the best mean balanced accuracy, on the seed whose balanced accuracy is
    nearest that mean: a typical run, not the luckiest), its confusion matrix (plotted)
    and `k` misclassified test sentences, half of each kind of error, in test order.
    Returns {"metric", "seed", "test_set", "matrix", "errors": [(text, gold, predicted)]}."""
    summary = results(run, show=False)
    if metric is not None:
        summary = [r for r in summary if r["metric"] == metric]
    if not summary:
        raise ValueError(f"run {run.id} has logged no target-task accuracy"
                         + (f" named {metric!r}" if metric else "")
                         + ": log one with protocol.log_accuracy first")
    best = summary[0]
    name, rows = best["test_set"], best["rows"]
    gold = labels(name)
    if seed is None:
        seed = min(rows, key=lambda s: abs(rows[s].get("balanced_acc", 0.5) - best["balanced_acc"]))
    elif seed not in rows:
        raise ValueError(f"{best['metric']} has no row for seed {seed}; seeds: {sorted(rows)}")
    correct = unpack(rows[seed]["correct_hex"], len(gold))
    matrix = confusion(correct, gold)
    texts = _split_for(name)["text"]
    wrong = [i for i, c in enumerate(correct) if not c]
    fp = [i for i in wrong if gold[i] == 0][: k - k // 2]
    fn = [i for i in wrong if gold[i] == 1][: k // 2]
    picked = sorted(fp + fn)
    errors = [(texts[i], gold[i], 1 - gold[i]) for i in picked]
    if show:
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(3.6, 3.2))
        ax.imshow(matrix, cmap="Blues")
        for t in range(2):
            for p in range(2):
                ax.text(p, t, f"{matrix[t][p]:,}", ha="center", va="center",
                        color="white" if matrix[t][p] > len(gold) / 3 else "black")
        ax.set_xticks([0, 1], ["negative", "positive"])
        ax.set_yticks([0, 1], ["negative", "positive"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{best['metric']}, seed {seed}", fontsize=9)
        ax.figure.tight_layout()
        plt.show()
        n_pos = sum(gold)
        pred_pos = matrix[0][1] + matrix[1][1]
        print(f"{best['metric']} ({best['model']}, seed {seed}) on {name}: balanced accuracy "
              f"{100 * balanced_accuracy(correct, gold):.1f}%, accuracy "
              f"{100 * sum(correct) / len(correct):.1f}%; it calls {100 * pred_pos / len(gold):.0f}% "
              f"of the reviews positive ({100 * n_pos / len(gold):.0f}% are); "
              f"recall on negatives {100 * matrix[0][0] / max(1, len(gold) - n_pos):.0f}%, "
              f"on positives {100 * matrix[1][1] / max(1, n_pos):.0f}%")
        print(f"\n{len(errors)} of its {len(wrong):,} mistakes (test order):")
        word = {0: "negative", 1: "positive"}
        for text, y, p in errors:
            short = text if len(text) <= 150 else text[:147] + "..."
            print(f"  [{word[y]}, called {word[p]}] {short}")
    return {"metric": best["metric"], "seed": seed, "test_set": name, "matrix": matrix,
            "errors": errors}
