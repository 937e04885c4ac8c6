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
# # 03 · Pre-training a small BERT with masked-language modelling
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/labkit-course/labkit/blob/main/notebooks/03_bert_mlm_pretraining.ipynb)
#
# Notebooks 01 and 02 trained models that read text in one direction or through a small
# window. BERT reads the whole sentence at once, and it learns from raw text with no
# labels at all: hide some of the words and ask the model to guess them from both sides.
# That is **masked-language modelling** (MLM). Whatever the model must know to fill in
# "the State of the [MASK]" or "a [MASK] waste of time" (grammar, facts, sentiment) ends
# up in its weights, and notebooks 04-07 reuse those weights.
#
# In this notebook we build every piece and pre-train a BERT from scratch on a CPU:
#
# 1. a **WordPiece vocabulary** learned from our corpus;
# 2. the **80/10/10 masking rule**, checked against the one in `transformers`;
# 3. a small `BertForMaskedLM` and the **stable-training recipe** of large models, with a
#    deliberately broken batch to watch `fit` roll back;
# 4. what pre-training bought: fill-mask probes and perplexity before and after, next to
#    the best pre-trained checkpoint we have offline;
# 5. the checkpoint saved as `course-bert` for the next notebooks.

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
# * write BERT's 80/10/10 masking rule, and say why it is not simply "replace by [MASK]";
# * write the warmup-then-cosine learning-rate schedule of pre-training and explain what
#   each part of the stable-training recipe (AdamW's betas, warmup, clipping, rollback)
#   protects against;
# * pre-train a small BERT from scratch with your own WordPiece vocabulary, and judge it
#   with perplexity, a frequency-only baseline and whole-word fill-in-the-blank probes.
#
# **Prerequisites**: notebook 02 (pre-training without labels, `fit`), what a
# transformer encoder and a softmax over a vocabulary are; Hugging Face `transformers`
# at the level of `from_pretrained`. The measured time per profile:

# %%
import re
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from transformers import BertForMaskedLM, DataCollatorForLanguageModeling

from labkit import checks, course, data, device, ledger, metrics, mlm, models, train
from labkit.profile import choose

course.header("03_bert_mlm_pretraining")
started = time.perf_counter()
device.seed_everything(SEED)
dev = device.pick()
run = ledger.Run("03_bert_mlm_pretraining", profile=PROFILE, seed=SEED, device=dev)

# How much of everything each profile uses.
N_SOTU = choose(PROFILE, smoke=400, quick=None, full=300_000)     # None: the whole split
N_REVIEWS = choose(PROFILE, smoke=400, quick=None, full=None)
VOCAB = choose(PROFILE, smoke=1000, quick=8000)
BLOCK = 64                        # tokens per training example
STEPS = choose(PROFILE, smoke=20, quick=600, full=6000)   # quick: set by the time budget
BATCH = choose(PROFILE, smoke=16, quick=32, full=64)
EVAL_EVERY = choose(PROFILE, smoke=5, quick=150, full=500)
N_VALID = choose(PROFILE, smoke=16, quick=128, full=512)         # validation blocks
N_TEST = choose(PROFILE, smoke=32, quick=300, full=1000)         # held-out test blocks
N_CLOZE = choose(PROFILE, smoke=20, quick=300, full=1000)        # whole-word probes per domain
print(f"profile {PROFILE}, seed {SEED}, device {dev}: vocabulary {VOCAB:,}, "
      f"{STEPS} steps of {BATCH} x {BLOCK} tokens")

# %% [markdown]
# ## 1 · The corpus
#
# The main corpus is the **State of the Union addresses** (1790-2021, the train split cut
# into passages). Notebooks 05 and 07 will use this model on **movie reviews**, so we
# also pre-train on unlabelled movie text: the plot summaries (`movie_plots`) and the
# *text only* of the review training split (its labels are never read; validation and
# test text are never trained on). The cell below counts the words of each part. (In
# the `full` profile with the hub reachable, `data.load` swaps the speeches for
# Wikipedia articles, and says so.) Why bother? The
# vocabulary is fixed at pre-training time: a tokenizer that never saw "film" or
# "hilarious" chops them into pieces forever after, and a model that never read a review
# starts notebook 05 further from its target.

# %%
def head(split, n):
    return split if n is None else split.select(range(min(n, len(split))))


sotu = data.load("sotu", profile=PROFILE)
plots = data.load("movie_plots", profile=PROFILE, source="bundled")
reviews = data.load("movie_reviews", profile=PROFILE, source="bundled")

sotu_train = list(head(sotu["train"], N_SOTU)["text"])
movie_train = (list(head(plots["train"], N_REVIEWS)["text"])
               + list(head(reviews["train"], N_REVIEWS)["text"]))     # text only, no labels
corpus = sotu_train + movie_train
words = {name: sum(len(t.split()) for t in texts)
         for name, texts in [("speeches", sotu_train), ("movie text", movie_train)]}
for name, n in words.items():
    print(f"{name:11s} {n:>10,} words ({n / sum(words.values()):.0%})")
print(f"{'corpus':11s} {sum(words.values()):>10,} words in {len(corpus):,} texts")

# %% [markdown]
# ## 2 · A WordPiece vocabulary of our own
#
# BERT does not read words but **word pieces**: frequent words are one token
# (`president`), rare ones are spelled with pieces (`over`, `##turn`, `##ed`). The
# pieces are learned from the corpus: start from single characters and keep adding the
# most frequent merge of two pieces until the vocabulary has the size we ask (the
# `tokenizers` library merges by frequency, like BPE; Google's original WordPiece chose
# merges by likelihood).
#
# The size is a speed decision. The last layer of a masked LM scores every position
# against every vocabulary entry, so for a model as small as ours that layer, not the
# transformer, sets the cost of a step: a few times more at bert-base's 30,522 tokens
# than at 8,000. We take **8,000** and make the output layer cheaper in section 5 (which
# times a step both ways).
#
# `mlm.train_wordpiece` runs the `tokenizers` library with BERT's recipe (lower-case,
# split at spaces and punctuation) and wraps the result as a transformers
# `BertTokenizerFast`, so `save_pretrained` and `AutoTokenizer` work on it like on any
# hub tokenizer.

# %%
t0 = time.perf_counter()
tokenizer = mlm.train_wordpiece(corpus, vocab_size=VOCAB)
print(f"WordPiece vocabulary: {len(tokenizer):,} tokens, trained in "
      f"{time.perf_counter() - t0:.1f}s; special tokens {tokenizer.all_special_tokens}")
speech_only = mlm.train_wordpiece(sotu_train, vocab_size=VOCAB)   # for comparison


def pieces(tok, text):
    return " ".join(tok.tokenize(text))


examples = ["The State of the Union is strong.",
            "A hilarious, beautifully acted film.",
            "The screenplay is a mess of clichés."]
pd.set_option("display.max_colwidth", 90)
pd.set_option("display.max_columns", 40)
pd.set_option("display.width", 200)
display(pd.DataFrame({"text": examples,
                      "speeches + movie text": [pieces(tokenizer, t) for t in examples],
                      "speeches only": [pieces(speech_only, t) for t in examples]}))

held_out_reviews = list(head(reviews["validation"], N_CLOZE)["text"])
n_words = sum(len(re.findall(r"\w+|[^\w\s]", t)) for t in held_out_reviews)
for name, tok in [("speeches + movie text", tokenizer), ("speeches only", speech_only)]:
    n_tokens = sum(len(tok.tokenize(t)) for t in held_out_reviews)
    print(f"held-out reviews, {name:22s}: {n_tokens / n_words:.2f} tokens per word")

# %% [markdown]
# ## 3 · From texts to training examples
#
# A transformer sees a fixed number of positions. Padding short texts to that length
# wastes compute, so `mlm.tokenize_blocks` packs the corpus end to end, texts separated by
# `[SEP]`, and cuts it into blocks of 64 tokens, each `[CLS] ... [SEP]`. For held-out
# text we make blocks the same way; for review sentences we keep one sentence per
# example (`pack=False`), which is how notebooks 05 and 07 will feed them.

# %%
def spread(items, n):
    """`n` items evenly spread over `items` (held-out sets cover every address)."""
    if n >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, n).astype(int)]


train_blocks = mlm.tokenize_blocks(tokenizer, corpus, BLOCK)
valid_blocks = spread(mlm.tokenize_blocks(tokenizer, sotu["validation"]["text"], BLOCK), N_VALID)
test_text = list(sotu["test"]["text"])
test_blocks = spread(mlm.tokenize_blocks(tokenizer, test_text, BLOCK), N_TEST)
review_examples = mlm.tokenize_blocks(tokenizer, held_out_reviews, BLOCK, pack=False)
n_tokens = sum(len(b["input_ids"]) for b in train_blocks)
print(f"train: {len(train_blocks):,} blocks, {n_tokens:,} tokens; "
      f"{STEPS} steps x {BATCH} blocks = {STEPS * BATCH / len(train_blocks):.2f} epochs")
print(f"held out: {len(valid_blocks)} validation blocks, {len(test_blocks)} test blocks "
      f"(speeches), {len(review_examples)} review sentences")
print("one block:", tokenizer.decode(train_blocks[1]["input_ids"]))

# %% [markdown]
# ## 4 · The masking rule: 15%, then 80/10/10
#
# Of the real tokens (never `[CLS]`, `[SEP]` or padding), 15% are chosen; the loss is
# computed only there (every other label is -100, which the loss skips). A chosen token
# is replaced by `[MASK]` 80% of the time, by a random token 10% of the time, and left
# as it is 10% of the time. Why not always `[MASK]`? Because `[MASK]` never appears when
# the model is later used on real text: the random and unchanged cases force it to keep
# a good representation of *every* token, since any of them may be graded.
#
# ### Your turn 03.1 · The masking rule
#
# Write `mask_tokens(input_ids, *, mask_token_id, vocab_size, special_ids, probability,
# mask_rate, random_rate, generator)`:
#
# * `input_ids` (B, L) is a LongTensor of token ids, padded; `special_ids` holds the ids
#   of [PAD], [UNK], [CLS], [SEP] and [MASK], which are **never chosen**;
# * choose each other position with `probability`; return `(inputs, labels)`, both
#   (B, L): `labels` holds the original id at the chosen positions and -100 everywhere
#   else;
# * at a chosen position the input becomes `mask_token_id` with probability `mask_rate`,
#   a random **non-special** token with probability `random_rate`, and stays as it is
#   otherwise; positions that were not chosen are left alone;
# * draw every random number from `generator` (`torch.rand(shape, generator=generator)`),
#   so that a seed fixes the masks.
#
# `mlm.MLMCollator` pads a batch and then calls the masking rule you give it; every
# collator in this notebook masks with your function. It draws from torch's random
# generator, so `fit`'s seed fixes the training masks.

# %%
def mask_tokens(input_ids, *, mask_token_id, vocab_size, special_ids=(), probability=0.15,
                mask_rate=0.8, random_rate=0.1, generator=None):
    """BERT's masking rule: (B, L) ids -> (inputs, labels), both (B, L)."""
    ### BEGIN SOLUTION
    special = torch.tensor(sorted(set(special_ids)), dtype=torch.long)
    chosen = ((torch.rand(input_ids.shape, generator=generator) < probability)
              & ~torch.isin(input_ids, special))
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    draw = torch.rand(input_ids.shape, generator=generator)       # one draw: 80/10/10
    to_mask = chosen & (draw < mask_rate)
    to_random = chosen & (draw >= mask_rate) & (draw < mask_rate + random_rate)
    ordinary = torch.ones(vocab_size, dtype=torch.bool)
    ordinary[special[special < vocab_size]] = False
    candidates = ordinary.nonzero().squeeze(1)
    random_ids = candidates[torch.randint(len(candidates), input_ids.shape,
                                          generator=generator)]
    inputs = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    return torch.where(to_random, random_ids, inputs), labels
    ### END SOLUTION


mask_tokens = checks.run("03.1", mask_tokens)

# %% [markdown]
# Here is one masked example, position by position (with `probability=0.5` instead of
# `0.15`, so that one short sentence shows every case):

# %%
collate = mlm.MLMCollator(tokenizer, mask_fn=mask_tokens)
sentence = "The President shall give to the Congress information of the State of the Union."
original = tokenizer(sentence)["input_ids"]
torch.manual_seed(SEED)
batch = mlm.MLMCollator(tokenizer, probability=0.5, mask_fn=mask_tokens)(
    [{"input_ids": original}])
rows = []
for pos, (orig, inp, lab) in enumerate(zip(original, batch["input_ids"][0].tolist(),
                                           batch["labels"][0].tolist())):
    kind = ("" if lab == -100 else "[MASK]" if inp == tokenizer.mask_token_id
            else "unchanged" if inp == orig else "random")
    rows.append({"position": pos, "original": tokenizer.convert_ids_to_tokens(orig),
                 "model sees": tokenizer.convert_ids_to_tokens(inp),
                 "label": "-100" if lab == -100 else tokenizer.convert_ids_to_tokens(lab),
                 "graded as": kind})
display(pd.DataFrame(rows).set_index("position").T)

# %% [markdown]
# One sentence says little about proportions. Over many blocks, your masking rule and
# `transformers`' `DataCollatorForLanguageModeling` should agree (the unit test
# `tests/test_mlm.py` checks labkit's with tolerances; here we just look):

# %%
def masking_shares(collate_fn, blocks, rounds):
    special = torch.tensor(tokenizer.all_special_ids)
    real = chosen = as_mask = same = 0
    for _ in range(rounds):
        for start in range(0, len(blocks), 64):
            part = blocks[start:start + 64]
            b = collate_fn(part)
            width = b["input_ids"].shape[1]
            orig = torch.tensor([x["input_ids"] + [0] * (width - len(x["input_ids"]))
                                 for x in part])
            graded = b["labels"] != -100
            assert not (graded & torch.isin(orig, special)).any()   # never special/padding
            real += int((~torch.isin(orig, special)).sum())
            chosen += int(graded.sum())
            as_mask += int((b["input_ids"][graded] == tokenizer.mask_token_id).sum())
            same += int((b["input_ids"][graded] == orig[graded]).sum())
    return {"chosen / real tokens": chosen / real, "[MASK] / chosen": as_mask / chosen,
            "random / chosen": (chosen - as_mask - same) / chosen,
            "unchanged / chosen": same / chosen, "tokens": real}


sample_blocks = review_examples[:256] + test_blocks[:64]   # with padding and specials
shares = pd.DataFrame({
    "your masking rule": masking_shares(collate, sample_blocks, rounds=3),
    "transformers collator": masking_shares(
        DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15), sample_blocks, rounds=3),
    "BERT's rule": {"chosen / real tokens": 0.15, "[MASK] / chosen": 0.8,
                    "random / chosen": 0.1, "unchanged / chosen": 0.1}})
display(shares.round(3))

# %% [markdown]
# **Scoring is not training.** The 80/10/10 rule is for training. Score held-out text
# with it and a tenth of the graded positions show their answer in the input (the
# "unchanged" row above): a model that copies its input gets those right for free, which
# flatters both perplexity and top-1 accuracy. So every score in this notebook uses
# `mlm.eval_masks`: the same 15% choice (your rule, called with `mask_rate=1`,
# `random_rate=0`), but **every** chosen position becomes `[MASK]`, drawn once from a
# generator seeded with 0. The held-out blocks are masked once, here, and every model is
# scored on exactly those positions (the collator pads pre-masked blocks without
# masking them again).

# %%
def masked_once(blocks):
    return mlm.eval_masks(tokenizer, blocks, seed=0, mask_fn=mask_tokens)


valid_scored, test_scored = masked_once(valid_blocks), masked_once(test_blocks)
shown = sum(i == l for b in test_scored for i, l in zip(b["input_ids"], b["labels"]))
graded = sum(l != -100 for b in test_scored for l in b["labels"])
print(f"test blocks: {graded:,} graded positions, {shown} of them show their answer "
      "(80/10/10 would show about a tenth)")

# %% [markdown]
# ## 5 · The model: a small BERT, and a cheaper output layer
#
# `mlm.small_bert_config` gives the shape of Google's BERT-tiny: 2 layers, hidden size
# 128, 2 attention heads, feed-forward 512, positions up to 128. It is the same shape as
# the offline `tiny-mlm` we compare with at the end, so differences come from the
# vocabulary and the pre-training, not the architecture. The output layer shares its
# weight with the input embeddings (*tied*), so the vocabulary costs its parameters
# once.
#
# Only ~15% of positions have a label, yet `BertForMaskedLM(**batch)` computes the
# 8,000-way output layer at all of them. `mlm.mlm_loss` runs the encoder everywhere and
# the output layer only at the labelled positions: the same loss, far less work. (Under
# evaluation it computes all logits, so `evaluate` can report masked-token accuracy.)

# %%
config = mlm.small_bert_config(tokenizer)
device.seed_everything(SEED)
model = BertForMaskedLM(config)
n_params = models.count_parameters(model)
n_embed = sum(p.numel() for p in model.bert.embeddings.parameters())
print(f"BertForMaskedLM: {n_params:,} parameters, of which embeddings {n_embed:,} "
      f"({n_embed / n_params:.0%}); {config.num_hidden_layers} layers, hidden "
      f"{config.hidden_size}, vocabulary {config.vocab_size:,}")


def ms_per_step(loss_fn, steps=choose(PROFILE, smoke=1, quick=3)):
    """Time a few optimizer steps on a throw-away copy of the model."""
    scratch = BertForMaskedLM(config).to(dev).train()
    opt = torch.optim.AdamW(scratch.parameters(), lr=1e-4)
    b = train.to_device(collate(train_blocks[:BATCH]), dev)
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        loss = loss_fn(scratch, b)
        (loss[0] if isinstance(loss, tuple) else loss).backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t)
    return 1000 * min(times[1:])


full_ms = ms_per_step(train.default_loss)
sparse_ms = ms_per_step(mlm.mlm_loss)
print(f"one step, batch {BATCH} x {BLOCK}: all positions {full_ms:.0f} ms, "
      f"labelled positions only {sparse_ms:.0f} ms ({full_ms / sparse_ms:.1f}x faster)")
device.seed_everything(SEED)
model = BertForMaskedLM(config)     # the model we train, from the seeded initialisation

# %% [markdown]
# ## 6 · Before training
#
# The probe sentences below come from both domains. An untrained model spreads its
# probability almost evenly over the vocabulary, so its perplexity on held-out text,
# exp(mean loss at the masked positions), is near the vocabulary size, and its guesses
# are noise.

# %%
PROBES = [("The President shall give to the Congress information of the State of the [MASK].",
           "union"),
          ("I ask the Congress to [MASK] this legislation.", "pass"),
          ("The United [MASK] of America.", "states"),
          ("We must reduce the federal [MASK].", "deficit"),
          ("Paris is the capital of [MASK].", "france"),
          ("This movie is a complete [MASK] of time.", "waste"),
          ("The [MASK] is funny, moving and beautifully acted.", "film"),
          ("One of the best [MASK] of the year.", "films"),
          ("The acting is fine, but the [MASK] makes no sense.", "plot")]
probe_texts, answers = [p for p, _ in PROBES], [a for _, a in PROBES]


def top(preds, k=3):
    return [", ".join(tok for tok, _ in p[:k]) for p in preds]


def rank_of(m, tok, texts, words):
    """Where each expected word comes in the model's ranking of its vocabulary (1 = first)."""
    ranked = [[w for w, _ in p] for p in mlm.fill_mask(m, tok, texts, top_k=len(tok))]
    return [r.index(w) + 1 if w in r else None for r, w in zip(ranked, words)]


before = top(mlm.fill_mask(model, tokenizer, probe_texts, top_k=3))
rank_before = rank_of(model, tokenizer, probe_texts, answers)
init = train.evaluate(model, test_scored, collate_fn=collate, device=dev)
init_valid = train.evaluate(model, valid_scored, collate_fn=collate, device=dev)
ppl_init = metrics.perplexity(init["loss"])
print(f"untrained, held-out speeches: loss {init['loss']:.3f}, perplexity {ppl_init:,.0f} "
      f"(vocabulary {len(tokenizer):,}), masked-token accuracy {init['accuracy']:.1%}")
run.log("mlm_ppl_init", ppl_init)

# %% [markdown]
# ## 7 · Pre-training with the stable-training recipe
#
# Large language models fail in a few well-known ways: the loss jumps and never comes
# back, or turns into NaN. The recipe they use against it, all of it arguments of
# `fit`:
#
# * **AdamW with `betas=(0.9, 0.95)`.** Adam divides each step by a running average of
#   squared gradients. With the default `β₂ = 0.999` that average remembers ~1,000 steps,
#   so when the gradients suddenly grow it lags behind and the steps come out too big;
#   with `0.95` (~20 steps) it catches up quickly. **Weight decay** `0.01` on weight
#   matrices (`fit` leaves biases and LayerNorms alone).
# * **Warmup then decay.** Adam divides each step by the square root of its running
#   average of squared gradients. The zero start of that average is not the problem
#   (Adam's bias correction rescales it exactly); the problem is that after a few steps
#   the average rests on a handful of gradients, so it is a noisy estimate, and where it
#   happens to be small the step comes out large (Liu et al., 2020). Keeping the learning
#   rate small while the estimate settles avoids those early wild steps: it rises over
#   the first 6% of steps, then follows a cosine down to 10% of its peak.
# * **Gradient clipping at 1.0.** The gradient is rescaled to norm at most 1 before the
#   optimizer sees it. Under Adam that does *not* cap the size of a step (the step is
#   set by the learning rate and the ratio of the averages, whatever the gradient's
#   scale); what it limits is how far one unlucky batch can shift Adam's running
#   averages, and so the steps that follow it.
# * **Rollback on a spike.** `fit` keeps a snapshot every 25 steps. When a batch's loss is
#   more than 4x the median of the recent losses, it restores the snapshot and carries on
#   with the *next* batches: the bad batch is skipped. A step whose loss or gradient is
#   NaN or infinite is not applied at all; only three of those in a row roll back.
#
# ### Your turn 03.2 · Warmup, then a cosine
#
# Write `warmup_cosine(step, total_steps, warmup_steps, min_lr_ratio)`: the multiplier of
# the peak learning rate at optimizer step `step`, counted **from 0**.
#
# * Warmup: over steps 0 .. `warmup_steps` - 1 the multiplier rises linearly and reaches
#   exactly 1 at the last warmup step; step 0 already trains (its multiplier is not 0).
#   With `warmup_steps = 0` there is no warmup.
# * Then a cosine: the progress $p$ runs from 0 at step `warmup_steps` to 1 at
#   `total_steps` (and stays 1 after), and with $m$ = `min_lr_ratio` the multiplier is
#   $m + (1 - m) \cdot \frac{1}{2}\,(1 + \cos \pi p)$: 1 when the warmup ends, $m$ at the end.
#
# `fit(schedule="cosine")` follows this schedule; the cell after training checks that the
# learning rates it used are the ones your function gives.

# %%
import math  # noqa: E402


def warmup_cosine(step, total_steps, warmup_steps, min_lr_ratio=0.0):
    """Learning-rate multiplier at optimizer step `step` (from 0)."""
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    ### END SOLUTION


warmup_cosine = checks.run("03.2", warmup_cosine)

# %%
PEAK_LR, WARMUP, MIN_LR_RATIO = 1e-3, 0.06, 0.1
warmup_steps = int(WARMUP * STEPS)
planned = [PEAK_LR * warmup_cosine(s, STEPS, warmup_steps, MIN_LR_RATIO) for s in range(STEPS)]
fig, ax = plt.subplots(figsize=(5, 2.5))
ax.plot(planned)
ax.axvline(warmup_steps, color="grey", ls=":", label="end of warmup")
ax.set_xlabel("optimizer step")
ax.set_ylabel("learning rate")
ax.legend()
plt.show()

# %% [markdown]
# To watch the rollback work, we sabotage one training batch: its loss is multiplied by
# 100, as if a corrupt document had slipped into the data. Everything else is the real
# run. The learning rate, 1e-3, is high by bert-base standards (1e-4) but usual for a
# model this small (in trial runs of 1,200 steps, 2e-3 and 3e-3 ended at nearly the same held-out loss).

# %%
def sabotage(loss_fn, at_batch, factor=100.0):
    """`loss_fn`, except that the `at_batch`-th training batch gets a loss `factor` x too big."""
    calls = 0

    def wrapped(model, batch):
        nonlocal calls
        loss = loss_fn(model, batch)
        if model.training:             # evaluation batches are left alone
            calls += 1
            if calls == at_batch:
                loss = loss * factor
        return loss

    return wrapped


BAD_BATCH = choose(PROFILE, smoke=16, quick=160, full=660)
history = train.fit(
    model, train_blocks, eval_data=valid_scored, collate_fn=collate,
    loss_fn=sabotage(mlm.mlm_loss, at_batch=BAD_BATCH),
    max_steps=STEPS, batch_size=BATCH, eval_every=EVAL_EVERY,
    lr=PEAK_LR, betas=(0.9, 0.95), weight_decay=0.01,
    warmup=WARMUP, schedule="cosine", min_lr_ratio=MIN_LR_RATIO, clip=1.0,
    device=dev, seed=SEED, desc="pre-training")
print(f"{history.steps} steps in {history.seconds:.0f}s "
      f"({history.seconds / max(1, len(history.train)) * 1000:.0f} ms per step)")
for event in history.events:
    print("event:", event)
# After each step fit logs the learning rate of the next one: the rate logged once s
# steps are done is the rate of step s (counted from 0).
used = {r["step"]: r["lr"] for r in history.train}
follows = all(math.isclose(lr, PEAK_LR * warmup_cosine(s, STEPS, warmup_steps, MIN_LR_RATIO),
                           rel_tol=1e-6) for s, lr in used.items())
print(f"the learning rates fit used follow your schedule: {follows}")

# %% [markdown]
# The events show the sabotaged batch: `fit` saw a loss far above the recent median,
# restored the last snapshot and went on. Below, the training loss (left; the grey
# line marks the rollback) and the validation perplexity on held-out speeches (right,
# log scale).

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4))
history.plot(ax=ax1)
rolled = [int(m.group(1)) for e in history.events if (m := re.search(r"at step (\d+): rolled", e))]
for s in rolled:
    ax1.axvline(s, color="grey", ls=":", label="rollback")
ax1.legend(loc="upper right")
ax1.set_title("masked-LM loss")
ax2.plot([0] + [r["step"] for r in history.evals],
         [metrics.perplexity(r["loss"]) for r in [init_valid, *history.evals]], "o-")
ax2.set_yscale("log")
ax2.set_xlabel("optimizer step")
ax2.set_ylabel("validation perplexity")
ax2.grid(alpha=0.3, which="both")
ax2.set_title("held-out speeches")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 8 · After training
#
# Perplexity and masked-token accuracy on the held-out **test** addresses (never used for
# any choice above), at the same graded positions as before training, every one of them
# a `[MASK]`.
#
# A perplexity far below the vocabulary size is the first, easy win: learning how often
# each token occurs already gets there. The frequency-only model (always predict the
# training-set token frequencies, whatever the context; its accuracy is that of always
# guessing the most frequent token) is the fair bar, scored at the very same positions:
# a model below it uses the context, since at a `[MASK]` the context is all it has.

# %%
final = train.evaluate(model, test_scored, collate_fn=collate, device=dev)
ppl_final = metrics.perplexity(final["loss"])
counts = np.bincount([i for b in train_blocks for i in b["input_ids"]], minlength=len(tokenizer))
counts[tokenizer.all_special_ids] = 0
log_freq = np.log((counts + 1) / (counts + 1).sum())
held_ids = [i for b in test_scored for i in b["labels"] if i != -100]   # the graded answers
ppl_unigram = metrics.perplexity(-log_freq[held_ids].mean())
acc_unigram = float(np.mean(np.array(held_ids) == counts.argmax()))   # always the top token
summary = pd.DataFrame({"perplexity": [ppl_init, ppl_unigram, ppl_final],
                        "masked-token accuracy": [init["accuracy"], acc_unigram,
                                                  final["accuracy"]]},
                       index=["untrained", "token frequencies only", "pre-trained"])
display(summary.style.format({"perplexity": "{:,.0f}", "masked-token accuracy": "{:.1%}"}))
print(f"untrained / pre-trained perplexity: {ppl_init / ppl_final:.1f}; frequency-only / "
      f"pre-trained: {ppl_unigram / ppl_final:.2f} (above 1: the model uses the context)")


def position_nll(m, scored, collate_fn=collate):
    """The model's loss (nats) at every graded position of `scored`, in order (the output
    layer runs only there, so it is cheap even for a 30,522-token vocabulary)."""
    m.eval()
    out = []
    with torch.inference_mode():
        for b in train.batches(scored, 64, collate_fn=collate_fn):
            b = train.to_device(b, dev)
            labels = b.pop("labels")
            where = labels != -100
            logp = mlm.logits_at(m, b, where).float().log_softmax(-1)
            out.append(-logp.gather(1, labels[where][:, None])[:, 0].cpu())
    return torch.cat(out).numpy()


# How sure is "below the frequency-only model"? The graded positions come in blocks of
# one text, so resample whole blocks (2,000 times) and take the 95% interval of the
# mean loss the context saves per graded token.
saved = -log_freq[held_ids] - position_nll(model, test_scored)      # nats per position
block_of = np.array([k for k, b in enumerate(test_scored) for i in b["labels"] if i != -100])
sums = np.bincount(block_of, weights=saved, minlength=len(test_scored))
sizes = np.bincount(block_of, minlength=len(test_scored))
draws = np.random.default_rng(0).integers(0, len(test_scored), (2000, len(test_scored)))
low, high = np.percentile(sums[draws].sum(1) / np.maximum(1, sizes[draws].sum(1)), [2.5, 97.5])
uses_context = low > 0
print(f"the context saves {saved.mean():+.3f} nats per graded token against the frequency-only "
      f"model (95% interval over held-out blocks {low:+.3f} to {high:+.3f}): "
      + ("the model uses the context" if uses_context else
         "not resolved at this size" if low <= 0 <= high else
         "the frequency-only model is better: the model does not yet use the context"))
run.log("mlm_ppl_final", ppl_final)
run.log("mlm_top1_acc", final["accuracy"])

# %% [markdown]
# ## 9 · Side by side with the best offline pre-trained checkpoint
#
# `tiny-mlm` has the same 2-layer, 128-wide shape, bert-base-uncased's 30,522-token
# vocabulary and a real masked-LM head, pre-trained on far more text than ours (then
# tuned for search, which weakened its fill-mask; see `labkit/models.py`).
# `minilm` is stronger but has no MLM head, so it cannot fill a blank.
#
# Per-token perplexity is **not** comparable across tokenizers: a 30,522-token vocabulary
# has more choices per token but fewer tokens per word. So we add a comparison both
# models see the same way: in held-out text, hide one whole word (any word both
# vocabularies keep as a single token) and check whether it is the top guess, or among
# the top 5.

# %%
tiny, tiny_tok = models.load("tiny-mlm", task="masked-lm", profile=PROFILE)
tiny.to(dev)


def cloze_items(texts, rng, max_words=50):
    """One (text with a [MASK], hidden word) per text, the word whole in both vocabularies."""
    ours, theirs = tokenizer.get_vocab(), tiny_tok.get_vocab()
    items = []
    for text in texts:
        text = " ".join(text.split()[:max_words])
        spans = [m for m in re.finditer(r"[A-Za-z]+", text)
                 if m.group().lower() in ours and m.group().lower() in theirs]
        if spans:
            m = spans[rng.integers(len(spans))]
            items.append((text[:m.start()] + "[MASK]" + text[m.end():], m.group().lower()))
    return items


def cloze_accuracy(m, tok, items, k):
    preds = mlm.fill_mask(m, tok, [t for t, _ in items], top_k=k)
    return float(np.mean([word in [w for w, _ in p] for p, (_, word) in zip(preds, items)]))


rng = np.random.default_rng(0)
cloze = {"speeches": cloze_items(spread(test_text, N_CLOZE), rng),
         "reviews": cloze_items(held_out_reviews, rng)}
print("e.g.", cloze["reviews"][0])
rows = {}
for name, m, tok in [("course BERT (ours)", model, tokenizer), ("tiny-mlm", tiny, tiny_tok)]:
    col = mlm.MLMCollator(tok)
    once = lambda blocks: mlm.eval_masks(tok, blocks, seed=0, mask_fn=mask_tokens)  # noqa: E731
    sp = position_nll(m, once(spread(mlm.tokenize_blocks(tok, test_text, BLOCK), N_TEST)), col)
    rv = position_nll(m, once(mlm.tokenize_blocks(tok, held_out_reviews, BLOCK, pack=False)),
                      col)
    rows[name] = {"parameters": models.count_parameters(m), "vocabulary": len(tok),
                  "speeches: per-token ppl": metrics.perplexity(sp.mean()),
                  "reviews: per-token ppl": metrics.perplexity(rv.mean()),
                  **{f"{d}: word top-1": cloze_accuracy(m, tok, cloze[d], 1) for d in cloze},
                  **{f"{d}: word top-5": cloze_accuracy(m, tok, cloze[d], 5) for d in cloze}}
side = pd.DataFrame(rows).T
display(side.style.format({c: ("{:,.0f}" if "ppl" in c or c in ("parameters", "vocabulary")
                               else "{:.1%}") for c in side.columns}))
print(f"whole-word probes: {len(cloze['speeches'])} speech passages, "
      f"{len(cloze['reviews'])} review sentences")

# %% [markdown]
# And the probe sentences: the top 3 guesses, and where the expected word comes in each
# model's ranking of its whole vocabulary (1 = first guess; 8,000 or 30,522 = last; "-"
# where the word is not a single token of that vocabulary).

# %%
after = top(mlm.fill_mask(model, tokenizer, probe_texts))
rank_after = rank_of(model, tokenizer, probe_texts, answers)
probes = pd.DataFrame({"probe": probe_texts, "expected": answers,
                       "ours, untrained": before, "ours, pre-trained": after,
                       "rank: untrained -> pre-trained": [f"{r0 or '-'} -> {r1 or '-'}" for r0, r1
                                                          in zip(rank_before, rank_after)],
                       "tiny-mlm": top(mlm.fill_mask(tiny, tiny_tok, probe_texts)),
                       "rank: tiny-mlm": [r or "-" for r in rank_of(tiny, tiny_tok, probe_texts,
                                                                    answers)]})
display(probes)
moved_up = sum(r1 < r0 for r0, r1 in zip(rank_before, rank_after) if r0 and r1)
print(f"the expected word moved up the ranking in {moved_up} of {len(PROBES)} probes")

# %% [markdown]
# What to read from these tables. Pre-training took the model from a uniform guess to
# the frequencies of the language, and section 8 says whether it got further: whether
# its perplexity at the [MASK]ed positions is below the frequency-only model's at the
# same positions, with an interval over the held-out blocks; the rank column shows how
# far each expected word climbed. But its
# *first* guesses are often frequent tokens that fit almost anywhere (read the top-3
# column). A BERT learns the easy statistics first and the use of context slowly; our run
# (its tokens and epochs are printed in section 3) is the very start of that. BERT
# itself saw ~130 billion tokens (1M steps of 256 sequences of 512 tokens). That is the
# lesson of notebooks 01-03 in one line: training from scratch is slow and data-hungry,
# and it is why notebook 04 starts from pre-trained weights.
#
# `tiny-mlm` read far more text, but its head was tuned for search, not for filling
# blanks: its guesses are content words out of place, and its per-token perplexity is
# poor. Notebook 05 shows that a short stretch of continued pre-training repairs that.
#
# ## 10 · Save the checkpoint for notebooks 04-07
#
# `save_pretrained` writes the weights as safetensors (no pickle, safe to load) next to
# the config, and the tokenizer's files next to them. The folder is the one
# `labkit.models` looks in for `course-bert`: `$LABKIT_CHECKPOINTS/course-bert` when that
# variable is set, else `checkpoints/course-bert` in the repository.

# %%
folder = models.checkpoint_dir("course-bert")
model.save_pretrained(folder)
tokenizer.save_pretrained(folder)
size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
print(f"saved to {folder.name}/: {', '.join(sorted(f.name for f in folder.iterdir()))}; "
      f"{size / 1e6:.1f} MB")

reloaded, reloaded_tok = models.load("course-bert", task="masked-lm", profile=PROFILE)
same = (top(mlm.fill_mask(reloaded.to(dev), reloaded_tok, probe_texts))
        == top(mlm.fill_mask(model, tokenizer, probe_texts)))
print(models.describe("course-bert").split("->")[0].strip(), "| reloads with the same "
      f"predictions: {same}")

# %% [markdown]
# ## The lesson, checked
#
# Pre-training from scratch works on a CPU: held-out perplexity must fall to at most a
# fifth of the untrained model's (the bar of this notebook). The stricter test, below the
# frequency-only model at the same [MASK]ed positions (the model uses the context), is
# asserted only when its interval over the held-out blocks excludes 0; otherwise the
# notebook must have said "not resolved at this size". The
# sabotaged batch must have been rolled back, `fit` must have followed the schedule of
# exercise 03.2, and the saved checkpoint must reload with the same predictions.

# %%
assert any("rolled back" in e for e in history.events), history.events
assert follows, "fit's learning rates differ from warmup_cosine"
assert same, "the reloaded checkpoint predicts differently"
assert size < 50e6, f"checkpoint is {size / 1e6:.0f} MB"
if PROFILE != "smoke":
    assert ppl_final <= ppl_init / 5, (ppl_init, ppl_final)
    if uses_context:     # the resolved claim, and the two measures of it must agree
        assert ppl_final < ppl_unigram, (ppl_unigram, ppl_final)
print(f"lesson verified ({PROFILE}): perplexity {ppl_init:,.0f} -> {ppl_final:,.0f}, "
      f"masked-token accuracy {final['accuracy']:.1%}; "
      f"notebook wall time {time.perf_counter() - started:.0f}s")

# %% [markdown]
# ## Key takeaways
#
# * Masked-language modelling makes a supervised task out of raw text: hide 15% of the
#   real tokens and predict them from both sides. Special tokens and padding are never
#   graded.
# * The 80/10/10 rule (mask, random, unchanged) keeps the model from relying on seeing
#   [MASK], which never appears when the model is used later.
# * Stable pre-training is a recipe: AdamW with a short second-moment memory, warmup
#   while Adam's estimates are noisy then a cosine decay, clipping, and rollback on a
#   loss spike.
# * An untrained model is a uniform guess; perplexity below the frequency-only model is
#   the sign that the model uses the context, and whole-word probes compare models with
#   different tokenizers fairly.
# * From scratch on a CPU, a BERT learns the frequencies of the language first and the
#   use of context slowly: the reason to start from pre-trained weights.
#
# ## Check your understanding

# %%
from labkit import quiz  # noqa: E402

q = quiz.ask("03")

# %% [markdown]
# ## What to try next
#
# * **Longer is better, for a long time.** Double `STEPS` (and watch the validation
#   perplexity keep falling): BERT itself trained for a million steps of 256 sequences
#   of 512 tokens.
# * **Vocabulary size.** Retrain with `VOCAB = 4000` or `16000`: per-token perplexity
#   moves with the vocabulary, the whole-word accuracy is the fairer judge.
# * **Masking rate.** Try `mlm.MLMCollator(tokenizer, probability=0.3)` for training
#   (and keep 15% to evaluate, so the numbers compare): more graded positions per step.
#   Wettig et al. (2023) found `probability=0.4` as good as or better than `0.15` for
#   larger models.
# * **Without the recipe.** Train with `betas=(0.9, 0.999)`, `warmup=0`, `clip=None` and a
#   higher learning rate, and see how often `fit` has to roll back.
# * **Only speeches.** Pre-train on `sotu_train` alone and compare the review columns of
#   the side-by-side table.

# %% [markdown]
# ## References
#
# * Devlin, Chang, Lee, Toutanova (2019). *BERT: Pre-training of Deep Bidirectional
#   Transformers for Language Understanding*. NAACL 2019, `arXiv:1810.04805`.
# * Schuster, Nakajima (2012). *Japanese and Korean Voice Search* (WordPiece). ICASSP 2012.
# * Wu et al. (2016). *Google's Neural Machine Translation System* (WordPiece in NMT).
#   `arXiv:1609.08144`.
# * Kingma, Ba (2015). *Adam: A Method for Stochastic Optimization*. ICLR 2015,
#   `arXiv:1412.6980`. Loshchilov, Hutter (2019). *Decoupled Weight Decay Regularization*
#   (AdamW). ICLR 2019, `arXiv:1711.05101`.
# * Liu et al. (2020). *On the Variance of the Adaptive Learning Rate and Beyond* (why
#   warmup). ICLR 2020, `arXiv:1908.03265`.
# * Turc, Chang, Lee, Toutanova (2019). *Well-Read Students Learn Better* (BERT-tiny and
#   the small BERTs). `arXiv:1908.08962`.
# * Wettig, Gao, Zhong, Chen (2023). *Should You Mask 15% in Masked Language Modeling?*
#   EACL 2023, `arXiv:2202.08005`.

# %%
run.finish()   # close this run in the ledger: only a notebook that ran to its end counts
