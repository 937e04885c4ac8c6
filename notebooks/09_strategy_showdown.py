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
# plus the baselines (majority class, the classical TF-IDF + logistic regression of 04,
# training from scratch, word vectors), the parameter-efficient methods (08) and, when
# its rows are in the ledger, what notebook 12 did to the data (noisy, cleaned,
# augmented, self-trained and model-made labels).
#
# **One protocol makes the numbers comparable** (`labkit.protocol`): every notebook scores
# the same fixed test sentences, logs the majority-class accuracy on them, and records
# for each accuracy which rows it was scored on (`test_set`), its label budget, model,
# seeds, trainable weights and whether each test row came out right. So two strategies
# from different notebooks compare directly, and this notebook never compares rows of
# different test sets.
#
# **The headline is balanced accuracy**: the mean of the accuracy on positive and on
# negative reviews. The label budgets are balanced 50/50 while the test rows are 58.8%
# positive, so plain accuracy rewards a model for leaning positive; in balanced accuracy
# chance and the majority class (any constant answer) both score 50%.
#
# **Verdicts are computed, not written** (`labkit.compare`): each compares two means over
# seeds with a 95% interval for their difference, paired over seeds (the same label
# budgets drawn) and over the test rows (the same sentences scored). "Better" or "worse"
# only where the interval excludes 0; otherwise the difference is **not resolved at this
# size**: more seeds or rows might resolve it, and it is no evidence that a strategy does
# not work. A run with one seed has an unknown spread, so it resolves nothing. Every
# sentence of the advice at the end is generated from resolved verdicts only.
#
# **You will be able to**
#
# * read a comparison of training strategies together with its noise;
# * tell a difference from a fluctuation (seed spread and test rows, paired, in one interval);
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
judged = compare.cells(compare.judge(srows))        # one row per strategy, model, budget
yours = {compare.key(r): r for r in my_rows if r["test_set"] == main}
print(f"{len(srows)} (strategy, notebook, model, budget) rows from {source}, "
      f"test set {main or '-'}; {len(yours)} of yours on the same rows")
if ledger.writes_reference():
    print("(this run writes the reference ledger itself, so there is no separate column "
          "of your numbers)")

# %% [markdown]
# ## 2 · One table, one baseline
#
# Mean balanced accuracy and its spread (± one standard deviation over seeds), with plain
# accuracy beside it, for every strategy, model and label budget, all on the same test
# rows: one number per cell. Full fine-tuning is logged by several notebooks (each uses
# it as its own rival); the table shows the run of the notebook that teaches it and names
# the others ("also"). Every notebook here keeps the weights by one rule
# (`protocol.fit_options`: the best of four validation checkpoints). `-` in the labels
# column: the strategy uses no labels. The verdict column compares each strategy with the
# majority class, with its natural rival from the same notebook (scratch, the probe,
# adaptive and behavioural starts, LoRA, adapters and prompt tuning against full
# fine-tuning; prompt fine-tuning against a new head; notebook 12's data treatments
# against clean labels), and, in 04, with TF-IDF + logistic regression on the same
# labels: the difference in balanced-accuracy points and its 95% interval.

# %%
if judged:
    base = next((r for r in judged if r["strategy"] == "majority"), None)
    print(f"test set {main}: {compare.size_words(main)}; majority-class baseline "
          + (f"{100 * base['mean']:.1f}% accuracy, 50% balanced accuracy" if base
             else "not logged") + "\n")
    print(compare.table(judged, yours=None if ledger.writes_reference() else yours))
    print("\n" + compare.multiplicity(judged))
else:
    print("nothing to compare yet: no accuracy in the ledgers names its test set")

# %% [markdown]
# Each verdict in full, with its 95% interval in balanced-accuracy points (an interval
# that contains 0 cannot call a winner; with three seeds the seed part of the interval
# uses Student's t with few degrees of freedom, so it is wide), and what each strategy
# cost: the weights it trained and its training time. The page makes many comparisons:
# at 95% each, about one in twenty differences that are truly zero resolves by chance;
# Holm's correction says which resolved ones hold with the family-wise error at 5%.

# %%
for r in judged:
    for v, baseline in ((r["vs_rival"], False), (r.get("vs_classical"), False),
                        (r["vs_baseline"], True)):
        if v is not None:
            holm = "" if not v.is_resolved else (" [holds after Holm]" if v.holm
                                                  else " [not after Holm]")
            print(f"{compare.label(r)}: {v.words(baseline)} ({v.numbers()}){holm}")
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
# Balanced accuracy against the number of labelled examples, log scale, one colour per
# family of strategies (the table has every row), the classical TF-IDF baseline dashed,
# chance and the majority class (50%) dotted. Curves that sit higher on the left are the
# strategies that make labels go further; the gap above the dashed line is what
# pre-training buys over the classical tool.

# %%
if judged:
    fig, ax = plt.subplots(figsize=(9, 5))
    compare.plot(srows, ax=ax, title=f"movie-review sentiment on {main} ({source})")
    plt.show()

# %% [markdown]
# ## 4 · Which strategy when
#
# The advice below is generated from the verdicts above, and only a resolved verdict (a
# 95% interval that excludes 0) makes a claim. Each claim names its regime: the model,
# the label budget and the test set it holds for, and nothing beyond them (a 4M-parameter
# model at 128 labels says little about a large one at 10,000). Every other comparison
# is listed as "not resolved at this size" with its interval: the data here cannot tell,
# which is no evidence that the strategy has no effect. Rerun the notebooks with more seeds,
# other budgets or the `full` profile, and the sentences change with the verdicts.

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
    group = compare.cells(compare.judge([r for r in my_rows if r["test_set"] == other]))
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
# The course's first comparison, read as its interval allows: notebook 04 trains the
# same architecture from scratch (with a from-scratch recipe) and from its pre-trained
# weights on the same labels and steps, at the largest budget of its curve. The check is
# that the reference numbers never show scratch resolved *ahead* of pre-training, and
# that the page says what they do show: "worse" only when the 95% interval is below 0,
# otherwise "not resolved at this size" with the interval. And the advice must claim
# nothing unresolved.

# %%
run.log("strategies_compared", len({(r["strategy"], r["tag"]) for r in srows}))
curve = [r for r in judged if r["strategy"] == "scratch" and r["notebook"].startswith("04")
         and r["vs_rival"] is not None and r["budget"]]
if curve:
    scratch = max(curve, key=lambda r: r["budget"])
    v = scratch["vs_rival"]
    print(f"at {scratch['budget']:,} labels ({scratch['model']}), scratch is {v.words()} "
          f"({v.numbers()})")
for r in judged:                  # every unresolved comparison is reported as such
    for w in (r["vs_rival"] if r["strategy"] in compare.ADVICE else None,
              r.get("vs_classical")):
        if w is not None and not w.is_resolved:
            assert any(compare.NOT_RESOLVED in s and w.numbers() in s for s in advice), w
if PROFILE != "smoke":
    assert curve, "the reference ledger has no scratch-vs-pre-trained comparison of notebook 04"
    assert v.verdict != "better", v      # scratch resolved ahead would contradict the course
    if not v.is_resolved:                # then the page says so, with the interval
        assert any(compare.NOT_RESOLVED in s and v.numbers() in s for s in advice), v

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
#   spread over seeds and the sampling of the test rows, both in one interval. Many gaps
#   in the table are not resolved at this size, and a run with one seed resolves nothing.
# * Balanced accuracy puts chance at 50% whatever the classes' shares; a model that only
#   learnt to lean towards the majority class scores well in plain accuracy, not here.
# * Comparisons hold only on the same test rows; a number scored on a slice is read against
#   that slice's own majority line.
# * The advice above is generated from resolved verdicts only and names the regime each
#   holds for, so it changes when the numbers do: run a notebook with another seed or
#   budget and read it again.
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
