"""Every strategy side by side, read from the results ledger (notebook 09).

The notebooks log accuracies under names like `acc_full_ft@128` (strategy `full_ft`,
label budget 128) or, where the budget is fixed, `acc_lora` with the budget in the row's
`label_budget` field. `strategy_rows` turns the ledger into one row per (strategy,
notebook, budget) with mean, spread and seeds; `table` prints them; `plot` draws accuracy
against label budget, one line per strategy.
"""

from __future__ import annotations

import re
from collections import defaultdict

from .metrics import mean_std

# metric stem -> (what the strategy is, taxonomy cell); order = how the table reads
STRATEGIES: dict[str, tuple[str, str]] = {
    "majority": ("majority class (no learning)", "baseline"),
    "clf_acc_random_init": ("word-level classifier, random embeddings", "scratch"),
    "clf_acc_w2v_init": ("word-level classifier, word2vec embeddings", "scratch + vectors"),
    "scratch": ("transformer from random init", "scratch"),
    "probe": ("linear probe (frozen encoder)", "1B"),
    "full_ft": ("full fine-tuning, new head", "1B"),
    "head_ft": ("full fine-tuning, new head (notebook 07)", "1B"),
    "adaptive": ("domain-adaptive MLM, then fine-tune", "1B+2B"),
    "task_adaptive": ("task-adaptive MLM, then fine-tune", "1B+2B"),
    "behavioural": ("related task first (tweets), then fine-tune", "1B+3A"),
    "behavioural_unrelated": ("unrelated task first (news), then fine-tune", "1B+3A"),
    "zero_shot": ("prompt, zero-shot", "1A"),
    "prompt_ft": ("prompt (cloze) fine-tuning, PET", "1A"),
    "lora": ("LoRA", "PEFT"),
    "adapter": ("bottleneck adapters", "PEFT"),
    "prompt_tuning": ("soft prompt tuning", "PEFT"),
}

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


def strategy_rows(rows: list[dict], profile: str | None = None) -> list[dict]:
    """One row per (strategy, notebook, label budget): mean and spread over seeds."""
    from .ledger import latest

    groups = defaultdict(list)
    for r in latest(rows, profile):
        parsed = parse(r["metric"])
        if parsed is None:
            continue
        stem, n, tag = parsed
        n = n if n is not None else r.get("label_budget")
        groups[(stem, tag, r["notebook"], n)].append(r)
    order = list(STRATEGIES)
    out = []
    for (stem, tag, nb, n), rs in sorted(
            groups.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1], kv[0][2], kv[0][3] or 0)):
        mean, std = mean_std([r["value"] for r in rs])
        what = STRATEGIES[stem][0] + (f" [{tag}]" if tag else "")
        out.append({"strategy": stem, "tag": tag, "what": what, "taxonomy": STRATEGIES[stem][1],
                    "notebook": nb, "budget": n, "mean": mean, "std": std,
                    "seeds": sorted(r["seed"] for r in rs), "device": rs[-1]["device"],
                    "wall_s": max(r["wall_s"] for r in rs),
                    "trainable": rs[-1].get("trainable", rs[-1].get("trainable_params")),
                    "model": rs[-1].get("model", "")})
    return out


def table(srows: list[dict], budget: int | None = None, markdown: bool = False) -> str:
    """A text (or Markdown) table of `strategy_rows`, optionally only one label budget."""
    picked = [r for r in srows if budget is None or r["budget"] in (budget, None)]
    cells = [(r["what"], r["taxonomy"], r["notebook"][:2], r["model"] or "-",
              "-" if r["budget"] is None else f"{r['budget']:,}",
              f"{100 * r['mean']:.1f}" + (f" ± {100 * r['std']:.1f}" if len(r["seeds"]) > 1
                                          else ""),
              ",".join(map(str, r["seeds"]))) for r in picked]
    if markdown:
        lines = ["| strategy | taxonomy | notebook | model | labels | accuracy (%) | seeds |",
                 "|---|---|---|---|---|---|---|"]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
    head = f"{'strategy':46s} {'nb':>3s} {'labels':>6s} {'accuracy':>14s} {'seeds':>6s}"
    lines = [head, "-" * len(head)]
    for what, _, nb, _, labels, acc, seeds in cells:
        lines.append(f"{what:46s} {nb:>3s} {labels:>6s} {acc:>14s} {seeds:>6s}")
    return "\n".join(lines)


def plot(srows: list[dict], ax=None, title: str = "accuracy vs labelled examples"):
    """Accuracy against label budget (log scale), one line per (strategy, notebook, tag),
    one colour per strategy. Strategies that use no labels (zero-shot) sit at "0" on the
    left; the majority class is a dotted line; the legend stands outside the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(11, 5.5))
    budgets = [r["budget"] for r in srows if r["budget"]]
    zero_x = min(budgets) / 2.5 if budgets else 1.0      # where "no labels" is drawn
    order = [s for s in STRATEGIES if s != "majority"]
    cmap = plt.get_cmap("tab20")
    color = {s: cmap(i % 20) for i, s in enumerate(order)}
    markers = dict(zip(sorted({r["notebook"][:2] for r in srows}), "osD^v<>pPX*h"))
    curves = defaultdict(list)
    for r in srows:
        curves[(r["strategy"], r["tag"], r["notebook"])].append(r)
    for (stem, tag, nb), rs in curves.items():
        label = f"{rs[0]['what']} ({nb[:2]})"
        if stem == "majority":
            ax.axhline(100 * rs[0]["mean"], ls=":", color="gray", lw=1, label=label)
            continue
        rs = sorted(rs, key=lambda r: r["budget"] or 0)
        xs = [r["budget"] or zero_x for r in rs]
        ys = [100 * r["mean"] for r in rs]
        es = [100 * r["std"] for r in rs]
        ax.errorbar(xs, ys, yerr=es, color=color[stem], marker=markers[nb[:2]], ms=5,
                    ls="--" if tag else "-", capsize=2, lw=1.2, label=label)
    ax.set_xscale("log")
    ax.axvline(zero_x * 1.6, color="black", lw=0.5)
    ticks = [t for t in (8, 32, 128, 512, 2000, 10_000) if not budgets or
             min(budgets) / 1.5 <= t <= max(budgets) * 1.5]
    ax.set_xticks([zero_x] + ticks, ["0"] + [f"{t:,}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("labelled training examples (log scale; 0 = zero-shot)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title="strategy (notebook); dashed: a second model", title_fontsize=7)
    ax.figure.tight_layout()
    return ax
