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
# # 05 · Adaptive pre-training: keep the masked LM learning on your domain, then fine-tune
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/labkit-course/labkit/blob/main/notebooks/05_adaptive_finetuning.ipynb)
#
# Notebook 04 took a pre-trained encoder, put a new head on it and fine-tuned it on a
# few labelled movie-review sentences. The encoder was pre-trained on general text, and
# labels are the expensive part. Unlabelled text from the target domain is cheap, so
# before fine-tuning we can **keep pre-training** with the same masked-LM objective on
# that text, then fine-tune exactly as in 04. In the course's taxonomy this is
# **1B + 2B**: unsupervised pre-training on large data (1), then on domain data (2), then
# a different task, sentiment (B).
#
# Gururangan et al. (2020, *Don't Stop Pretraining*) name two variants:
#
# * **domain-adaptive** pre-training (DAPT): a large corpus from the target domain;
#   here, movie plot summaries plus the review sentences of the training split;
# * **task-adaptive** pre-training (TAPT): only the task's own unlabelled sentences;
#   here, the training split's review sentences with their labels thrown away.
#
# What we measure: masked-LM perplexity on held-out movie text (did the model learn the
# domain?) and on held-out speeches (what did it forget?), then test accuracy at small
# label budgets against plain fine-tuning of the same model, same seeds, same examples.

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
# **You will be able to**
#
# * compute the masked-LM perplexity of held-out text the right way: the loss summed
#   over every scored token, divided by their number, then exp;
# * keep pre-training a masked LM on domain text (DAPT) or on the task's own text (TAPT),
#   and tell what the domain taught from what any training repairs (a control run);
# * fine-tune the adapted encoders with the course's shared recipe and read the result
#   against the seed spread and the majority line.
#
# **Prerequisites**: notebook 03 (masked-LM pre-training, 80/10/10 masking, perplexity)
# and notebook 04 (head replacement and the fine-tuning recipe).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import transformers

from IPython.display import Markdown

from labkit import (adapt, checks, compare, course, data, device, finetune, ledger, mlm, models,
                    protocol, quiz)
from labkit.profile import choose

course.header("05_adaptive_finetuning")
started = time.perf_counter()
transformers.logging.set_verbosity_error()    # the expected "newly initialised head" notes
device.seed_everything(SEED)
dev = device.pick()
run = ledger.Run("05_adaptive_finetuning", profile=PROFILE, seed=SEED, device=dev)

# How much of everything each profile uses.
N_TEXTS = choose(PROFILE, smoke=300, quick=None, full=None)      # None: every text
ADAPT_STEPS = choose(PROFILE, smoke=3, quick=100, full=2000)      # masked-LM steps
ADAPT_BATCH = choose(PROFILE, smoke=8, quick=32, full=64)         # blocks per step
ADAPT_LR = 5e-4                                                   # see section 4
BLOCK = 64                                                        # tokens per block
N_DOMAIN_BLOCKS = choose(PROFILE, smoke=8, quick=None)           # held-out movie text (None: all)
N_GENERAL_BLOCKS = choose(PROFILE, smoke=8, quick=400, full=None)  # held-out speeches
BUDGETS = choose(PROFILE, smoke=[16], quick=[128], full=[32, 128, 512, 2000])
# the seeds every comparison averages over; `labkit run 05 --seed 100` shifts them all
# (100, 101, 102), which is how settings are explored without touching the reported seeds
SEEDS = [SEED + s for s in choose(PROFILE, smoke=[0], quick=[0, 1, 2], full=[0, 1, 2, 3, 4])]
N_BAR = min([n for n in BUDGETS if n >= 128] or BUDGETS)          # the budget the bar is at
if dev.type == "cpu":
    print(f"no GPU here: running the {PROFILE} profile on the CPU with the 4.4M-parameter "
          "tiny-mlm (see section 2)")
print(f"profile {PROFILE}, seed {SEED}, device {dev}: {ADAPT_STEPS} adaptation steps of "
      f"{ADAPT_BATCH} x {BLOCK} tokens; label budgets {BUDGETS}, seeds {SEEDS}")

# %% [markdown]
# ## 1 · The unlabelled text, and how the two variants differ here
#
# Three pools of text, all from the bundled data:
#
# | pool | what | used for |
# |---|---|---|
# | domain-adaptive | `movie_plots` train (plot summaries) + the **text only** of `movie_reviews` train | DAPT |
# | task-adaptive | the text only of `movie_reviews` train | TAPT |
# | held-out in-domain | `movie_plots` validation + `movie_reviews` validation text | perplexity |
# | general | `sotu` validation (State of the Union speeches) | perplexity: what was forgotten |
#
# No validation or test review is ever trained on, and no label is read before section 5.
# (The validation reviews' *text* is in the held-out perplexity set; their labels are
# used in section 5 to pick the best fine-tuning step, as in 04.)

# %%
def first(split, n):
    return split if n is None else split.select(range(min(n, len(split))))


plots = data.load("movie_plots", profile=PROFILE, source="bundled")
reviews = data.load("movie_reviews", profile=PROFILE, source="bundled")
sotu = data.load("sotu", profile=PROFILE, source="bundled")

task_texts = list(first(reviews["train"], N_TEXTS)["text"])          # labels dropped
plot_texts = list(first(plots["train"], N_TEXTS)["text"])
domain_texts = plot_texts + task_texts
held_out_texts = (list(first(plots["validation"], N_TEXTS)["text"])
                  + list(first(reviews["validation"], N_TEXTS)["text"]))
general_texts = list(first(sotu["validation"], N_TEXTS)["text"])

pools = {"domain-adaptive": domain_texts, "task-adaptive": task_texts,
         "held-out in-domain": held_out_texts, "general (speeches)": general_texts}
display(pd.DataFrame({name: {"texts": len(t), "words": sum(len(x.split()) for x in t),
                             "median words per text": int(np.median([len(x.split()) for x in t]))}
                      for name, t in pools.items()}).T)
share = sum(len(x.split()) for x in task_texts) / sum(len(x.split()) for x in domain_texts)
print(f"the task's own sentences are {share:.0%} of the domain-adaptive corpus's words")

# %% [markdown]
# One text of each kind (shortened):

# %%
pd.set_option("display.max_colwidth", 120)
display(pd.DataFrame({"text": [plot_texts[0][:240], task_texts[0], general_texts[0][:240]]},
                     index=["plot summary", "review sentence", "speech passage"]))

# %% [markdown]
# **How DAPT and TAPT differ here.** In the paper, the domain corpus is large and broad
# (millions of reviews or papers) and the task's text is a small, highly relevant
# slice of it. Our bundled domain corpus is small: the task-adaptive text is not just
# relevant to the domain-adaptive text, it is *inside* it, and makes up most of it. The
# only thing DAPT adds is the plot summaries: longer, neutral, narrative text about
# the same films (who does what to whom), not opinions. So here, DAPT = TAPT + plot
# summaries, and the two should behave much alike; any difference comes from the
# plots and from DAPT spending fewer of its steps on review sentences.
#
# ## 2 · Which model to adapt
#
# Adaptive pre-training needs a model with a working **masked-LM head**: the objective
# is to predict hidden tokens. The offline candidates:
#
# * `minilm` (22.7M parameters) has none; a fresh head trained on its frozen encoder for
#   7 CPU minutes only learned word frequencies (measured), so it is out.
# * `course-bert`, the BERT notebook 03 pre-trained from scratch (2 layers, hidden
#   128, an 8,000-token vocabulary). It exists only after notebook 03 has run. It was trained for
#   minutes, and notebook 03 already put *this very movie text* in its pre-training
#   corpus: adapting it would repeat text it has seen rather than bring a new domain.
# * `tiny-mlm` (4.4M parameters, 2 layers, hidden 128): bert-base-uncased's 30,522-token
#   vocabulary and real pre-training on a large general corpus, then tuned for search
#   (SPLADE), which left its fill-mask weak. It has never been adapted to movie text.
#
# We adapt **`tiny-mlm`**: of the two with a head, it is the one with real general
# pre-training behind it and a domain it has not seen, which is the situation adaptive
# pre-training is for.
#
# **The setting the effect needs, the one chosen, and how far it is from the paper**
# (stated before any result; the numbers are reported on `SEEDS`). Gururangan et al.
# (2020) found adaptive pre-training worth most where the target domain is far from the
# model's own pre-training text (computer-science and biomedical papers: several
# points) and least where it is close (news: nothing; IMDB movie reviews: a fraction of
# a point, Table 3), with a 125M-parameter model adapted on billions of tokens (DAPT)
# or on the task's own text for 100 epochs (TAPT). TAPT is the variant the paper found
# cheap and competitive: a small, task-relevant corpus read many times; and its gains
# were largest with few labels. So the setting chosen here is the one that fits a CPU:
# **both variants on the one pre-trained masked LM offline (`tiny-mlm`), the same
# number of adaptation steps each, then 128 labels** (a low-resource budget, where a
# better starting point should show most), with a control run that isolates what the
# movie text did. What the paper's reason predicts for it: the domain is close to the
# model's pre-training text, and the adaptation is far shorter than the paper's, so a
# gain in accuracy, if any, should be small; the language-model side (in-domain
# perplexity against the control, and forgetting) is what this scale can show. The
# cell below computes the scale gap. The setting was explored on seeds 100-102
# (`labkit run 05 --seed 100`, which shifts `SEEDS`): there the perplexity lesson held,
# while in accuracy both adapted models' means were below plain fine-tuning's and neither
# difference was resolved (each 95% interval included 0). The accuracy comparison
# below is therefore reported with its 95% interval and read "not resolved at this
# size" when the interval includes 0; `full` (2,000 adaptation steps, more budgets and
# seeds) goes further towards the paper's scale. If notebook 03 has run, the cell after
# it also fine-tunes `course-bert` once with the same recipe, labels and seed as plain
# `tiny-mlm`'s first run in section 6, so you can compare the starting points yourself.

# %%
PAPER = {"parameters": 125e6, "DAPT tokens": 12_500 * 2_048 * 512, "TAPT epochs": 100,
         "IMDB gain, DAPT (points)": 0.4, "IMDB gain, TAPT (points)": 0.5}
here_tokens = ADAPT_STEPS * ADAPT_BATCH * BLOCK
print(f"adaptation here: {ADAPT_STEPS} steps x {ADAPT_BATCH} blocks x {BLOCK} tokens = "
      f"{here_tokens / 1e6:.2f}M tokens; the paper's DAPT: 12,500 steps x 2,048 sequences "
      f"x 512 tokens = {PAPER['DAPT tokens'] / 1e9:.1f}B tokens "
      f"({PAPER['DAPT tokens'] / here_tokens:,.0f}x more)")
print(f"model: tiny-mlm, 4.4M parameters; the paper's RoBERTa-base "
      f"{PAPER['parameters'] / 1e6:.0f}M ({PAPER['parameters'] / 4.4e6:.0f}x more)")
print(f"the paper's gains on IMDB movie reviews: DAPT +{PAPER['IMDB gain, DAPT (points)']}, "
      f"TAPT +{PAPER['IMDB gain, TAPT (points)']} points (Table 3); TAPT read the task's text "
      f"{PAPER['TAPT epochs']} times (the epochs reached here are printed in section 4)")

# %%
BASE = "tiny-mlm"
if models.local_path("course-bert") is None:
    print("course-bert not found (notebook 03 has not run here): adapting tiny-mlm, "
          "nothing to compare")
else:
    comparison = {}
    for name in ("course-bert",):      # plain tiny-mlm's run on this seed is in section 6
        m, ctok = finetune.build_classifier(name, seed=SEED, profile=PROFILE)
        ctask = protocol.target_task(ctok, PROFILE, max_length=64)
        few = data.sample(ctask["train"], N_BAR, seed=SEED)
        res = finetune.fit_classifier(
            m, few, validation=ctask["validation"], test=ctask["test"], seed=SEED,
            keep_model=False, desc=f"{name}, plain",
            device=dev, lr=finetune.learning_rate(m, "full_ft"), **finetune.recipe(PROFILE))
        comparison[name] = {"parameters": f"{res.total:,}", "vocabulary": f"{len(ctok):,}",
                            f"test accuracy, {len(few)} labels, seed {SEED}": f"{res.accuracy:.1%}"}
    display(pd.DataFrame(comparison).T)

# %% [markdown]
# ## 3 · Before adaptation: perplexity, computed right
#
# **Perplexity** is exp(mean cross-entropy) at the masked positions: roughly, how many
# tokens the model hesitates between. `adapt.perplexity` packs the texts into blocks of
# 64 tokens, masks 15% of the tokens with a fixed seed (so the same texts get the same
# masks before and after adaptation) and runs the output layer only at the masks. A
# model that knew nothing would sit near the vocabulary size, 30,522.
#
# The mean is over **tokens**, and the held-out text comes in batches that hold
# different numbers of masked tokens (15% of a block is a random count, and the last
# batch is short). So each batch reports two numbers, the summed loss and how many
# tokens it covers, and only at the end are they put together. Two functions, one per
# step: you write both, and `adapt.perplexity` calls yours.
#
# ### Your turn 05.1 · The summed loss at the masked tokens of one batch
#
# `logits` is (n, vocab): the model's scores at n positions; `labels` is (n,): the true
# token id at each, or -100 where nothing is scored (a position that was not masked, or
# padding). Return a pair: the **sum** over the scored positions of minus the log
# probability of the true token (nats), and the number of scored positions.

# %%
def token_nll(logits, labels):
    """(summed negative log-likelihood over positions with labels != -100, their count)."""
    ### BEGIN SOLUTION
    keep = labels != -100
    nll = torch.nn.functional.cross_entropy(logits[keep].float(), labels[keep], reduction="sum")
    return nll, int(keep.sum())
    ### END SOLUTION


token_nll = checks.run("05.1", token_nll)

# %% [markdown]
# ### Your turn 05.2 · The perplexity of a whole text from its batches
#
# `nll_sums` and `counts` are lists with one entry per batch (what `token_nll` returned).
# Return the perplexity of the whole text: every scored token counts once, whatever
# batch it fell in. (Two tempting shortcuts are wrong: the mean of the batches'
# perplexities, and the plain mean of the batches' mean losses.)

# %%
def corpus_perplexity(nll_sums, counts):
    """exp of the token-weighted mean negative log-likelihood over all batches."""
    ### BEGIN SOLUTION
    return float(np.exp(sum(float(x) for x in nll_sums) / sum(int(c) for c in counts)))
    ### END SOLUTION


corpus_perplexity = checks.run("05.2", corpus_perplexity)

# %%
lm, tok = models.load(BASE, task="masked-lm", profile=PROFILE)
lm.to(dev)
print(f"{BASE}: {models.count_parameters(lm):,} parameters, vocabulary {len(tok):,}")


def perplexities(model):
    """Held-out in-domain and general perplexity of a masked LM, on fixed masks, with
    your two functions."""
    return {name: adapt.perplexity(model, tok, texts, block_size=BLOCK, max_blocks=n,
                                   device=dev, nll_fn=token_nll,
                                   combine=corpus_perplexity)["perplexity"]
            for name, texts, n in (("in-domain (movies)", held_out_texts, N_DOMAIN_BLOCKS),
                                   ("general (speeches)", general_texts, N_GENERAL_BLOCKS))}


ppl = {"before": perplexities(lm)}
print({k: round(v) for k, v in ppl["before"].items()})
run.log("domain_ppl_before", ppl["before"]["in-domain (movies)"], seed=SEED)
run.log("general_ppl_before", ppl["before"]["general (speeches)"], seed=SEED)

# %% [markdown]
# And what it puts in a blank (top 3 guesses), on movie and speech probes:

# %%
PROBES = ["This movie is a complete [MASK] of time.",
          "The [MASK] is funny, moving and beautifully acted.",
          "One of the best [MASK] of the year.",
          "The plot is thin and the [MASK] is wooden.",
          "After his wife is murdered, a detective [MASK] to find the killer.",
          "I ask the Congress to [MASK] this legislation."]


def top3(model):
    return [", ".join(t for t, _ in p[:3]) for p in mlm.fill_mask(model, tok, PROBES, top_k=3)]


fills = {"before": top3(lm)}
display(pd.DataFrame(fills, index=PROBES))

# %% [markdown]
# ## 4 · Domain-adaptive and task-adaptive pre-training
#
# `adapt.continue_pretraining` is notebook 03's pre-training, started from trained
# weights: the texts packed into blocks (`mlm.tokenize_blocks`), BERT's 80/10/10 masking
# (`mlm.MLMCollator`), and `labkit.train.fit` with `loss_fn=mlm.mlm_loss`. Two things
# change from pre-training from scratch: the **learning rate** is smaller (5e-4, half
# notebook 03's 1e-3: the weights are already good, and too large a step would wash out
# what they know; larger models use smaller rates still), and the run is **short**:
# about an epoch of a small corpus.
#
# Each variant starts from a fresh copy of `tiny-mlm` and gets the same number of
# steps, the same batch and the same seed; only the text differs. A third run is a
# **control**: the same steps on *general* text (State of the Union speeches, train
# split). `tiny-mlm`'s head was tuned for search, so any masked-LM training may repair
# it and lower every perplexity; the control shows how much of the drop on movie text
# the movie text itself is responsible for. It is not fine-tuned afterwards (time).

# %%
control_texts = list(first(sotu["train"], N_TEXTS)["text"])
adapted = {}
histories = {}
for variant, texts in [("domain-adaptive", domain_texts), ("task-adaptive", task_texts),
                       ("control: speeches", control_texts)]:
    model, _ = models.load(BASE, task="masked-lm", profile=PROFILE)
    blocks = mlm.tokenize_blocks(tok, texts, BLOCK)          # tokenised once
    histories[variant] = adapt.continue_pretraining(
        model, tok, blocks=blocks, steps=ADAPT_STEPS, batch_size=ADAPT_BATCH,
        block_size=BLOCK, lr=ADAPT_LR, seed=SEED, device=dev, desc=variant)
    n_blocks = len(blocks)
    print(f"{variant}: {n_blocks:,} blocks of text, {ADAPT_STEPS * ADAPT_BATCH / n_blocks:.2f} "
          f"epochs, {histories[variant].seconds:.0f}s")
    ppl[variant] = perplexities(model)
    fills[variant] = top3(model)
    if variant != "control: speeches":
        adapted[variant] = model
    del model

fig, ax = plt.subplots(figsize=(6.5, 3.2))
for variant, h in histories.items():
    steps = [r["step"] for r in h.train]
    losses = pd.Series([r["loss"] for r in h.train]).rolling(10, min_periods=1).mean()
    ax.plot(steps, losses, label=variant)
ax.set_xlabel("optimizer step")
ax.set_ylabel("masked-LM training loss (10-step mean)")
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %% [markdown]
# ## 5 · What adaptation did to the language model
#
# Perplexity on the held-out movie text and on the held-out speeches, before and after:

# %%
table = pd.DataFrame(ppl).T
table["in-domain / before"] = table["in-domain (movies)"] / ppl["before"]["in-domain (movies)"]
table["general / before"] = table["general (speeches)"] / ppl["before"]["general (speeches)"]
display(table.style.format({"in-domain (movies)": "{:,.0f}", "general (speeches)": "{:,.0f}",
                            "in-domain / before": "{:.2f}x", "general / before": "{:.2f}x"}))
after = ppl["domain-adaptive"]
run.log("domain_ppl_after", after["in-domain (movies)"], seed=SEED)
run.log("general_ppl_after", after["general (speeches)"], seed=SEED)
run.log("domain_ppl_after_task_adaptive", ppl["task-adaptive"]["in-domain (movies)"], seed=SEED)
run.log("general_ppl_after_task_adaptive", ppl["task-adaptive"]["general (speeches)"], seed=SEED)
control = ppl["control: speeches"]
run.log("domain_ppl_after_speech_control", control["in-domain (movies)"], seed=SEED)
run.log("general_ppl_after_speech_control", control["general (speeches)"], seed=SEED)

fig, ax = plt.subplots(figsize=(6.5, 3.2))
x = np.arange(len(table))
for i, col in enumerate(["in-domain (movies)", "general (speeches)"]):
    ax.bar(x + (i - 0.5) * 0.38, table[col], width=0.38, label=col)
ax.set_xticks(x, table.index)
ax.set_yscale("log")
ax.set_ylabel("masked-LM perplexity (log scale)")
ax.grid(alpha=0.3, axis="y")
ax.legend()
plt.show()

# %%
shrink = {v: ppl["before"]["in-domain (movies)"] / ppl[v]["in-domain (movies)"]
          for v in ("domain-adaptive", "task-adaptive", "control: speeches")}
display(Markdown(
    f"**Read the table in two steps.** Every run lowers every perplexity, the control on "
    f"speeches included (in-domain perplexity divided by "
    f"{min(shrink.values()):.0f} to {max(shrink.values()):.0f}): `tiny-mlm`'s search-tuned "
    f"head is repaired by any masked-LM training, so the ratio after / before mostly "
    f"measures that repair, not the domain. The fair comparison is between rows that had "
    f"the same {ADAPT_STEPS} steps. On movie text, domain-adaptive training reaches "
    f"{ppl['domain-adaptive']['in-domain (movies)']:,.0f} against "
    f"{control['in-domain (movies)']:,.0f} for the control "
    f"({ppl['domain-adaptive']['in-domain (movies)'] / control['in-domain (movies)']:.2f}x): "
    f"that part is what reading movie text did. On speeches it is the other way round "
    f"({ppl['domain-adaptive']['general (speeches)']:,.0f} against "
    f"{control['general (speeches)']:,.0f}): each model is best on the text it read. That "
    f"is adaptation, and its price, **forgetting**, measured against the control because "
    f"the model before adaptation was poor at everything. The task-adaptive model read "
    f"only the task's own sentences and reaches "
    f"{ppl['task-adaptive']['in-domain (movies)']:,.0f} on movie text."))

# %% [markdown]
# The probes again:

# %%
display(pd.DataFrame(fills, index=PROBES))

# %% [markdown]
# ## 6 · Fine-tuning on small label budgets
#
# Now each model is fine-tuned with notebook 04's recipe and learning rate
# (`finetune.recipe`, `finetune.learning_rate(model, "full_ft")`: batches of 8, three
# passes but at least 80 steps, the best of 4 validation checks, 3e-4 for a model this
# small), and the only difference between the variants must be the adaptation. So:
#
# * the three classifiers come from **one** loaded `tiny-mlm` classifier:
#   `adapt.transplant_encoder` copies the adapted embeddings and layers into a copy of
#   it, and the pooler (`tiny-mlm` ships none, so it is newly initialised) is the same
#   in all three;
# * `finetune.build_classifier(source, seed=s)` gives each the same new head for seed `s`;
# * `finetune.learning_curve` draws the label budget with `data.sample(pool, n, seed=s)`:
#   for a given seed, every variant trains on the same sentences, keeps the weights that
#   did best on the same validation rows, and is scored on the protocol's fixed test rows.

# %%
task = protocol.target_task(tok, PROFILE, max_length=64)
pool, validation, test = task["train"], task["validation"], task["test"]
majority = protocol.log_baseline(run)
print(f"label pool {len(pool):,} sentences; validation {len(validation):,}; test {len(test):,} "
      f"({protocol.test_set(PROFILE)}, majority class {majority:.1%})")

device.seed_everything(SEED)
classifier, _ = models.load(BASE, task="sequence-classification", profile=PROFILE, num_labels=2)
sources = {"plain": classifier,
           **{v: adapt.transplant_encoder(m, classifier) for v, m in adapted.items()}}
METRIC = {"plain": "acc_full_ft", "domain-adaptive": "acc_adaptive",
          "task-adaptive": "acc_task_adaptive"}
FT = dict(finetune.recipe(PROFILE), lr=finetune.learning_rate(classifier, "full_ft"))
print("recipe:", FT)


def log_row(row):
    row["accuracy"] = protocol.log_accuracy(
        run, f"{METRIC[row['strategy']]}@{row['n']}", row["correct"], budget=row["n"],
        model=BASE, seed=row["seed"], trainable=row["trainable"], wall_s=row["seconds"])


rows = []
for variant, source in sources.items():
    rows += finetune.learning_curve(
        lambda s, src=source: finetune.build_classifier(src, seed=s)[0], pool, BUDGETS, SEEDS,
        strategy=variant, validation=validation, test=test, on_result=log_row, device=dev,
        **FT)

# %% [markdown]
# Test accuracy per variant, label budget and seed, then the mean over seeds:

# %%
results = pd.DataFrame(rows)
display(results.pivot_table(index=["n", "seed"], columns="strategy", values="accuracy")
        [list(sources)].style.format("{:.1%}"))
summary = pd.DataFrame(finetune.summarize(rows))
mean = summary.pivot(index="n", columns="strategy", values="mean")[list(sources)]
std = summary.pivot(index="n", columns="strategy", values="std")[list(sources)]
display((mean.map("{:.1%}".format) + " ± " + std.map("{:.1%}".format)).rename_axis(
    f"labels (mean ± std over {len(SEEDS)} seeds)"))
print(f"always answering the majority class scores {majority:.1%} on {protocol.test_set(PROFILE)}")
ax = finetune.plot_curve(rows, title="tiny-mlm on movie reviews: plain vs adaptive")
ax.axhline(majority, color="grey", ls=":", label="majority class")
ax.legend()
plt.show()

# %%
ppl_vs_control = ppl["domain-adaptive"]["in-domain (movies)"] / control["in-domain (movies)"]
task_vs_control = ppl["task-adaptive"]["in-domain (movies)"] / control["in-domain (movies)"]
y_test = test["label"]


def at_bar(variant):
    return [r for r in rows if r["strategy"] == variant and r["n"] == N_BAR]


bal = {v: float(np.mean([protocol.balanced_accuracy(r["correct"], y_test) for r in at_bar(v)]))
       for v in sources}
TEST_SET = protocol.test_set(PROFILE)
gain = compare.versus_runs(at_bar("domain-adaptive"), at_bar("plain"), TEST_SET)
task_gain = compare.versus_runs(at_bar("task-adaptive"), at_bar("plain"), TEST_SET)
display(Markdown(
    f"**What the runs show.** Against the speech-trained control, domain-adaptive "
    f"pre-training brought the in-domain perplexity to {ppl_vs_control:.2f}x and task-adaptive "
    f"to {task_vs_control:.2f}x. At {N_BAR} labels (seeds {SEEDS}) plain fine-tuning scores "
    f"{mean.loc[N_BAR, 'plain']:.1%} accuracy ({bal['plain']:.1%} balanced), domain-adaptive "
    f"{mean.loc[N_BAR, 'domain-adaptive']:.1%} ({bal['domain-adaptive']:.1%}), task-adaptive "
    f"{mean.loc[N_BAR, 'task-adaptive']:.1%} ({bal['task-adaptive']:.1%}), against "
    f"{majority:.1%} for the majority class (50% balanced). "
    f"{gain.sentence('Domain-adaptive', 'plain fine-tuning')}; "
    f"{task_gain.sentence('task-adaptive', 'plain fine-tuning')}."))

# %% [markdown]
# Where the interval includes 0, why adaptation can teach the language model the domain
# and still not move the sentiment classifier by a resolvable amount:
#
# * Gururangan et al. (2020, Table 3) found the gains of domain-adaptive pre-training
#   largest where the domain is far from the model's own pre-training text (computer-
#   science papers: more than ten points on ACL-ARC) and smallest for news, the domain
#   closest to it (none on AGNews). Reviews did gain, modestly (under half a point on
#   IMDB, under two on Amazon helpfulness). Movie reviews are close to the general text
#   `tiny-mlm` was pre-trained on, so a large gain was never likely.
# * A few hundred steps of masked-LM training mostly re-fit the output layer and the
#   embeddings of movie words; a sentiment classifier needs the encoder to separate
#   *good* from *bad* reviews, which predicting masked words for so few steps teaches
#   little.
# * At 128 labels `tiny-mlm` itself barely leaves the majority class: a difference of a
#   point would be invisible under this noise.
#
# The `full` profile adapts for 2,000 steps and fine-tunes with 5 seeds; on a GPU, try
# a larger model there (see "What to try next").

# %% [markdown]
# ## What the best model gets wrong
#
# This notebook's results on the target task, balanced accuracy first (the mean of the
# accuracy on negative and on positive reviews: chance and any constant answer score
# 50%, whatever the share of positives), then the model with the best mean balanced
# accuracy, on the seed nearest that mean (a typical run, not the luckiest): its
# confusion matrix and a few test sentences it gets wrong (`protocol.error_analysis`).

# %%
_ = protocol.results(run)
errors = protocol.error_analysis(run)

# %% [markdown]
# **Think.** Are these mistakes about movie vocabulary the encoder had rarely seen (what
# adaptive pre-training on reviews should fix) or about how the sentiment is phrased (what
# only labels teach)? What does your answer predict for domain-adaptive pre-training on
# this task?

# %% [markdown]
# ## The lesson, checked
#
# The claim this notebook's prose rests on: reading movie text, not just any masked-LM
# training, lowers the in-domain perplexity. Asserted: domain-adaptive and task-adaptive
# pre-training each bring the held-out in-domain perplexity to at most 0.8x that of the
# speech-trained control, which had the same steps, batch and seed. The accuracy
# comparison is reported with its 95% interval above; a direction is asserted only if
# the interval excludes 0, and otherwise the report must say "not resolved at this size".

# %%
print(f"in-domain perplexity vs the speech control: domain-adaptive {ppl_vs_control:.3f}x, "
      f"task-adaptive {task_vs_control:.3f}x (bar: at most 0.8x)")
print(gain.sentence(f"{N_BAR} labels: domain-adaptive", "plain"))
print(task_gain.sentence(f"{N_BAR} labels: task-adaptive", "plain"))
assert set(results["strategy"]) == set(sources) and len(results) == 3 * len(BUDGETS) * len(SEEDS)
if PROFILE != "smoke":
    assert ppl_vs_control <= 0.8 and task_vs_control <= 0.8, (ppl_vs_control, task_vs_control)
    for d in (gain, task_gain):
        assert d.is_resolved or "not resolved at this size" in d.sentence(), d
print(f"lesson checked ({PROFILE}); notebook wall time {time.perf_counter() - started:.0f}s")

# %% [markdown]
# ## Key takeaways
#
# * Perplexity is exp of the mean loss over **tokens**: sum the losses and count the
#   tokens batch by batch, divide once at the end.
# * Adaptive pre-training is pre-training continued on domain (DAPT) or task (TAPT) text
#   with a smaller learning rate; what it taught shows against a control that had the
#   same training on other text.
# * Each model gets best at the text it read and worse at the rest (forgetting).
# * A better language model of the domain is not automatically a better classifier:
#   read the accuracy against the seed spread and the majority line.
#
# ## Check your understanding

# %%
q = quiz.ask("05")

# %% [markdown]
# ## What to try next
#
# * **Longer adaptation.** Raise `ADAPT_STEPS` (`full` uses 2,000): the in-domain
#   perplexity keeps falling; does the accuracy gain keep growing, or level off?
# * **Does the control classify as well?** The speech-trained control is not
#   fine-tuned here (time): transplant it too and add it to `sources`. If it matches the
#   adapted models, what fine-tuning gained came from the repaired head, not the domain.
# * **Forgetting on purpose.** Adapt with a larger learning rate (1e-3) and watch the
#   speech perplexity against the movie perplexity.
# * **More labels.** Add 512 and 2,000 to `BUDGETS`: Gururangan et al. found the gains of
#   adaptation largest when labels are few.
# * **Another domain.** Try the tweets (`tweets_sentiment`): their text is further from
#   the books and web pages most encoders were pre-trained on than movie reviews are.
#
# ## References
#
# * Gururangan, Marasović, Swayamdipta, Lo, Beltagy, Downey & Smith (2020). Don't Stop
#   Pretraining: Adapt Language Models to Domains and Tasks. ACL. arXiv:2004.10964.
# * Howard & Ruder (2018). Universal Language Model Fine-tuning for Text Classification
#   (ULMFiT: language-model fine-tuning on the target data before the classifier).
#   ACL. arXiv:1801.06146.
# * Devlin, Chang, Lee & Toutanova (2019). BERT: Pre-training of Deep Bidirectional
#   Transformers for Language Understanding. NAACL. arXiv:1810.04805.
# * Turc, Chang, Lee & Toutanova (2019). Well-Read Students Learn Better: On the
#   Importance of Pre-training Compact Models. arXiv:1908.08962 (the small BERTs).

# %%
run.finish()   # close this run in the ledger: only a notebook that ran to its end counts
