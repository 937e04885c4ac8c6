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
# labels, and each wrote its numbers into a **results ledger**: one JSON line per number,
# with its seed, profile, device, wall time and the test rows it was scored on. This
# notebook trains nothing (it runs in seconds). It reads the ledgers and puts every
# strategy side by side:
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
# **One protocol makes the numbers comparable** (`labkit.protocol`): every notebook scores
# the same fixed test sentences, logs the majority-class accuracy on them, and records
# for each accuracy which rows it was scored on (`test_set`), its label budget, model,
# seeds, trainable weights and whether each test row came out right. So two strategies
# from different notebooks compare directly, and this notebook never compares rows of
# different test sets.
#
# **Verdicts are computed, not written** (`labkit.compare`): "better", "worse" or "within
# the spread" come from two sources of noise at once, the spread over seeds and a paired
# bootstrap over the test rows. Every sentence of the advice at the end is generated from
# those verdicts.
#
# **You will be able to**
#
# * read a comparison of training strategies together with its noise;
# * tell a difference from a fluctuation (seed spread and a paired bootstrap);
# * pick a strategy for a new task with few labels, and say how sure you are.
#
# **Prerequisites**: notebooks 02-08 (their numbers come from the reference ledger that
# ships with the course, so you need not have run them yourself).

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
# ## 1 · Read the ledgers
#
# Two ledgers, one format. The **reference ledger** (`results/reference.jsonl`, part of the
# course) holds the `quick` runs that rendered the notebooks you are reading. **Your
# ledger** (`runs/ledger.jsonl`, never committed) holds every run you make. The table
# shows the reference numbers with yours beside them.

# %%
import matplotlib.pyplot as plt

from labkit import compare, course, ledger, quiz
from labkit.profile import check

check(PROFILE)
course.header("09_strategy_showdown")
run = ledger.Run("09_strategy_showdown", profile=PROFILE, seed=SEED)
reference = ledger.last_runs(ledger.read(ledger.reference_path()))
mine = [] if ledger.writes_reference() else ledger.last_runs(ledger.read())
ref_rows = compare.strategy_rows(reference, profile="quick")
my_rows = compare.strategy_rows(mine)
main = compare.main_test_set(ref_rows, "quick")
source = "the reference ledger, profile quick"
if main is None:
    print(f"The reference ledger holds {len(reference)} rows and none of its accuracies is "
          f"scored under the protocol yet ({compare.legacy(reference)} predate it). "
          "Re-render notebooks 02-08 with `labkit run --render` to fill it.")
    main = compare.main_test_set(my_rows, PROFILE)
    if main is not None:
        ref_rows, my_rows, source = my_rows, [], f"your ledger, profile {PROFILE}"
        print(f"Showing your own runs instead ({ledger.ledger_path()}).")
srows = [r for r in ref_rows if r["test_set"] == main]
judged = compare.judge(srows)
yours = {compare.key(r): r for r in my_rows if r["test_set"] == main}
print(f"{len(srows)} (strategy, notebook, model, budget) rows from {source}, "
      f"test set {main or '-'}; {len(yours)} of yours on the same rows")
if ledger.writes_reference():
    print("(this run writes the reference ledger itself, so there is no separate column "
          "of your numbers)")

# %% [markdown]
# ## 2 · One table, one baseline
#
# Mean test accuracy and its spread (± one standard deviation over seeds) for every
# strategy, notebook, model and label budget, all on the same test rows. `-` in the
# labels column: the strategy uses no labels. The verdict column compares each strategy
# with the majority class and with its natural rival from the same notebook (scratch,
# the probe, adaptive and behavioural starts, LoRA, adapters and prompt tuning against
# full fine-tuning; prompt fine-tuning against a new head), same model and budget.

# %%
if judged:
    base = next((r for r in judged if r["strategy"] == "majority"), None)
    print(f"test set {main}: {compare.size_words(main)}; majority-class baseline "
          + (f"{100 * base['mean']:.1f}%" if base else "not logged") + "\n")
    print(compare.table(judged, yours=None if ledger.writes_reference() else yours))
else:
    print("nothing to compare yet: no accuracy in the ledgers names its test set")

# %% [markdown]
# The paired bootstrap behind each verdict, with its 95% interval in accuracy points
# (an interval that contains 0 cannot call a winner), and what each strategy cost:
# the weights it trained and its training time.

# %%
for r in judged:
    for v, baseline in ((r["vs_rival"], False), (r["vs_baseline"], True)):
        if v is not None:
            print(f"{compare.label(r)}: {v.words(baseline)} ({v.numbers()})")
if judged:
    print(f"\n{'strategy':46s} {'nb':>3s} {'model':>10s} {'labels':>6s} {'trainable':>11s} "
          f"{'train s':>8s}")
for r in judged:
    if r["strategy"] == "majority":
        continue
    trainable = f"{r['trainable']:,}" if r["trainable"] else "-"
    wall = f"{r['train_wall_s']:.0f}" if r["train_wall_s"] is not None else "-"
    labels = "-" if r["budget"] is None else str(r["budget"])
    print(f"{r['what'][:46]:46s} {r['notebook'][:2]:>3s} {str(r['model'])[:10]:>10s} "
          f"{labels:>6s} {trainable:>11s} {wall:>8s}")

# %% [markdown]
# ## 3 · One figure
#
# Accuracy against the number of labelled examples, log scale, one colour per family of
# strategies (the table has every row), the majority class of the same test rows dotted.
# Curves that sit higher on the left are the strategies that make labels go further.

# %%
if judged:
    fig, ax = plt.subplots(figsize=(9, 5))
    compare.plot(srows, ax=ax, title=f"movie-review sentiment on {main} ({source})")
    plt.show()

# %% [markdown]
# ## 4 · Which strategy when
#
# The advice below is generated from the verdicts above: for each question, what the
# comparisons say (the most common verdict, with how many comparisons gave each), and
# the numbers behind it. Where a verdict is "within the spread", the strategy did not
# clearly pay off on this task, model and budget; that is worth knowing too. Rerun the
# notebooks with other seeds or budgets and the sentences change with the verdicts.

# %%
advice = compare.which_when(judged)
for sentence in advice:
    print("* " + sentence + "\n")
if not advice:
    print("no comparison to draw advice from yet")

# %% [markdown]
# A few things the accuracy table cannot show: a domain far from general text
# (biomedical, legal, code) is where continued pre-training (05) is expected to pay off,
# given longer adaptation than a CPU allows; parameter-efficient methods (08) store one
# small file per task instead of a full model copy; and a prompt needs a model large
# enough to have learnt the task's words in context. Each notebook shows its own part.

# %% [markdown]
# ## 5 · Your runs on other test sets
#
# Runs of other profiles (`smoke` scores a tiny slice) or notebooks that scored a slice
# for time compare only with their own baseline. They are judged here, one test set at
# a time.

# %%
for other in sorted({r["test_set"] for r in my_rows} - {main}):
    group = compare.judge([r for r in my_rows if r["test_set"] == other])
    print(f"test set {other} ({compare.size_words(other)}), your ledger:")
    print(compare.table(group) + "\n")

# %% [markdown]
# ## Exercise
#
# In notebook 04's main comparison (one model, every strategy on the same splits and
# seeds), which strategy had the highest mean accuracy at the smallest label budget it
# ran? Answer with its `strategy` name (e.g. `"probe"`), then check it. Then look up its
# verdict: is it also *better* than the others, or only higher?

# %%
smallest = min((r["budget"] for r in srows if r["budget"] and r["notebook"].startswith("04")
                and r["tag"] == "" and r["strategy"] in ("full_ft", "scratch")), default=None)
print("smallest budget in 04:", smallest)
my_answer = None   # a strategy name from the table above, as a string
if my_answer is not None:
    from labkit import checks
    checks.best_strategy(srows, smallest, my_answer)

# %% [markdown]
# ## The lesson, checked
#
# The course's first lesson must hold in the reference numbers: from the same model,
# fine-tuning a pre-trained encoder beats training the same architecture from scratch,
# by a verdict, not only by the means. Notebook 04 runs that comparison along a learning
# curve; it is checked at the largest budget of the curve, where the most labels are.

# %%
run.log("strategies_compared", len({(r["strategy"], r["tag"]) for r in srows}))
curve = [r for r in judged if r["strategy"] == "scratch" and r["notebook"].startswith("04")
         and r["vs_rival"] is not None and r["budget"]]
if curve:
    scratch = max(curve, key=lambda r: r["budget"])
    v = scratch["vs_rival"]
    print(f"at {scratch['budget']:,} labels ({scratch['model']}), scratch is {v.words()} "
          f"({v.numbers()})")
if PROFILE != "smoke":
    assert curve, "the reference ledger has no scratch-vs-pre-trained comparison of notebook 04"
    assert v.verdict == "worse", f"pre-training did not beat scratch by a verdict: {v}"

# %% [markdown]
# ## What comes next
#
# Every strategy here adapts a pre-trained model to *one task* with labels. Notebook 10
# goes past task adaptation, to what a chat model's second life looks like: supervised
# fine-tuning on demonstrations, a reward model, and preference optimisation (DPO) on a real
# small language model. Its numbers are not accuracies on this task, so they do not
# belong in this table.
#
# ## Key takeaways
#
# * A difference between two strategies means something only against its noise: the
#   spread over seeds and the resampling of the test rows. Many gaps in the table are
#   fluctuations.
# * Comparisons hold only on the same test rows; a number scored on a slice is read against
#   that slice's own majority line.
# * The advice above is generated from the verdicts, so it changes when the numbers do:
#   run a notebook with another seed or budget and read it again.
#
# ## Check your understanding

# %%
q = quiz.ask("09")

# %% [markdown]
# ## What to try next
#
# * Run `labkit run --profile quick` for the notebooks you changed, then re-run this one:
#   your column fills in beside the reference numbers, and the verdicts tell you whether
#   your change is a difference or a fluctuation.
# * Add a strategy: log it with `protocol.log_accuracy(run, "acc_<name>@<labels>", ...)`,
#   give `<name>` a line in `labkit.compare.STRATEGIES`, and it appears here.
# * On a GPU, `labkit run --profile full`: larger models on the same test rows; compare
#   which verdicts survive.
#
# ## References
#
# * Dror, Baumer, Shlomov and Reichart (2018), *The Hitchhiker's Guide to Testing
#   Statistical Significance in Natural Language Processing*, ACL.
# * Berg-Kirkpatrick, Burkett and Klein (2012), *An Empirical Investigation of Statistical
#   Significance in NLP*, EMNLP (the paired bootstrap).
# * Dodge, Ilharco, Schwartz, Farhadi, Hajishirzi and Smith (2020), *Fine-Tuning Pretrained
#   Language Models: Weight Initializations, Data Orders, and Early Stopping*, `2002.06305`.

# %%
run.finish()   # close this run in the ledger: only a notebook that ran to its end counts
