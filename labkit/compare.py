"""Every strategy side by side on one test set, with verdicts computed (notebook 09, README).

    >>> from labkit import compare, ledger
    >>> srows = compare.strategy_rows(ledger.read(ledger.reference_path()), profile="quick")
    >>> judged = compare.cells(compare.judge(srows))   # verdicts; one row per table cell
    >>> print(compare.table(judged))
    >>> for sentence in compare.which_when(judged): print(sentence)

The notebooks log accuracies under names like `acc_full_ft@128` (strategy `full_ft`,
label budget 128) or, where the budget is fixed, `acc_lora` with the budget in the row's
`label_budget` field, through `labkit.protocol.log_accuracy`: each row names the rows it
was scored on (`test_set`) and packs its per-row correctness. `strategy_rows` groups them
into one row per (strategy, notebook, model, budget, test set) with mean and spread over
seeds, in balanced accuracy (the headline: chance 0.5) and in plain accuracy. Rows
without `test_set` predate the protocol and are left out (`legacy` counts them); rows of
different test sets are never compared.

**A verdict** (`versus`, alias `verdict`) compares strategy A with B (another strategy,
or the majority class) on the same test set by the difference of their means over seeds,
with a 95% interval for that difference that adds up two sources of noise:

* the seeds: with the same seeds on both sides (same label budgets drawn), the spread of
  the per-seed differences (paired over seeds); otherwise each side's own spread. A
  trained side with **one seed has an unknown spread**, not zero: no interval, and the
  verdict is "not resolved" until it has two seeds. The majority class and zero-shot
  prompts train nothing and have no seed noise;
* the test rows: the per-row differences (each row's correctness averaged over a side's
  seeds), paired over the rows both sides scored, so rows both get right or wrong
  cancel. In balanced accuracy each class's rows weigh half.

The two variances add; the interval uses Student's t with the Welch-Satterthwaite degrees
of freedom (few seeds give a wide interval, as they should). A is **better** when the
whole interval lies above 0, **worse** when below, and otherwise the difference is **not
resolved at this size**, never "no effect". A page makes many comparisons: `family`
counts them and `holm` says which resolved verdicts survive Holm's correction for that
many (at 95% each, about one in twenty true-zero differences resolves by chance).
`which_when` writes the showdown's advice from resolved verdicts only, each naming its
regime (model, label budget, test set); the unresolved ones are listed as such with
their intervals. In a notebook, `v.assert_resolved("better")` asserts only a resolved
claim, and `v.is_resolved` checks that an unresolved one is reported as such.

**The same interval in every notebook.** A strategy notebook judges its own runs (dicts
with `seed` and per-row `correct`, as `finetune.learning_curve` returns them) with
`versus_runs` (or `from_runs` + `versus`), and a logged pair with `between`: the same
`versus` as the showdown, so a comparison prints one interval wherever it appears.

**One number per cell** (`cells`): a strategy logged by several notebooks at the same
model and budget (full fine-tuning is every notebook's rival) is shown once, from the
notebook that teaches it; the others stay the paired rivals of their own notebooks.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

from .metrics import mean_std

# metric stem -> (what the strategy is, taxonomy cell, family); order = how the table reads
STRATEGIES: dict[str, tuple[str, str, str]] = {
    "majority": ("majority class (no learning)", "baseline", "baseline"),
    "tfidf_lr": ("TF-IDF + logistic regression", "classical", "classical"),
    "clf_acc_random_init": ("word-level classifier, random embeddings", "scratch", "from scratch"),
    "clf_acc_w2v_init": ("word-level classifier, word2vec embeddings", "scratch + vectors",
                         "from scratch"),
    "scratch": ("transformer from random init", "scratch", "from scratch"),
    "probe": ("linear probe (frozen encoder)", "1B", "new head"),
    "full_ft": ("full fine-tuning, new head", "1B", "new head"),
    "head_ft": ("full fine-tuning, new head", "1B", "new head"),
    "adaptive": ("domain-adaptive MLM, then fine-tune", "1B+2B", "aimed pre-training"),
    "task_adaptive": ("task-adaptive MLM, then fine-tune", "1B+2B", "aimed pre-training"),
    "behavioural": ("related task first (tweets), then fine-tune", "1B+3A", "aimed pre-training"),
    "behavioural_unrelated": ("unrelated task first (news), then fine-tune", "1B+3A",
                              "aimed pre-training"),
    "zero_shot": ("prompt, zero-shot", "1A", "prompts"),
    "prompt_ft": ("prompt (cloze) fine-tuning, PET", "1A", "prompts"),
    "lora": ("LoRA", "PEFT", "parameter-efficient"),
    "adapter": ("bottleneck adapters", "PEFT", "parameter-efficient"),
    "prompt_tuning": ("soft prompt tuning", "PEFT", "parameter-efficient"),
    "clean": ("trained on clean labels", "data", "data care"),
    "noisy": ("trained on noisy labels", "data", "data care"),
    "cleaned": ("noisy labels, cleaned, then trained", "data", "data care"),
    "augmented": ("clean labels plus augmented copies", "data", "data care"),
    "self_training": ("self-training on unlabelled reviews", "data", "data care"),
    "llm_labels": ("labels made by a language model", "data", "data care"),
}
FAMILIES = list(dict.fromkeys(v[2] for v in STRATEGIES.values()))
SAME = {"head_ft": "full_ft"}              # another notebook's name for the same strategy
DETERMINISTIC = {"majority", "zero_shot"}  # nothing trained: no spread over seeds

# strategy -> the strategy it is judged against (same notebook, model, budget, test set)
RIVALS = {"scratch": "full_ft", "probe": "full_ft", "adaptive": "full_ft",
          "task_adaptive": "full_ft", "behavioural": "full_ft",
          "behavioural_unrelated": "full_ft", "prompt_ft": "head_ft", "lora": "full_ft",
          "adapter": "full_ft", "prompt_tuning": "full_ft",
          "clf_acc_w2v_init": "clf_acc_random_init",
          "noisy": "clean", "cleaned": "noisy", "augmented": "clean",
          "self_training": "clean", "llm_labels": "clean"}
# strategies judged against the classical baseline too (same notebook, budget, test set)
VS_CLASSICAL = {"full_ft", "probe"}

_NAME = re.compile(r"^(?:acc_)?(?P<stem>[a-z_0-9]+?)(?:@(?P<n>\d+))?$")


def parse(metric: str) -> tuple[str, int | None, str] | None:
    """'acc_full_ft@128' -> ('full_ft', 128, ''); a model tag after a known strategy is
    split off: 'acc_full_ft_tinymlm@32' -> ('full_ft', 32, 'tinymlm'). None for metrics
    that are not strategy accuracies."""
    if not (metric.startswith("acc_") or metric.startswith("clf_acc_")):
        return None
    m = _NAME.match(metric)
    if m is None:
        return None
    stem = m["stem"] if metric.startswith("acc_") else metric.split("@")[0]
    n = int(m["n"]) if m["n"] else None
    if stem in STRATEGIES:
        return stem, n, ""
    for known in sorted(STRATEGIES, key=len, reverse=True):
        if stem.startswith(known + "_"):
            return known, n, stem[len(known) + 1:]
    return None


def _variant(tag: str, model: str) -> str:
    """A tag that only repeats the model's name ('tinymlm' for tiny-mlm) is no variant."""
    plain = re.sub(r"[^a-z0-9]", "", (model or "").lower())
    return "" if tag and tag == plain else tag


# --------------------------------------------------------------------------- grouping
def legacy(rows: list[dict]) -> int:
    """How many strategy-accuracy rows lack `test_set` (logged before the protocol)."""
    return sum(1 for r in rows if parse(r["metric"]) and not r.get("test_set"))


def strategy_rows(rows: list[dict], profile: str | None = None,
                  test_set: str | None = None) -> list[dict]:
    """One row per (strategy, tag, notebook, model, label budget, test set): mean and
    sample standard deviation over seeds of accuracy (`mean`, `std`) and of balanced
    accuracy (`balanced`, `balanced_std`; None without per-row results), per seed
    (`values`, `balanced_values`), the seeds, and each seed's per-row correctness
    (`correct`: {seed: [bool, ...]}, None when a seed's row carries none). Only rows with
    a `test_set` (and, if given, that one) count."""
    from .ledger import latest
    from .protocol import size, unpack

    groups = defaultdict(list)
    for r in latest(rows, profile):
        parsed = parse(r["metric"])
        if parsed is None or not r.get("test_set"):
            continue
        if test_set is not None and r["test_set"] != test_set:
            continue
        stem, n, tag = parsed
        n = n if n is not None else r.get("label_budget")
        if stem == "majority":     # one baseline per test set, whichever notebook logged it
            groups[(stem, "", "", "", None, r["test_set"])].append(r)
            continue
        n = None if stem == "zero_shot" else n
        groups[(stem, tag, r["notebook"], r.get("model") or "", n, r["test_set"])].append(r)
    order = list(STRATEGIES)
    out = []
    for key_ in sorted(groups, key=lambda k: (order.index(k[0]), k[1], k[2], k[3], k[4] or 0,
                                              k[5])):
        stem, tag, nb, model, n, ts = key_
        rs = sorted(groups[key_], key=lambda r: r["seed"])
        if stem == "majority":     # the same value whoever logged it: keep one row
            nb = ", ".join(sorted({r["notebook"][:2] for r in rs}))
            rs = rs[-1:]
        mean, std = mean_std([r["value"] for r in rs])
        rows_n = size(ts)
        correct = ({r["seed"]: unpack(r["correct_hex"], rows_n) for r in rs}
                   if all(r.get("correct_hex") for r in rs) else None)
        bal = {r["seed"]: _balanced(r, correct, ts) for r in rs}
        bal = None if any(v is None for v in bal.values()) else bal
        b_mean, b_std = mean_std(list(bal.values())) if bal else (None, None)
        walls = [r["train_wall_s"] for r in rs if r.get("train_wall_s") is not None]
        what, taxonomy, family = STRATEGIES[stem]
        shown_tag = _variant(tag, model)
        out.append({"strategy": stem, "tag": tag,
                    "what": what + (f" [{shown_tag}]" if shown_tag else ""),
                    "taxonomy": taxonomy, "family": family, "notebook": nb, "model": model,
                    "budget": n, "test_set": ts, "rows": rows_n, "mean": mean, "std": std,
                    "balanced": b_mean, "balanced_std": b_std,
                    "values": {r["seed"]: r["value"] for r in rs}, "balanced_values": bal,
                    "seeds": [r["seed"] for r in rs], "correct": correct,
                    "trainable": rs[-1].get("trainable", rs[-1].get("trainable_params")),
                    "train_wall_s": sum(walls) / len(walls) if walls else None,
                    "device": rs[-1]["device"]})
    return out


def _balanced(r: dict, correct: dict | None, test_set: str) -> float | None:
    if r.get("balanced_acc") is not None:
        return float(r["balanced_acc"])
    if correct is None:
        return None
    from .protocol import balanced_accuracy, labels
    return balanced_accuracy(correct[r["seed"]], labels(test_set))


def size_words(test_set: str) -> str:
    """'rt-test-2000' -> 'the 2,000 fixed test sentences'; a slice says it is the first n."""
    from .protocol import size

    n = size(test_set)
    return (f"the first {n:,} of the fixed test sentences" if ":" in test_set else
            f"the {n:,} fixed test sentences")


def main_test_set(srows: list[dict], profile: str = "quick") -> str | None:
    """The test set to compare on: the protocol's own for `profile` when rows use it,
    else the one most rows use (None when there are none)."""
    from .protocol import test_set

    sets = [r["test_set"] for r in srows]
    if not sets:
        return None
    return test_set(profile) if test_set(profile) in sets else max(set(sets), key=sets.count)


# --------------------------------------------------------------------------- verdicts
NOT_RESOLVED = "not resolved at this size"


@dataclass
class Verdict:
    """A compared with B on one test set (differences in points of `metric`)."""

    verdict: str          # "better", "worse" or "not resolved"
    diff: float           # mean(A) - mean(B) over seeds, points
    low: float | None     # the interval of the difference, points (None: unknown spread)
    high: float | None
    against: str          # what B is
    metric: str = "balanced_acc"
    level: float = 0.95
    paired: bool = True   # per-row results on both sides: paired over the test rows
    seeds: str = ""       # how the seeds entered: "paired over 3 seeds", ...
    reason: str = ""      # why there is no interval, when there is none
    p: float | None = None        # two-sided p-value of the same test (for Holm)
    holm: bool | None = field(default=None, compare=False)   # survives Holm (set by `holm`)

    @property
    def is_resolved(self) -> bool:
        """Whether the interval excludes 0 (a claim may be made)."""
        return self.verdict in ("better", "worse")

    @property
    def spread(self) -> float | None:       # kept for older callers: the half-width
        return None if self.low is None else (self.high - self.low) / 2

    def assert_resolved(self, direction: str | None = None) -> "Verdict":
        """Raise AssertionError unless the verdict is resolved (and, if given,
        `direction` is "better" or "worse" and matches): the only kind of lesson a
        notebook may assert. Returns the verdict."""
        if not self.is_resolved:
            raise AssertionError(f"not resolved: {self.numbers()}; a lesson may assert only "
                                 "a resolved difference (more seeds or test rows, or report "
                                 "it as not resolved)")
        if direction is not None and self.verdict != direction:
            raise AssertionError(f"resolved the other way ({self.verdict} than "
                                 f"{self.against}): {self.numbers()}")
        return self

    def words(self, baseline: bool = False) -> str:
        """'better than X' / 'above the majority line' / 'not resolved at this size' ..."""
        if baseline:
            return {"better": "above the majority line", "worse": "below the majority line",
                    "not resolved": "not resolved against the majority line"}[self.verdict]
        return {"better": f"better than {self.against}", "worse": f"worse than {self.against}",
                "not resolved": f"{NOT_RESOLVED} against {self.against}"}[self.verdict]

    def sentence(self, a: str = "A", b: str | None = None) -> str:
        """'A is better than B (+3.1 balanced-accuracy points, 95% interval ...)', or
        'A vs B: not resolved at this size (...)': a whole claim, with its interval."""
        b = self.against if b is None else b
        if not self.is_resolved:
            return f"{a} vs {b}: {NOT_RESOLVED} ({self.numbers()})"
        return f"{a} is {self.verdict} than {b} ({self.numbers()})"

    def numbers(self) -> str:
        """'+3.1 balanced-accuracy points, 95% interval +0.4 to +5.8, paired over 3 seeds'."""
        what = "balanced-accuracy" if self.metric == "balanced_acc" else "accuracy"
        if self.low is None:
            return f"{self.diff:+.1f} {what} points, no interval: {self.reason}"
        rows = "" if self.paired else ", test rows unpaired"
        return (f"{self.diff:+.1f} {what} points, {round(100 * self.level)}% interval "
                f"{_bound(self.low)} to {_bound(self.high)}, {self.seeds}{rows}")


def _bound(x: float) -> str:
    """An interval's end: one decimal, two where one would round a nonzero end to 0."""
    return f"{x:+.1f}" if abs(x) >= 0.05 or x == 0 else f"{x:+.2f}"


def _values(srow: dict, metric: str) -> dict | None:
    """Each seed's value of `metric` for a strategy row: stored, else from its per-row
    results, else (accuracy of a single or constant run) its mean."""
    stored = srow.get("balanced_values" if metric == "balanced_acc" else "values")
    if stored:
        return stored
    if srow.get("correct"):
        if metric == "accuracy":
            return {s: sum(c) / len(c) for s, c in srow["correct"].items()}
        from .protocol import balanced_accuracy, labels
        gold = labels(srow["test_set"])
        return {s: balanced_accuracy(c, gold) for s, c in srow["correct"].items()}
    if metric == "accuracy" and (len(srow["seeds"]) == 1 or not srow.get("std")):
        return {s: srow["mean"] for s in srow["seeds"]}
    return None


def _per_row(srow: dict) -> list[float] | None:
    if not srow.get("correct"):
        return None
    seeds = list(srow["correct"].values())
    return [sum(col) / len(seeds) for col in zip(*seeds)]


def _var(xs) -> float:
    n = len(xs)
    m = sum(xs) / n
    return sum((x - m) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0


def versus(a: dict, b: dict, *, metric: str = "balanced_acc", level: float = 0.95,
           **_ignored) -> Verdict:
    """The verdict on strategy row `a` against row `b` (from `strategy_rows`): the
    difference of their means over seeds in `metric` ("balanced_acc", the default, or
    "accuracy"), with a `level` interval for it, paired over seeds (same seeds on both
    sides) and over test rows (see the module's docstring). Both must be scored on the
    same test set. Without per-row results balanced accuracy falls back to accuracy."""
    from scipy import stats

    if a["test_set"] != b["test_set"]:
        raise ValueError(f"cannot compare rows of different test sets ({a['test_set']!r} vs "
                         f"{b['test_set']!r}): score both on the protocol's test set")
    if metric not in ("balanced_acc", "accuracy"):
        raise ValueError(f"metric must be 'balanced_acc' or 'accuracy', got {metric!r}")
    va, vb = _values(a, metric), _values(b, metric)
    if metric == "balanced_acc" and (va is None or vb is None):
        metric, va, vb = "accuracy", _values(a, "accuracy"), _values(b, "accuracy")
    if va is None or vb is None:
        raise ValueError("versus() needs each seed's value (rows from strategy_rows)")
    ma, mb = sum(va.values()) / len(va), sum(vb.values()) / len(vb)
    diff = 100 * (ma - mb)
    fixed_a = a["strategy"] in DETERMINISTIC or a.get("deterministic", False)
    fixed_b = b["strategy"] in DETERMINISTIC or b.get("deterministic", False)
    against = label(b)

    # the seeds: variance of the difference of the two means over seeds, with its df
    unknown = [label(r) for r, v, fixed in ((a, va, fixed_a), (b, vb, fixed_b))
               if not fixed and len(v) < 2]
    if unknown:
        return Verdict("not resolved", diff, None, None, against, metric, level,
                       seeds="one seed",
                       reason=f"one seed of {' and of '.join(unknown)}, so its spread over "
                              "seeds is unknown: run at least two seeds")
    if fixed_a and fixed_b:
        var_s, df_s, how = 0.0, math.inf, "nothing trained: no seed noise"
    elif not fixed_a and not fixed_b and set(va) == set(vb):
        d = [va[s] - vb[s] for s in sorted(va)]
        var_s, df_s, how = _var(d) / len(d), len(d) - 1, f"paired over {len(d)} seeds"
    else:
        parts = [(_var(list(v.values())) / len(v), len(v) - 1)
                 for v, fixed in ((va, fixed_a), (vb, fixed_b)) if not fixed]
        var_s = sum(p[0] for p in parts)
        df_s = (var_s ** 2 / sum(p[0] ** 2 / p[1] for p in parts)) if var_s > 0 else math.inf
        how = " and ".join(f"{len(v)} seeds" for v, fixed in ((va, fixed_a), (vb, fixed_b))
                           if not fixed) + (" (different seeds: unpaired)" if not (fixed_a or fixed_b)
                                            else "")

    # the test rows: paired per-row differences (each class half the weight in balanced)
    pa, pb = _per_row(a), _per_row(b)
    paired = pa is not None and pb is not None
    if paired:
        d = [x - y for x, y in zip(pa, pb)]
        if metric == "balanced_acc":
            from .protocol import labels
            gold = labels(a["test_set"])
            var_r = sum(0.25 * _var(g) / len(g) for g in
                        ([x for x, y in zip(d, gold) if y == c] for c in set(gold)) if g)
        else:
            var_r = _var(d) / len(d)
    else:
        n = a["rows"]
        var_r = ma * (1 - ma) / n + mb * (1 - mb) / n
    var = var_s + var_r
    if var <= 0:
        low = high = diff
        p = 0.0 if diff else 1.0
    else:
        se = math.sqrt(var)
        df = var ** 2 / (var_s ** 2 / df_s) if var_s > 0 and math.isfinite(df_s) else math.inf
        q = stats.norm.ppf(0.5 + level / 2) if math.isinf(df) else stats.t.ppf(0.5 + level / 2, df)
        low, high = diff - 100 * q * se, diff + 100 * q * se
        z = abs(diff) / (100 * se)
        p = float(2 * (stats.norm.sf(z) if math.isinf(df) else stats.t.sf(z, df)))
    verdict = "better" if low > 0 else "worse" if high < 0 else "not resolved"
    return Verdict(verdict, diff, low, high, against, metric, level, paired, how, p=p)


verdict = versus


def between(run, metric_a: str, metric_b: str, *, test_set: str | None = None,
            metric: str = "balanced_acc") -> Verdict:
    """The verdict on two of `run`'s own logged results, by metric name (e.g.
    `between(run, "acc_behavioural@128", "acc_full_ft@128")`), on the run's fixed test
    set unless `test_set` names another: what a notebook's lesson cell asserts with
    `.assert_resolved(...)`, or reports as not resolved (`.is_resolved`)."""
    from .protocol import run_rows, test_set as fixed

    name = test_set or fixed(run.profile)
    rows = strategy_rows(run_rows(run) + _baseline_rows(run), test_set=name)

    def find(m):
        parsed = parse(m)
        hits = [r for r in rows if parsed and (r["strategy"], r["tag"]) == parsed[::2]
                and (parsed[1] is None or r["budget"] == parsed[1])]
        if len(hits) != 1:
            raise ValueError(f"{m!r}: {len(hits)} results of this run on {name} match; log "
                             "it with protocol.log_accuracy first (or name its test_set)")
        return hits[0]
    return versus(find(metric_a), find(metric_b), metric=metric)


def from_runs(runs, test_set: str, *, what: str = "", strategy: str = "", model: str = "",
              budget: int | None = None, notebook: str = "") -> dict:
    """A strategy row, as `strategy_rows` makes one from the ledger, from a notebook's own
    runs: dicts with `seed` and `correct` (one bool per row of `test_set`, in order), as
    `finetune.learning_curve` returns them. `versus` then judges it exactly as the
    showdown judges the logged rows: one interval implementation for the whole course."""
    from .protocol import size

    runs = sorted(runs, key=lambda r: r["seed"])
    if not runs:
        raise ValueError(f"from_runs({what or strategy!r}): no runs to compare")
    n = size(test_set)
    bad = [r["seed"] for r in runs if r.get("correct") is None or len(r["correct"]) != n]
    if bad:
        raise ValueError(f"from_runs({what or strategy!r}): seeds {bad} carry no per-row "
                         f"results for the {n:,} rows of {test_set}; score with "
                         "protocol.score on those rows")
    correct = {r["seed"]: [bool(x) for x in r["correct"]] for r in runs}
    values = {s: sum(c) / n for s, c in correct.items()}
    mean, std = mean_std(list(values.values()))
    return {"strategy": strategy, "tag": "", "what": what or strategy, "notebook": notebook,
            "model": model, "budget": budget, "test_set": test_set, "rows": n, "mean": mean,
            "std": std, "values": values, "balanced_values": None, "seeds": list(correct),
            "correct": correct}


def majority_row(test_set: str) -> dict:
    """The constant answer of `test_set`'s own majority class, as a strategy row (nothing
    trained: no seed noise)."""
    from .protocol import labels, majority_label

    gold = labels(test_set)
    top = majority_label(labels=gold)
    return from_runs([{"seed": 0, "correct": [y == top for y in gold]}], test_set,
                     what="the majority class", strategy="majority")


def versus_runs(a_runs, b_runs, test_set: str, *, a: str = "A", b: str = "B",
                metric: str = "balanced_acc") -> Verdict:
    """A notebook's own runs of strategy A against B (`b_runs="majority"`: the constant
    answer) on the rows of `test_set`: `versus(from_runs(a_runs), from_runs(b_runs))`,
    paired over seeds and test rows. `Verdict.sentence(a, b)` says it in words."""
    ra = from_runs(a_runs, test_set, what=a)
    rb = (majority_row(test_set) if isinstance(b_runs, str) and b_runs == "majority"
          else from_runs(b_runs, test_set, what=b))
    return versus(ra, rb, metric=metric)


def _baseline_rows(run) -> list[dict]:
    from .ledger import ledger_path, read
    return [r for r in read(ledger_path()) if r.get("run") == run.id
            and r["metric"] == "acc_majority"]


def regime(srow: dict) -> str:
    """What a comparison holds for: 'tiny-mlm, 128 labels, rt-test-2000' (a variant's tag
    after the model: 'minilm [mean], ...')."""
    budget = "no labels" if srow.get("budget") is None else f"{srow['budget']:,} labels"
    tag = _variant(srow.get("tag") or "", srow.get("model") or "")
    return f"{srow.get('model') or '-'}{f' [{tag}]' if tag else ''}, {budget}, {srow['test_set']}"


def label(srow: dict) -> str:
    """A short name of a strategy row, with its regime: 'full fine-tuning, new head (04,
    minilm, 128 labels, rt-test-2000)'."""
    if srow["strategy"] == "majority":
        return "the majority class"
    if not srow.get("notebook"):          # a notebook's own runs (`from_runs`): its name
        return srow["what"]
    return f"{srow['what']} ({srow['notebook'][:2]}, {regime(srow)})"


def judge(srows: list[dict], *, metric: str = "balanced_acc", level: float = 0.95,
          **_ignored) -> list[dict]:
    """Each strategy row with its verdicts: `vs_baseline` (against the majority class of
    its test set), `vs_rival` (against its rival in `RIVALS`: same notebook, model,
    budget and test set, the same variant tag where there is one) and `vs_classical`
    (full fine-tuning and probes against TF-IDF + logistic regression of the same
    notebook, budget and test set), each a `Verdict` or None. Returns new dicts; the
    baseline rows come back with all three None."""
    base = {r["test_set"]: r for r in srows if r["strategy"] == "majority"}
    index = {}
    for r in srows:
        index.setdefault((r["strategy"], _variant(r["tag"], r["model"]), r["notebook"],
                          r["model"], r["budget"], r["test_set"]), r)
    classical = {(r["notebook"], r["budget"], r["test_set"]): r for r in srows
                 if r["strategy"] == "tfidf_lr"}
    out = []
    for r in srows:
        r = dict(r, vs_baseline=None, vs_rival=None, vs_classical=None)
        if r["strategy"] != "majority":
            b = base.get(r["test_set"])
            r["vs_baseline"] = versus(r, b, metric=metric, level=level) if b else None
            rival = RIVALS.get(r["strategy"])
            other = None
            for tag in dict.fromkeys((_variant(r["tag"], r["model"]), "")):
                other = other or (index.get((rival, tag, r["notebook"], r["model"], r["budget"],
                                             r["test_set"])) if rival else None)
            r["vs_rival"] = versus(r, other, metric=metric, level=level) if other else None
            c = classical.get((r["notebook"], r["budget"], r["test_set"]))
            if r["strategy"] in VS_CLASSICAL and c is not None:
                r["vs_classical"] = versus(r, c, metric=metric, level=level)
        out.append(r)
    return out


def cells(judged: list[dict]) -> list[dict]:
    """One row per table cell (strategy, variant, model, label budget, test set): where
    several notebooks logged the same cell (full fine-tuning is every notebook's rival;
    07 calls it `head_ft`), the notebook that teaches the strategy (the first in the
    course) is shown, and the others are named in the row's `also`. Their verdicts
    against their own notebook's rows stay on those rows (`vs_rival` of e.g. adaptive is
    against 05's own full fine-tuning)."""
    groups = defaultdict(list)
    for r in judged:
        groups[(SAME.get(r["strategy"], r["strategy"]), _variant(r["tag"], r["model"]),
                r["model"], r["budget"], r["test_set"])].append(r)
    out = []
    for r in judged:
        rs = groups[(SAME.get(r["strategy"], r["strategy"]), _variant(r["tag"], r["model"]),
                     r["model"], r["budget"], r["test_set"])]
        first = min(rs, key=lambda x: (x["notebook"], -len(x["seeds"])))
        if r is first:
            out.append(dict(r, also=sorted({x["notebook"][:2] for x in rs} - {r["notebook"][:2]})))
    return out


def family(rows: list[dict]) -> list[Verdict]:
    """Every comparison a page of `rows` shows (against the baseline, the rival and the
    classical tool): the family a multiple-comparison correction is over."""
    return [v for r in rows for v in (r.get("vs_baseline"), r.get("vs_rival"),
                                      r.get("vs_classical")) if v is not None]


def holm(verdicts: list[Verdict], alpha: float = 0.05) -> int:
    """Holm's step-down correction over `verdicts`: marks each one's `holm` (True where
    it stays resolved with the family-wise error held at `alpha`) and returns how many
    do. A verdict without an interval never does."""
    tested = sorted((v for v in verdicts if v.p is not None), key=lambda v: v.p)
    m, alive = len(tested), True
    for v in verdicts:
        v.holm = False
    for i, v in enumerate(tested):
        alive = alive and v.is_resolved and v.p <= alpha / (m - i)
        v.holm = alive
    return sum(v.holm for v in verdicts)


def multiplicity(rows: list[dict]) -> str:
    """One sentence: how many comparisons the page makes, how many resolve at 95% each,
    how many of those would arise by chance, and how many survive Holm's correction."""
    vs = family(rows)
    resolved = sum(v.is_resolved for v in vs)
    kept = holm(vs)
    return (f"This page makes {len(vs)} comparisons, each with a 95% interval, so about "
            f"{0.05 * len(vs):.1f} of them could resolve by chance if no difference were "
            f"real; {resolved} resolve, and {kept} of those survive Holm's correction for "
            f"{len(vs)} comparisons (family-wise error 5%).")


# --------------------------------------------------------------------------- the table
def _pm(mean, std, seeds) -> str:
    if mean is None:
        return "-"
    return f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if len(seeds) > 1 else "")


def _short(v: Verdict) -> str:
    """'+2.1 [+0.3, +3.9]' or '+2.1 [one seed]'."""
    if v.low is None:
        return f"{v.diff:+.1f} [spread unknown: one seed]"
    return f"{v.diff:+.1f} [{_bound(v.low)}, {_bound(v.high)}]"


def _verdict_cell(r: dict) -> str:
    parts = []
    vb = r.get("vs_baseline")
    if vb:
        parts.append(vb.words(baseline=True))
    for key_ in ("vs_rival", "vs_classical"):
        v = r.get(key_)
        if v:
            name = _short_against(v.against)
            if v.is_resolved:
                parts.append(f"{v.verdict} than {name} {_short(v)}")
            else:
                parts.append(f"vs {name}: not resolved {_short(v)}")
    return "; ".join(parts) or "-"


def table(srows: list[dict], budget: int | None = None, markdown: bool = False,
          yours: dict | None = None) -> str:
    """A text (or Markdown) table of (judged) strategy rows, optionally one label budget:
    balanced accuracy first (chance 50%), plain accuracy beside it, the verdicts with the
    difference in balanced-accuracy points and its 95% interval. With `yours` ({key(row):
    your row}), a column of your own balanced accuracies beside them."""
    picked = [r for r in srows if budget is None or r["budget"] in (budget, None)]
    cells_ = []
    for r in picked:
        nb = r["notebook"] if r["strategy"] == "majority" else r["notebook"][:2]
        if r.get("also"):
            nb += f" (also {', '.join(r['also'])})"
        row = [r["what"], r["taxonomy"], nb, r["model"] or "-",
               "-" if r["budget"] is None else f"{r['budget']:,}",
               _pm(r.get("balanced"), r.get("balanced_std"), r["seeds"]),
               _pm(r["mean"], r["std"], r["seeds"]),
               ",".join(map(str, r["seeds"])), _verdict_cell(r)]
        if yours is not None:
            mine = yours.get(key(r))
            row.append("-" if mine is None else
                       _pm(mine.get("balanced", mine["mean"]), mine.get("balanced_std", mine["std"]),
                           mine["seeds"]))
        cells_.append(row)
    head = ["strategy", "taxonomy", "notebook", "model", "labels", "balanced acc (%)",
            "accuracy (%)", "seeds", "verdict (balanced acc, points [95% interval])"] + (
        ["yours, balanced (%)"] if yours is not None else [])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells_])
    keep = [0, 2, 3, 4, 5, 6, 7, 8] + ([9] if yours is not None else [])
    body = [[c[i] for i in keep] for c in cells_]
    names = [head[i] for i in keep]
    widths = [max(len(str(x)) for x in col) for col in zip(names, *body)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    return "\n".join([fmt.format(*names), "-" * (sum(widths) + 2 * len(widths) - 2)]
                     + [fmt.format(*row) for row in body])


def _short_against(against: str) -> str:
    return against.split(" (")[0].split(",")[0]


def key(srow: dict) -> tuple:
    """What makes two strategy rows the same experiment (for your-vs-reference columns)."""
    return (srow["strategy"], srow["tag"], srow["notebook"], srow["model"], srow["budget"],
            srow["test_set"])


# --------------------------------------------------------------------------- the figure
def plot(srows: list[dict], ax=None, title: str = "balanced accuracy vs labelled examples"):
    """Balanced accuracy (chance 50%) against label budget (log scale) on one test set:
    one colour per strategy family (the classical TF-IDF baseline among them), the mean
    over seeds with its spread, a line per (strategy, notebook, model). Strategies that
    use no labels (zero-shot) sit at "0" on the left; the dotted line is 50%, where chance
    and the majority class (any constant answer) score. Rows of another test set than
    the first row's are refused."""
    import matplotlib.pyplot as plt

    sets = {r["test_set"] for r in srows}
    if len(sets) > 1:
        raise ValueError(f"plot() draws one test set, got {sorted(sets)}: filter the rows")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    budgets = [r["budget"] for r in srows if r["budget"]]
    zero_x = min(budgets) / 2.5 if budgets else 1.0      # where "no labels" is drawn
    cmap = plt.get_cmap("tab10")
    color = {f: cmap(i) for i, f in enumerate(f for f in FAMILIES if f != "baseline")}
    curves = defaultdict(list)
    for r in srows:
        curves[(SAME.get(r["strategy"], r["strategy"]), r["tag"], r["notebook"],
                r["model"])].append(r)
    shown = set()
    for (stem, tag, nb, model), rs in curves.items():
        fam = STRATEGIES[stem][2]
        if stem == "majority":
            ax.axhline(50, ls=":", color="black", lw=1.2,
                       label=f"chance = majority class ({rs[0]['test_set']})")
            continue
        rs = sorted((r for r in rs if r.get("balanced") is not None),
                    key=lambda r: r["budget"] or 0)
        if not rs:
            continue
        xs = [r["budget"] or zero_x for r in rs]
        ys = [100 * r["balanced"] for r in rs]
        es = [100 * r["balanced_std"] if len(r["seeds"]) > 1 else 0 for r in rs]
        ax.errorbar(xs, ys, yerr=es, color=color[fam], marker="s" if fam == "classical" else "o",
                    ms=4, capsize=2, lw=2 if fam == "classical" else 1,
                    ls="--" if fam == "classical" else "-",
                    alpha=0.85, label=None if fam in shown else fam)
        shown.add(fam)
    ax.set_xscale("log")
    if budgets:
        ax.axvline(zero_x * 1.6, color="black", lw=0.5)
        ticks = [t for t in (8, 32, 128, 512, 2000, 10_000)
                 if min(budgets) / 1.5 <= t <= max(budgets) * 1.5]
        ax.set_xticks([zero_x] + ticks, ["0"] + [f"{t:,}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("labelled training examples (log scale; 0 = zero-shot)")
    ax.set_ylabel("test balanced accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title="strategy family", title_fontsize=8)
    ax.figure.tight_layout()
    return ax


# --------------------------------------------------------------------------- rules of thumb
# strategy -> (the question it answers, what a resolved verdict against its rival means);
# None: parameter-efficient methods, whose sentence also says what share of weights learned
ADVICE = {
    "scratch": ("Pre-trained or from scratch",
                {"worse": "start from a pre-trained model: the same architecture trained "
                          "from scratch did worse",
                 "better": "training from scratch did better than the pre-trained start: "
                           "check the pre-trained model fits the task"}),
    "probe": ("Freeze the encoder or train it",
              {"worse": "train the encoder too: a frozen-encoder probe did worse",
               "better": "a frozen-encoder probe did better than full fine-tuning: the "
                         "cheap option won"}),
    "adaptive": ("Unlabelled text from your domain",
                 {"better": "continued masked-LM pre-training on the domain paid off",
                  "worse": "continued masked-LM pre-training on the domain hurt"}),
    "task_adaptive": ("Unlabelled text of the task itself",
                      {"better": "task-adaptive pre-training paid off",
                       "worse": "task-adaptive pre-training hurt"}),
    "behavioural": ("A related labelled dataset",
                    {"better": "fine-tune on it first: it helped",
                     "worse": "fine-tuning on it first hurt"}),
    "behavioural_unrelated": ("An unrelated labelled dataset",
                              {"better": "even an unrelated task first helped",
                               "worse": "an unrelated task first hurt (negative transfer)"}),
    "prompt_ft": ("Few labels: a prompt or a new head",
                  {"better": "reshape the task into the pre-training task: the prompt did "
                             "better than a new head",
                   "worse": "a new head did better than the prompt"}),
    "noisy": ("What label noise costs",
              {"worse": "noisy labels cost accuracy against clean ones",
               "better": "the noisy labels did better than the clean ones"}),
    "cleaned": ("Noisy labels: clean them first",
                {"better": "cleaning the noisy labels paid off",
                 "worse": "cleaning the noisy labels hurt"}),
    "augmented": ("Few labels: augment them",
                  {"better": "augmented copies of the labels helped",
                   "worse": "augmented copies of the labels hurt"}),
    "self_training": ("Unlabelled reviews: self-training",
                      {"better": "self-training on unlabelled reviews helped",
                       "worse": "self-training on unlabelled reviews hurt"}),
    "llm_labels": ("Labels made by a language model",
                   {"better": "the model's labels did better than the human ones",
                    "worse": "the model's labels did worse than the human ones"}),
    "lora": ("Train fewer weights: LoRA", None),
    "adapter": ("Train fewer weights: adapters", None),
    "prompt_tuning": ("Train fewer weights: soft prompt tuning", None),
}
CLASSICAL = ("A pre-trained model or the classical tool",
             {"better": "the pre-trained model beat TF-IDF + logistic regression",
              "worse": "TF-IDF + logistic regression beat the pre-trained model"})


def _holm_note(v: Verdict) -> str:
    return "; not after Holm's correction" if v.is_resolved and v.holm is False else ""


def _claims(question: str, meaning: dict | None, pairs: list[tuple[dict, Verdict]],
            extra=lambda r: "") -> str:
    """One sentence per question: the resolved comparisons as claims, grouped by
    direction, each naming its regime; then the unresolved ones as 'not resolved at this
    size' with their intervals."""
    def where(r, v):
        return f"{regime(r)} ({r['notebook'][:2]}: {v.numbers()}{extra(r)}{_holm_note(v)})"

    parts = []
    for direction in ("better", "worse"):
        hits = [(r, v) for r, v in pairs if v.verdict == direction]
        if hits:
            claim = meaning[direction] if meaning else hits[0][1].words()
            parts.append(f"{claim}, for " + "; ".join(where(r, v) for r, v in hits))
    open_ = [(r, v) for r, v in pairs if not v.is_resolved]
    if open_:
        parts.append(f"{NOT_RESOLVED} for " + "; ".join(where(r, v) for r, v in open_))
    resolved = len(pairs) - len(open_)
    return f"{question}: " + "; ".join(parts) + (
        f" ({resolved} of {len(pairs)} comparison{'s' if len(pairs) > 1 else ''} resolved).")


def which_when(judged: list[dict]) -> list[str]:
    """The showdown's rules of thumb, one sentence per question, generated from the
    verdicts of `judge`: a claim only where the comparison's 95% interval excludes 0,
    naming its regime (model, label budget, test set); every other comparison reads "not
    resolved at this size" with its interval. Mark Holm's correction first (`holm`,
    `multiplicity`) and each claim says whether it survives it."""
    sentences = []
    for stem, (question, meaning) in ADVICE.items():
        pairs = [(r, r["vs_rival"]) for r in judged
                 if r["strategy"] == stem and r["vs_rival"] is not None]
        if not pairs:
            continue

        def share(r):
            full = next((x["trainable"] for x in judged if x["strategy"] == "full_ft"
                         and key(x)[1:] == key(r)[1:]), None)
            return (f", training {100 * r['trainable'] / full:.2f}% of its weights"
                    if meaning is None and r["trainable"] and full else "")
        sentences.append(_claims(question, meaning, pairs, share))
    pairs = [(r, r["vs_classical"]) for r in judged if r.get("vs_classical") is not None]
    if pairs:
        sentences.append(_claims(CLASSICAL[0], None, pairs, lambda r: f", {r['what']}"))
    for r in (r for r in judged if r["strategy"] == "zero_shot" and r["vs_baseline"]):
        v = r["vs_baseline"]
        text = (f"No labels at all ({label(r)}): the prompt is {v.words(baseline=True)} "
                f"({v.numbers()}{_holm_note(v)})")
        labelled = [x for x in judged if x["test_set"] == r["test_set"] and x["budget"]
                    and x.get("balanced") is not None]
        if labelled:
            best = max(labelled, key=lambda x: x["balanced"])
            w = versus(r, best)
            text += (f"; against the best labelled strategy on the same rows, "
                     f"{label(best)}, it is "
                     + (w.words() if w.is_resolved else NOT_RESOLVED) + f" ({w.numbers()})")
        sentences.append(text + ".")
    return sentences
