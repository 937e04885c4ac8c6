"""Every strategy side by side on one test set, with verdicts computed (notebook 09, README).

    >>> from labkit import compare, ledger
    >>> srows = compare.strategy_rows(ledger.read(ledger.reference_path()), profile="quick")
    >>> judged = compare.judge(srows)               # verdicts against baseline and rivals
    >>> print(compare.table(judged))
    >>> for sentence in compare.which_when(judged): print(sentence)

The notebooks log accuracies under names like `acc_full_ft@128` (strategy `full_ft`,
label budget 128) or, where the budget is fixed, `acc_lora` with the budget in the row's
`label_budget` field, through `labkit.protocol.log_accuracy`: each row names the rows it
was scored on (`test_set`) and packs its per-row correctness. `strategy_rows` groups them
into one row per (strategy, notebook, model, budget, test set) with mean and spread over
seeds. Rows without `test_set` predate the protocol and are left out (`legacy` counts
them); rows of different test sets are never compared.

A verdict compares strategy A with B (another strategy, or the majority-class baseline)
on the same test set, from two sources of noise:

* the test rows: a paired bootstrap over rows. Each row's correctness is averaged over a
  strategy's seeds; the bootstrap resamples the rows (2,000 times) and takes the 2.5th
  and 97.5th percentiles of mean(A) - mean(B) as a 95% interval. Without per-row results
  (an old row) the interval falls back to the unpaired normal one, which is wider;
* the seeds: the larger of the two standard deviations over seeds (0 for one seed).

A is **better** than B when the whole interval is above 0 *and* the difference exceeds
the seed spread, **worse** when the mirror holds, and otherwise **within the spread**.
Against the baseline the same rule reads "above baseline", "below baseline" and "at
baseline". `which_when` turns the verdicts into the showdown's rules of thumb, so each
sentence follows from a verdict and changes when it does: per question, the most common
verdict over its comparisons (or "mixed" on a tie), with the count of each.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass

from .metrics import mean_std

# metric stem -> (what the strategy is, taxonomy cell, family); order = how the table reads
STRATEGIES: dict[str, tuple[str, str, str]] = {
    "majority": ("majority class (no learning)", "baseline", "baseline"),
    "clf_acc_random_init": ("word-level classifier, random embeddings", "scratch", "from scratch"),
    "clf_acc_w2v_init": ("word-level classifier, word2vec embeddings", "scratch + vectors",
                         "from scratch"),
    "scratch": ("transformer from random init", "scratch", "from scratch"),
    "probe": ("linear probe (frozen encoder)", "1B", "new head"),
    "full_ft": ("full fine-tuning, new head", "1B", "new head"),
    "head_ft": ("full fine-tuning, new head (notebook 07)", "1B", "new head"),
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
}
FAMILIES = list(dict.fromkeys(v[2] for v in STRATEGIES.values()))

# strategy -> the strategy it is judged against (same notebook, model, budget, test set)
RIVALS = {"scratch": "full_ft", "probe": "full_ft", "adaptive": "full_ft",
          "task_adaptive": "full_ft", "behavioural": "full_ft",
          "behavioural_unrelated": "full_ft", "prompt_ft": "head_ft", "lora": "full_ft",
          "adapter": "full_ft", "prompt_tuning": "full_ft",
          "clf_acc_w2v_init": "clf_acc_random_init"}

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


# --------------------------------------------------------------------------- grouping
def legacy(rows: list[dict]) -> int:
    """How many strategy-accuracy rows lack `test_set` (logged before the protocol)."""
    return sum(1 for r in rows if parse(r["metric"]) and not r.get("test_set"))


def strategy_rows(rows: list[dict], profile: str | None = None,
                  test_set: str | None = None) -> list[dict]:
    """One row per (strategy, tag, notebook, model, label budget, test set): mean and
    sample standard deviation over seeds, the seeds, and each seed's per-row correctness
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
    for key in sorted(groups, key=lambda k: (order.index(k[0]), k[1], k[2], k[3], k[4] or 0, k[5])):
        stem, tag, nb, model, n, ts = key
        rs = sorted(groups[key], key=lambda r: r["seed"])
        if stem == "majority":     # the same value whoever logged it: keep one row
            nb = ", ".join(sorted({r["notebook"][:2] for r in rs}))
            rs = rs[-1:]
        mean, std = mean_std([r["value"] for r in rs])
        rows_n = size(ts)
        correct = ({r["seed"]: unpack(r["correct_hex"], rows_n) for r in rs}
                   if all(r.get("correct_hex") for r in rs) else None)
        walls = [r["train_wall_s"] for r in rs if r.get("train_wall_s") is not None]
        what, taxonomy, family = STRATEGIES[stem]
        out.append({"strategy": stem, "tag": tag, "what": what + (f" [{tag}]" if tag else ""),
                    "taxonomy": taxonomy, "family": family, "notebook": nb, "model": model,
                    "budget": n, "test_set": ts, "rows": rows_n, "mean": mean, "std": std,
                    "seeds": [r["seed"] for r in rs], "correct": correct,
                    "trainable": rs[-1].get("trainable", rs[-1].get("trainable_params")),
                    "train_wall_s": sum(walls) / len(walls) if walls else None,
                    "device": rs[-1]["device"]})
    return out


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
@dataclass
class Verdict:
    """A compared with B on one test set (differences in accuracy points)."""

    verdict: str          # "better", "worse", "within the spread"
    diff: float           # mean(A) - mean(B), points
    low: float            # 95% interval of the difference over test rows, points
    high: float
    spread: float         # the larger seed standard deviation, points
    paired: bool          # True: paired bootstrap; False: unpaired normal interval
    against: str          # what B is

    def words(self, baseline: bool = False) -> str:
        """'better than X' / 'above baseline' etc."""
        if baseline:
            return {"better": "above baseline", "worse": "below baseline",
                    "within the spread": "at baseline"}[self.verdict]
        return {"better": f"better than {self.against}", "worse": f"worse than {self.against}",
                "within the spread": f"within the spread of {self.against}"}[self.verdict]

    def numbers(self) -> str:
        seeds = f"seed spread {self.spread:.1f}" if self.spread else "one seed"
        return (f"{self.diff:+.1f} points, 95% interval {self.low:+.1f} to {self.high:+.1f}"
                f"{'' if self.paired else ' (unpaired)'}, {seeds}")


def _per_row(srow: dict) -> list[float] | None:
    if not srow.get("correct"):
        return None
    seeds = list(srow["correct"].values())
    return [sum(col) / len(seeds) for col in zip(*seeds)]


def versus(a: dict, b: dict, *, n_boot: int = 2000, seed: int = 0) -> Verdict:
    """The verdict on strategy row `a` against row `b` (from `strategy_rows`; a baseline
    row counts as one seed). Both must be scored on the same test set."""
    import numpy as np

    if a["test_set"] != b["test_set"]:
        raise ValueError(f"cannot compare rows of different test sets ({a['test_set']!r} vs "
                         f"{b['test_set']!r}): score both on the protocol's test set")
    diff = 100 * (a["mean"] - b["mean"])
    spread = 100 * max(a["std"] if len(a["seeds"]) > 1 else 0.0,
                       b["std"] if len(b["seeds"]) > 1 else 0.0)
    pa, pb = _per_row(a), _per_row(b)
    if pa is not None and pb is not None:
        d = np.asarray(pa) - np.asarray(pb)
        rng = np.random.default_rng(seed)
        means = np.empty(n_boot)
        for start in range(0, n_boot, 250):           # in chunks: bounded memory
            idx = rng.integers(0, len(d), size=(min(250, n_boot - start), len(d)))
            means[start:start + len(idx)] = d[idx].mean(axis=1)
        low, high = (100 * np.percentile(means, [2.5, 97.5])).tolist()
        paired = True
    else:
        n = a["rows"]
        se = math.sqrt(a["mean"] * (1 - a["mean"]) / n + b["mean"] * (1 - b["mean"]) / n)
        low, high = diff - 196 * se, diff + 196 * se
        paired = False
    if low > 0 and diff > spread:
        verdict = "better"
    elif high < 0 and -diff > spread:
        verdict = "worse"
    else:
        verdict = "within the spread"
    return Verdict(verdict, diff, low, high, spread, paired, label(b))


def label(srow: dict) -> str:
    """A short name of a strategy row: 'full fine-tuning, new head (04, minilm, 128 labels)'."""
    if srow["strategy"] == "majority":
        return "the majority class"
    budget = "no labels" if srow["budget"] is None else f"{srow['budget']:,} labels"
    return f"{srow['what']} ({srow['notebook'][:2]}, {srow['model'] or '-'}, {budget})"


def judge(srows: list[dict], *, n_boot: int = 2000) -> list[dict]:
    """Each strategy row with its verdicts: `vs_baseline` (against the majority class of
    its test set) and `vs_rival` (against its rival in `RIVALS`: same notebook, tag,
    model, budget and test set), each a `Verdict` or None where there is nothing to
    compare with. Returns new dicts; the baseline rows come back with both None."""
    base = {r["test_set"]: r for r in srows if r["strategy"] == "majority"}
    index = {(r["strategy"], r["tag"], r["notebook"], r["model"], r["budget"], r["test_set"]): r
             for r in srows}
    out = []
    for r in srows:
        r = dict(r, vs_baseline=None, vs_rival=None)
        if r["strategy"] != "majority":
            b = base.get(r["test_set"])
            r["vs_baseline"] = versus(r, b, n_boot=n_boot) if b else None
            rival = RIVALS.get(r["strategy"])
            other = index.get((rival, r["tag"], r["notebook"], r["model"], r["budget"],
                               r["test_set"])) if rival else None
            r["vs_rival"] = versus(r, other, n_boot=n_boot) if other else None
        out.append(r)
    return out


# --------------------------------------------------------------------------- the table
def table(srows: list[dict], budget: int | None = None, markdown: bool = False,
          yours: dict | None = None) -> str:
    """A text (or Markdown) table of (judged) strategy rows, optionally one label budget.
    With `yours` ({key(row): your row}), a column of your own numbers beside them."""
    picked = [r for r in srows if budget is None or r["budget"] in (budget, None)]
    cells = []
    for r in picked:
        acc = f"{100 * r['mean']:.1f}" + (f" ± {100 * r['std']:.1f}" if len(r["seeds"]) > 1
                                          else "")
        vb, vr = r.get("vs_baseline"), r.get("vs_rival")
        verdict = "; ".join(x for x in (
            vb.words(baseline=True) if vb else "",
            (vr.words().replace(vr.against, _short_against(vr.against)) + f" ({vr.diff:+.1f})")
            if vr else "") if x) or "-"
        nb = r["notebook"] if r["strategy"] == "majority" else r["notebook"][:2]
        row = [r["what"], r["taxonomy"], nb, r["model"] or "-",
               "-" if r["budget"] is None else f"{r['budget']:,}", acc,
               ",".join(map(str, r["seeds"])), verdict]
        if yours is not None:
            mine = yours.get(key(r))
            row.append("-" if mine is None else f"{100 * mine['mean']:.1f}"
                       + (f" ± {100 * mine['std']:.1f}" if len(mine["seeds"]) > 1 else ""))
        cells.append(row)
    head = ["strategy", "taxonomy", "notebook", "model", "labels", "accuracy (%)", "seeds",
            "verdict"] + (["yours (%)"] if yours is not None else [])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
    keep = [0, 2, 3, 4, 5, 6, 7] + ([8] if yours is not None else [])
    body = [[c[i] for i in keep] for c in cells]
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
def plot(srows: list[dict], ax=None, title: str = "accuracy vs labelled examples"):
    """Accuracy against label budget (log scale) on one test set: one colour per strategy
    family (at most six legend entries plus the baseline), the mean over seeds with its
    spread, a line per (strategy, notebook, model). Strategies that use no labels
    (zero-shot) sit at "0" on the left; the majority class of the test set is the dotted
    line. Rows of another test set than the first row's are refused."""
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
        curves[(r["strategy"], r["tag"], r["notebook"], r["model"])].append(r)
    shown = set()
    for (stem, tag, nb, model), rs in curves.items():
        fam = STRATEGIES[stem][2]
        if stem == "majority":
            ax.axhline(100 * rs[0]["mean"], ls=":", color="black", lw=1.2,
                       label=f"majority class ({rs[0]['test_set']})")
            continue
        rs = sorted(rs, key=lambda r: r["budget"] or 0)
        xs = [r["budget"] or zero_x for r in rs]
        ys = [100 * r["mean"] for r in rs]
        es = [100 * r["std"] if len(r["seeds"]) > 1 else 0 for r in rs]
        ax.errorbar(xs, ys, yerr=es, color=color[fam], marker="o", ms=4, capsize=2, lw=1,
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
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title="strategy family", title_fontsize=8)
    ax.figure.tight_layout()
    return ax


# --------------------------------------------------------------------------- rules of thumb
# strategy -> (the question it answers, what each verdict against its rival means)
ADVICE = {
    "scratch": ("Pre-trained or from scratch",
                {"worse": "start from a pre-trained model: training the same architecture "
                          "from scratch did worse",
                 "within the spread": "pre-training did not clearly pay off here: training "
                                      "from scratch was within the spread",
                 "better": "training from scratch did better than the pre-trained start: "
                           "check the pre-trained model fits the task"}),
    "probe": ("Freeze the encoder or train it",
              {"worse": "train the encoder too: a frozen-encoder probe did worse",
               "within the spread": "a frozen-encoder probe was within the spread of full "
                                    "fine-tuning: the cheap option is enough here",
               "better": "a frozen-encoder probe did better than full fine-tuning"}),
    "adaptive": ("Unlabelled text from your domain",
                 {"better": "continued masked-LM pre-training on the domain paid off",
                  "within the spread": "continued masked-LM pre-training on the domain did "
                                       "not move accuracy beyond the spread",
                  "worse": "continued masked-LM pre-training on the domain hurt"}),
    "task_adaptive": ("Unlabelled text of the task itself",
                      {"better": "task-adaptive pre-training paid off",
                       "within the spread": "task-adaptive pre-training did not move accuracy "
                                            "beyond the spread",
                       "worse": "task-adaptive pre-training hurt"}),
    "behavioural": ("A related labelled dataset",
                    {"better": "fine-tune on it first: it helped",
                     "within the spread": "fine-tuning on it first did not help beyond the "
                                          "spread",
                     "worse": "fine-tuning on it first hurt"}),
    "behavioural_unrelated": ("An unrelated labelled dataset",
                              {"better": "even an unrelated task first helped",
                               "within the spread": "an unrelated task first neither helped "
                                                    "nor hurt beyond the spread",
                               "worse": "an unrelated task first hurt (negative transfer)"}),
    "prompt_ft": ("Few labels: a prompt or a new head",
                  {"better": "reshape the task into the pre-training task: the prompt did "
                             "better than a new head",
                   "within the spread": "the prompt and a new head were within the spread "
                                        "of each other",
                   "worse": "a new head did better than the prompt"}),
    "lora": ("Train fewer weights: LoRA", None),
    "adapter": ("Train fewer weights: adapters", None),
    "prompt_tuning": ("Train fewer weights: soft prompt tuning", None),
}


def which_when(judged: list[dict]) -> list[str]:
    """The showdown's rules of thumb, one sentence per question, each generated from the
    verdicts of `judge` (and quoting them), so none can contradict them."""
    sentences = []
    for stem, (question, meaning) in ADVICE.items():
        rs = [r for r in judged if r["strategy"] == stem and r["vs_rival"] is not None]
        if not rs:
            continue
        counts = defaultdict(list)
        for r in rs:
            counts[r["vs_rival"].verdict].append(r)
        if meaning is None:      # parameter-efficient: the cost as well as the verdict
            for r in rs:
                v = r["vs_rival"]
                share = ""
                rival_params = next((x["trainable"] for x in judged if x["strategy"] == "full_ft"
                                     and key(x)[1:] == key(r)[1:]), None)
                if r["trainable"] and rival_params:
                    share = f" while training {100 * r['trainable'] / rival_params:.2f}% of its weights"
                base = r["vs_baseline"].words(baseline=True) if r["vs_baseline"] else "no baseline"
                sentences.append(f"{question}: {label(r)} is {v.words()}{share} "
                                 f"({v.numbers()}); {base}.")
            continue
        ranked = sorted(counts, key=lambda v: len(counts[v]), reverse=True)
        tally = ", ".join(f"{v} at {len(counts[v])}" for v in ranked)
        where = "; ".join(f"{label(r)}: {r['vs_rival'].numbers()}" for r in rs)
        if len(ranked) > 1 and len(counts[ranked[0]]) == len(counts[ranked[1]]):
            sentences.append(f"{question}: the verdicts are mixed ({len(rs)} comparisons; "
                             f"{tally}). {where}.")
            continue
        verdict = ranked[0]
        sentences.append(f"{question}: {meaning[verdict]} ({len(counts[verdict])} of {len(rs)} "
                         f"comparisons; {tally}). {where}.")
    zs = [r for r in judged if r["strategy"] == "zero_shot" and r["vs_baseline"] is not None]
    for r in zs:
        v = r["vs_baseline"]
        text = (f"No labels at all ({label(r)}): the prompt scored {100 * r['mean']:.1f}%, "
                f"{v.words(baseline=True)} ({v.numbers()})")
        labelled = [x for x in judged if x["test_set"] == r["test_set"] and x["budget"]]
        if labelled:
            best = max(labelled, key=lambda x: x["mean"])
            w = versus(r, best)
            text += f"; against the best labelled strategy on the same rows it is {w.words()} ({w.numbers()})"
        sentences.append(text + ".")
    return sentences
