# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 09 · The showdown: every strategy on one target task
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/labkit-course/labkit/blob/main/notebooks/09_strategy_showdown.ipynb)
#
# Notebooks 02-08 each taught one way to get a model for movie-review sentiment with few
# labels, and each wrote its numbers into the **results ledger** (`runs/ledger.jsonl`):
# one JSON line per number, with its seed, profile, device and wall time. This notebook
# trains nothing. It reads the ledger and puts every strategy side by side:
#
# | pre-training | same task (A) | different task (B) |
# |---|---|---|
# | unsupervised, large data | 1A prompt cloze (07) | 1B head replacement (04) |
# | unsupervised, domain data | | 1B+2B adaptive (05) |
# | supervised, similar task | 1B+3A behavioural (06) | |
#
# plus the baselines (majority class, training from scratch, word vectors) and the
# parameter-efficient methods (08).
#
# **Read the table with care.** Each notebook chose its model and test set to fit a
# 2-core CPU in minutes (the `model` column and the notebooks say which), so rows
# from *different* notebooks are comparable only where the notebooks share the model and
# the test sentences. Within a notebook, every strategy used the same splits and seeds.

# %% tags=["colab-setup"]
# On Colab only: fetch the course and install what Colab lacks (elsewhere this cell does nothing).
# Colab's own torch, Jupyter server and kernel stay as they are (see labkit/colab.py).
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess
    repo = os.environ.get("LABKIT_CLONE_URL", "https://github.com/labkit-course/labkit")
    subprocess.run(f"[ -d course ] || git clone -q --depth 1 {repo} course && "
                   "python course/labkit/colab.py install course", shell=True, check=True)
    sys.path.insert(0, os.path.abspath("course"))

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("LABKIT_PROFILE", "quick")   # "smoke" | "quick" | "full"
SEED = int(os.environ.get("LABKIT_SEED", 0))

# %% [markdown]
# ## 1 · Read the ledger
#
# Your own runs come first: the rows of this profile in your ledger. If you have not run
# the other notebooks in this profile yet (in `smoke`, say, or on a fresh Colab), the
# notebook reads the ledger committed with the course instead: the `quick` runs that
# rendered the notebooks you are reading, and says so.

# %%
from pathlib import Path

import matplotlib.pyplot as plt

from labkit import compare, ledger
from labkit.profile import check

check(PROFILE)
run = ledger.Run("09_strategy_showdown", profile=PROFILE, seed=SEED)
rows = ledger.last_runs(ledger.read())
srows = compare.strategy_rows(rows, profile=PROFILE)
source = f"your ledger ({ledger.ledger_path()}), profile {PROFILE}"
if len({r["notebook"] for r in srows}) < 2:
    committed = Path(ledger.__file__).resolve().parent.parent / "runs" / "ledger.jsonl"
    rows = ledger.last_runs(ledger.read(committed))
    srows = compare.strategy_rows(rows, profile="quick")
    source = f"the committed ledger ({committed.name}), profile quick"
    print(f"[labkit] fewer than two notebooks of profile {PROFILE!r} in your ledger: "
          f"reading {source}")
print(f"{len(srows)} (strategy, notebook, budget) rows from {source}")
print(f"notebooks: {', '.join(sorted({r['notebook'] for r in srows}))}")

# %% [markdown]
# ## 2 · One table
#
# Mean test accuracy and its spread (± one standard deviation over seeds) for every
# strategy, notebook and label budget. `-` in the labels column: the strategy uses no
# labels (zero-shot, majority) or the notebook logged a fixed budget.

# %%
print(compare.table(srows))

# %% [markdown]
# Where each number came from: the model behind it and what it cost. `trainable` is the
# number of weights the strategy updated, the cost that parameter-efficient methods cut.

# %%
print(f"{'strategy':46s} {'nb':>3s} {'labels':>6s} {'model':>24s} {'trainable':>11s} {'wall s':>7s}")
for r in srows:
    trainable = f"{r['trainable']:,}" if r["trainable"] else "-"
    labels = "-" if r["budget"] is None else str(r["budget"])
    print(f"{r['what']:46s} {r['notebook'][:2]:>3s} {labels:>6s} {str(r['model'])[:24]:>24s} "
          f"{trainable:>11s} {r['wall_s']:>7.0f}")

# %% [markdown]
# ## 3 · One figure
#
# Accuracy against the number of labelled examples, log scale: the picture to remember.
# Curves that sit higher on the left are the strategies that make labels go further.

# %%
fig, ax = plt.subplots(figsize=(9, 5))
compare.plot(srows, ax=ax, title=f"movie-review sentiment: every strategy ({source.split(' (')[0]})")
plt.show()

# %% [markdown]
# ## 4 · Which strategy when: read off the numbers
#
# The guidance below is computed from the table, not written in advance: each sentence
# states a comparison *within one notebook* (same model, splits and seeds), so it holds
# for the numbers above and would change if they did.

# %%
def at(strategy, notebook_prefix, budget=None, tag=""):
    for r in srows:
        if (r["strategy"] == strategy and r["notebook"].startswith(notebook_prefix)
                and r["tag"] == tag and (budget is None or r["budget"] == budget)):
            return r
    return None


def budgets_of(notebook_prefix, strategy):
    return sorted({r["budget"] for r in srows if r["notebook"].startswith(notebook_prefix)
                   and r["strategy"] == strategy and r["budget"]})


def compare_pair(nb, a, b, budget, tag=""):
    ra, rb = at(a, nb, budget, tag), at(b, nb, budget, tag)
    if ra and rb:
        gap = 100 * (ra["mean"] - rb["mean"])
        spread = 100 * max(ra["std"], rb["std"])
        verdict = ("clearly better than" if gap > 2 * spread and gap > 1 else
                   "clearly worse than" if -gap > 2 * spread and -gap > 1 else
                   "within the seed spread of")
        return gap, verdict
    return None


findings = []
for nb, a, b, why in [
    ("04", "full_ft", "scratch", "pre-training vs none"),
    ("04", "full_ft", "probe", "moving every weight vs only the head"),
    ("05", "adaptive", "full_ft", "domain-adaptive MLM first"),
    ("06", "behavioural", "full_ft", "a related labelled task first"),
    ("06", "behavioural_unrelated", "full_ft", "an unrelated labelled task first"),
    ("07", "prompt_ft", "head_ft", "a prompt instead of a new head"),
]:
    for n in budgets_of(nb, a):
        result = compare_pair(nb, a, b, n)
        if result:
            gap, verdict = result
            findings.append((nb, n, why, a, b, gap, verdict))
for nb, n, why, a, b, gap, verdict in findings:
    print(f"[{nb}] {n:>5} labels, {why}: {compare.STRATEGIES[a][0]} is {verdict} "
          f"{compare.STRATEGIES[b][0]} ({gap:+.1f} points)")
lora, full = at("lora", "08"), at("full_ft", "08")
if lora and full:
    share = next((r["value"] for r in rows if r["metric"] == "trainable_share_lora"), None)
    print(f"[08] LoRA reaches {100 * lora['mean']:.1f}% vs {100 * full['mean']:.1f}% for full "
          f"fine-tuning" + (f" while training {100 * share:.2f}% of the weights" if share else ""))

# %% [markdown]
# How to turn that into a decision: the course's rules of thumb, each one tested by a
# line above or by the table (the numbers quoted are those of the rendered run). Where
# a line says "within the seed spread" or "worse", the rule did not pay off on this task
# and model, and that is worth knowing too.
#
# * **Always start from a pre-trained model** when one exists for your language: the
#   04 gap between fine-tuning and scratch (8.5 points at 128 labels in the rendered
#   run) is the price of ignoring it, and scratch needed ~8x more labels to catch up.
# * **No labels at all**: a prompt to a pre-trained *causal* LM (SmolLM2-135M, 07)
#   scored 73% zero-shot, about what MiniLM reached fine-tuned on 512 labels (08). The
#   4M-parameter masked LM could not do it (below the majority class): zero-shot
#   prompting needs a model large enough to have learnt the task's words in context.
# * **Few labels (tens to hundreds)**: reshape the task into the pre-training task
#   (prompt fine-tuning, 07): it led head fine-tuning of the same model at every budget
#   up to 256 labels, a prompt worth ~130 examples here. A frozen-encoder probe trailed
#   full fine-tuning by ~10 points at 128 labels (04): train the encoder too, gently.
# * **A related labelled dataset** (06) is worth a first round of fine-tuning (+4 points
#   from tweets); an unrelated one can hurt (news topics: -6.5 points, negative
#   transfer).
# * **Unlabelled text from your domain** (05): continued masked-LM pre-training halved
#   the in-domain perplexity but did not move accuracy on movie reviews, a domain close
#   to general text. Expect it to pay off for domains far from the pre-training corpus
#   (biomedical, legal, code) and with longer adaptation than a CPU allows here.
# * **Many tasks or a big model**: parameter-efficient methods (08) train ~1% of the
#   weights for accuracy close to full fine-tuning (LoRA 1.5 points behind), and store
#   one small file per task. Soft prompt tuning on a small model lags far behind.

# %% [markdown]
# ## Exercise
#
# In notebook 04's main comparison (one model, every strategy on the same splits and
# seeds), which strategy had the highest mean accuracy at the smallest label budget it
# ran? Answer with its `strategy` name (e.g. `"probe"`), then check it.

# %%
smallest = min((r["budget"] for r in srows if r["budget"] and r["notebook"].startswith("04")
                and r["tag"] == "" and r["strategy"] in ("full_ft", "scratch")), default=None)
print("smallest budget in 04:", smallest)
my_answer = None   # e.g. "full_ft"
if my_answer is not None:
    from labkit import checks
    checks.best_strategy(srows, smallest, my_answer)

# %% [markdown]
# ## The lesson, checked
#
# The showdown needs numbers from several notebooks, and the course's first lesson must
# hold in them: from the same model, fine-tuning a pre-trained encoder beats training the
# same architecture from scratch at the smallest budget of notebook 04.

# %%
run.log("strategies_compared", len({(r["strategy"], r["tag"]) for r in srows}))
run.log("notebooks_compared", len({r["notebook"] for r in srows}))
assert len({r["notebook"] for r in srows}) >= 2, "the ledger holds too few notebooks to compare"
if PROFILE != "smoke" and smallest is not None:
    gap = compare_pair("04", "full_ft", "scratch", smallest)
    assert gap is not None and gap[0] > 0, gap
    print(f"pre-training beats scratch at {smallest} labels by {gap[0]:.1f} points")

# %% [markdown]
# ## What to try next
#
# * Run `labkit run --profile quick` for the notebooks you changed, then re-run this one:
#   the table, the figure and the guidance update from your ledger.
# * Add a strategy: log `acc_<name>@<labels>` from your notebook, give `<name>` a line in
#   `labkit.compare.STRATEGIES`, and it appears here.
# * On a GPU, `labkit run --profile full`: larger models and the full test set; compare
#   which rules of thumb survive.
