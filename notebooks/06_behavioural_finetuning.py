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
# # 06 · Behavioural fine-tuning: learn a related task first
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/labkit-course/labkit/blob/main/notebooks/06_behavioural_finetuning.ipynb)
#
# Notebook 04 put a new head on a pre-trained encoder and fine-tuned it on 128 movie-review
# labels. Those labels are scarce. Labels for a *related* task are often plentiful:
# tweets marked positive or negative, news articles sorted by topic. **Behavioural
# fine-tuning** spends them first: fine-tune on the related labelled task, then on the
# small target task (taxonomy **1B + 3A**: supervised pre-training on a similar task).
#
# It is not free. A related task can aim the encoder at the right features, or at the
# wrong ones. So this notebook trains two intermediate models and compares both with
# plain fine-tuning on the same target splits and seeds:
#
# * **tweets** (`tweets_sentiment`): the same task, sentiment, in another domain, with
#   the same labels (0 negative, 1 positive). The sentiment head can be *kept*.
# * **BBC news** (`bbc_news`): a different task, five news topics, in another domain.
#   Its head is useless for sentiment and is replaced by a new one.

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
# ## 0 · Set-up, and what each profile runs
#
# The target task and its recipe are the ones of notebook 04 (`finetune.target_task`,
# `finetune.recipe`, `finetune.learning_rate`): the same model (`minilm` in `quick`,
# `bert-base` in `full`, MiniLM when the hub is out of reach), the same 128-label budgets
# drawn with seeds 0-2, the same fixed validation (250) and test (1,000) subsets in
# `quick`. Plain fine-tuning is recomputed here with the same seeds, so the comparison
# stands on its own.
#
# Each intermediate task gets the same small budget, 640 labelled examples (balanced
# across its classes) and one pass, 80 steps at batch 8: as much training as one target
# run. Its model is trained once (seed `SEED`) and then serves as the starting point of
# every target run, like any pre-trained checkpoint. News articles are long; at 64 tokens
# the model sees the headline and the first sentence, which is enough to tell the topic.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import transformers

from labkit import data, device, finetune, ledger
from labkit.metrics import mean_std
from labkit.profile import check, choose
from labkit.train import batches, evaluate

check(PROFILE)
transformers.logging.set_verbosity_error()
started = time.perf_counter()
device.seed_everything(SEED)
dev = device.pick()
run = ledger.Run("06_behavioural_finetuning", profile=PROFILE, seed=SEED, device=dev)

MODEL = choose(PROFILE, smoke="tiny-mlm", quick="minilm", full="bert-base")
SEEDS = choose(PROFILE, smoke=[0], quick=[0, 1, 2], full=[0, 1, 2])
BUDGETS = choose(PROFILE, smoke=[16], quick=[128], full=[32, 128, 512, 2_000])
N_INTER = choose(PROFILE, smoke=40, quick=640, full=1_200)     # intermediate labels
INTER_EPOCHS = choose(PROFILE, smoke=1, quick=1, full=2)
N_INTER_EVAL = choose(PROFILE, smoke=32, quick=200, full=None)  # None: the whole split
MAX_LENGTH = 64
RECIPE = finetune.recipe(PROFILE)
print(f"profile {PROFILE}: {MODEL}, target budgets {BUDGETS}, seeds {SEEDS}, "
      f"{N_INTER} intermediate labels; recipe {RECIPE}; device {dev.type}")

# %% [markdown]
# ## 1 · Three datasets
#
# The target (movie reviews) and the two intermediate tasks. Note the tweets: short,
# informal, about airlines and products, and only 27% positive; the balanced sample
# below evens that out so the intermediate model does not learn "mostly negative".

# %%
reviews = data.load("movie_reviews", profile=PROFILE)
tweets = data.load("tweets_sentiment", profile=PROFILE)
news = data.load("bbc_news", profile=PROFILE)
for name, ds in (("movie_reviews", reviews), ("tweets_sentiment", tweets), ("bbc_news", news)):
    names = data.spec(name).label_names
    counts = np.bincount(ds["train"]["label"], minlength=len(names))
    print(f"{name:17s} train {len(ds['train']):>6,}  " +
          ", ".join(f"{n} {c / counts.sum():.0%}" for n, c in zip(names, counts)))
    for row in ds["train"].select(range(2)):
        text = " ".join(row["text"].split())
        print(f"    {names[row['label']]:13s} {text[:90]}")

# %% [markdown]
# ## 2 · Stage 1: train on the related tasks
#
# The same helper as in notebook 04: `build_classifier` puts a new head on the
# pre-trained encoder (two outputs for tweets, five for news) and `fit_classifier`
# trains every weight through `labkit.train.fit`, keeping the weights that were best on
# the task's own validation set.

# %%
base, tokenizer = finetune.build_classifier(MODEL, num_labels=2, seed=SEED, profile=PROFILE)
target = finetune.target_task(tokenizer, PROFILE, max_length=MAX_LENGTH)
valid, test = target["validation"], target["test"]
lr = finetune.learning_rate(base, "full_ft")


def intermediate(ds, num_labels, name):
    """Fine-tune a copy of the pre-trained encoder on `n_inter` labels of a related task."""
    splits = finetune.tokenize(ds, tokenizer, max_length=MAX_LENGTH)
    train = data.sample(splits["train"], N_INTER, seed=SEED)
    val, tst = (splits[k].select(range(N_INTER_EVAL or len(splits[k])))
                for k in ("validation", "test"))
    model, _ = finetune.build_classifier(base, num_labels=num_labels, seed=SEED)
    res = finetune.fit_classifier(model, train, validation=val, test=tst, lr=lr,
                                  epochs=INTER_EPOCHS, batch_size=RECIPE["batch_size"],
                                  evals=2, seed=SEED, desc=f"stage 1: {name}")
    print(f"{name}: {len(train)} labels, {res.history.steps} steps, {res.seconds:.0f} s, "
          f"accuracy on its own test set {res.accuracy:.3f} ({len(tst)} examples)")
    return res.model


tweets_model = intermediate(tweets, 2, "tweets")
news_model = intermediate(news, 5, "bbc_news")

# %% [markdown]
# ## 3 · Where each starting point stands before any target training
#
# Four ways to begin the target task, scored on the movie-review validation set at
# step 0:
#
# * **plain**: the pre-trained encoder with a new random head (notebook 04's full
#   fine-tuning);
# * **tweets, head kept**: the tweets model as it is, since its outputs already mean
#   negative/positive (this is `behavioural`);
# * **tweets, new head**: the tweets-trained encoder with a new random head: how much of
#   the help lives in the encoder, how much in the head;
# * **news, new head**: the news-trained encoder; its five-topic head has to go
#   (`replace_head`), so a random two-way head comes in (`behavioural_unrelated`).

# %%
STARTS = {  # strategy -> how to build a fresh model for a seed
    "full_ft": lambda s: finetune.build_classifier(base, seed=s)[0],
    "behavioural": lambda s: finetune.build_classifier(tweets_model, new_head=False, seed=s)[0],
    "behavioural_newhead": lambda s: finetune.build_classifier(tweets_model, seed=s)[0],
    "behavioural_unrelated": lambda s: finetune.build_classifier(news_model, num_labels=2,
                                                                 seed=s)[0],
}
LABELS = {"full_ft": "plain (new head)", "behavioural": "tweets, head kept",
          "behavioural_newhead": "tweets, new head", "behavioural_unrelated": "news, new head"}
pad = finetune.collate(tokenizer.pad_token_id)
step0 = {}
for name, make in STARTS.items():
    step0[name] = evaluate(make(SEED).to(dev), valid, collate_fn=pad, batch_size=128)
    print(f"{LABELS[name]:18s} step 0: validation accuracy {step0[name]['accuracy']:.3f}, "
          f"loss {step0[name]['loss']:.3f}")
print(f"{'majority class':18s}         {max(np.mean(valid['label']), 1 - np.mean(valid['label'])):.3f}")

# %% [markdown]
# The tweets model, never shown a movie review, already sorts many of them correctly:
# sentiment words ("great", "awful", "disappointing") mean the same in both domains.
# The plain start and the news start sit near chance (or at the majority-class rate, if
# their random head happens to call everything one class).
#
# Look at "tweets, new head", though: a *random* head on the tweets-trained encoder can
# score as well as the trained one. Luck? Partly. Two measurements: the same new head
# drawn with different seeds, and the share of the variance of the sentence features
# (the pooled vectors the head reads, on the validation sentences) that lies along
# their main direction.

# %%
def main_direction_share(model) -> float:
    """Share of the pooled features' variance along their first principal direction."""
    model.eval().to(dev)
    feats = []
    with torch.no_grad():
        for batch in batches(valid, 128, collate_fn=pad):
            inputs = {k: v.to(dev) for k, v in batch.items() if k != "labels"}
            feats.append(model.base_model(**inputs).pooler_output.float().cpu())
    x = torch.cat(feats)
    variance = torch.linalg.svdvals(x - x.mean(0)) ** 2
    return float(variance[0] / variance.sum())


for s in SEEDS:
    acc0 = evaluate(STARTS["behavioural_newhead"](s).to(dev), valid, collate_fn=pad,
                    batch_size=128)["accuracy"]
    print(f"tweets encoder, new head drawn with seed {s}: step-0 validation accuracy {acc0:.3f}")
print()
for name, model in (("plain", base), ("tweets", tweets_model), ("news", news_model)):
    print(f"{name:7s} encoder: {main_direction_share(model):.0%} of the feature variance "
          "along one direction")

# %% [markdown]
# Training on tweets concentrated the sentence features: a large share of their
# variance now lies along one direction (for the plain encoder, a few percent), and that
# direction is sentiment. Whatever a random head reads is dominated by it, so its
# output already tracks sentiment, up to a sign and an offset that are a coin toss:
# some seeds' heads read it the right way round, some the wrong way, some are pushed to
# one class by the offset. Sign and offset are what a few gradient steps set; the
# direction, the hard part, is already there. **The randomly initialised head starts
# from a useful place** because the encoder under it already separates positive from
# negative.
#
# ## 4 · Stage 2: the target task, 128 labels, three seeds
#
# Every start is fine-tuned with the same recipe, the same label budgets and the same
# seeds. The "tweets, new head" variant runs on the first seed only in `quick` (all seeds
# in `full`): it explains, it is not one of the compared strategies.

# %%
seeds_of = {"behavioural_newhead": choose(PROFILE, smoke=SEEDS, quick=SEEDS[:1], full=SEEDS)}
rows = []
for name, make in STARTS.items():
    def log(row, name=name):
        run.log(f"acc_{name}@{row['n']}", row["accuracy"], seed=row["seed"],
                model=MODEL, n=row["n"], intermediate_labels=N_INTER)

    rows += finetune.learning_curve(make, target["train"], BUDGETS, seeds_of.get(name, SEEDS),
                                    strategy=name, validation=valid, test=test,
                                    on_result=log, keep_history=True, lr=lr, **RECIPE)

# %%
print(f"{'start':22s} {'labels':>6s} {'test accuracy (per seed)':>26s} {'mean':>6s} {'std':>6s}")
for s in finetune.summarize(rows):
    per_seed = " ".join(f"{r['accuracy']:.3f}" for r in rows
                        if r["strategy"] == s["strategy"] and r["n"] == s["n"])
    print(f"{LABELS[s['strategy']]:22s} {s['n']:>6,} {per_seed:>26s} {s['mean']:6.3f} "
          f"{s['std']:6.3f}")
majority = float(np.mean(test["label"]))
print(f"majority class on this test set: {majority:.3f}")

# %%
n0 = BUDGETS[0] if PROFILE == "smoke" else min(n for n in BUDGETS if n >= 128)
summary = {s["strategy"]: s for s in finetune.summarize(rows) if s["n"] == n0}
names = list(summary)
fig, ax = plt.subplots(figsize=(7, 3.4))
colors = ["tab:blue", "tab:green", "tab:olive", "tab:red"]
ax.bar([LABELS[n] for n in names], [summary[n]["mean"] for n in names],
       yerr=[summary[n]["std"] for n in names], capsize=4, color=colors[:len(names)])
for i, n in enumerate(names):
    dots = [r["accuracy"] for r in rows if r["strategy"] == n and r["n"] == n0]
    ax.scatter([i] * len(dots), dots, color="black", s=12, zorder=3)
ax.axhline(majority, color="black", ls=":", lw=1, label="majority class")
ax.set_ylim(0.4, 1.0)
ax.set_ylabel("test accuracy")
ax.set_title(f"{MODEL}, {n0} movie-review labels after each start")
ax.legend(loc="upper left")
plt.xticks(fontsize=8)
plt.show()

# %% [markdown]
# ## 5 · Why: the first steps of target training
#
# The runs of the first seed, side by side. Left: the training loss, step by step (a
# 5-step running mean). Right: validation accuracy, from the step-0 scores above to the
# four evaluations during training. Both tweets starts drive the training loss down
# first: their features already separate the two classes, so the gradient only has to
# align the head (the "new head" run catches up with the kept head within a few
# dozen steps). The plain start first has to find a sentiment direction in features
# that were not made for it. The news start is the slowest of all: its features were
# pushed towards topics, and the target training has to undo that before it can learn.

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
for (name, label), color in zip(LABELS.items(), colors):
    r = next(r for r in rows if r["strategy"] == name and r["n"] == n0 and r["seed"] == SEEDS[0])
    h = r["history"]
    steps = [t["step"] for t in h.train]
    losses = np.array([t["loss"] for t in h.train])
    k = min(5, len(losses))
    ax1.plot(steps[k - 1:], np.convolve(losses, np.ones(k) / k, mode="valid"),
             color=color, label=label)
    ax2.plot([0] + [e["step"] for e in h.evals],
             [step0[name]["accuracy"]] + [e["accuracy"] for e in h.evals],
             "o-", color=color, label=label)
ax1.set_xlabel("target optimizer step")
ax1.set_ylabel("training loss (5-step mean)")
ax1.grid(alpha=0.3)
ax1.legend(fontsize=8)
ax2.axhline(max(np.mean(valid["label"]), 1 - np.mean(valid["label"])), color="black", ls=":",
            lw=1)
ax2.set_xlabel("target optimizer step")
ax2.set_ylabel("validation accuracy")
ax2.grid(alpha=0.3)
fig.suptitle(f"first steps on {n0} movie-review labels (seed {SEEDS[0]})")
plt.tight_layout()
plt.show()

# %% [markdown]
# When does it hurt? The news model learned to tell business from sport from politics
# from an article's first sentence: topic words, names, places. Sentiment was never
# rewarded, and 80 steps of pressure towards topics pushed the encoder's sentiment
# features aside. Compare its mean accuracy with plain fine-tuning in the table above:
# when it is lower, that is **negative transfer**, an intermediate task that costs more
# than it gives. A related task has to be related in what it asks the model to notice,
# not only in being text.
#
# ## Exercise
#
# Keeping the tweets head worked because both datasets number their labels the same way
# (0 negative, 1 positive). Suppose the tweets had been labelled the other way round.
# Make a copy of `tweets_model` whose head gives the two outputs in swapped order (so it
# would serve a dataset with 0 = positive), without retraining anything, then check.

# %%
def flip_head(model):
    """Your answer: return a copy of `model` whose two outputs are swapped."""
    flipped = finetune.build_classifier(model, new_head=False)[0]   # a copy, head kept
    # ... swap the two outputs of finetune.head(flipped) here ...
    return flipped


my_flipped = None   # my_flipped = flip_head(tweets_model)
if my_flipped is not None:
    from labkit import checks
    checks.flipped_head(tweets_model, my_flipped)

# %% [markdown]
# ## The lesson, checked
#
# Mean over seeds 0-2 at the smallest budget of at least 128 labels: behavioural
# fine-tuning on tweets should reach at least plain fine-tuning. The news detour is
# reported either way; the cell says plainly whether it helped or hurt.

# %%
acc = {name: mean_std([r["accuracy"] for r in rows if r["strategy"] == name
                       and r["n"] == n0 and r["seed"] in (0, 1, 2)])[0]
       for name in ("full_ft", "behavioural", "behavioural_unrelated")}
print(f"{MODEL} at {n0} labels: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()))
gain = acc["behavioural"] - acc["full_ft"]
unrelated = acc["behavioural_unrelated"] - acc["full_ft"]
print(f"tweets first: {100 * gain:+.1f} points; news first: {100 * unrelated:+.1f} points "
      f"({'negative transfer' if unrelated < 0 else 'no harm'})")
print(f"whole notebook: {time.perf_counter() - started:.0f} s wall clock, "
      f"{time.process_time():.0f} s of CPU time in this process")
if PROFILE != "smoke":
    assert acc["behavioural"] >= acc["full_ft"], acc
    print("lesson holds: a related labelled task first is worth "
          f"{100 * gain:.1f} points on {n0} target labels")

# %% [markdown]
# ## What to try next
#
# * Spend more on stage 1 (`N_INTER = 4_000` tweets): does the gain grow, and does the
#   tweets model with its head kept need any target labels at all?
# * Multi-task instead of one after the other: train on tweets and movie reviews mixed
#   in one run (the same head, since the labels agree) and compare.
# * Try the intermediate tasks at a larger target budget (`BUDGETS = [2_000]`): the gap
#   usually shrinks as target labels stop being scarce.
# * Notebook 07 reshapes the task into the pre-training task itself (a cloze prompt);
#   notebook 09 puts every strategy side by side.
