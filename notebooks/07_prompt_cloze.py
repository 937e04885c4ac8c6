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
# # 07 · Prompts: turn classification into the pre-training task itself
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/labkit-course/labkit/blob/main/notebooks/07_prompt_cloze.ipynb)
#
# In notebook 04 we adapted a pre-trained model to sentiment by **replacing its head**: the
# masked-LM output layer was thrown away and a new, random 2-way classifier put on top.
# With thousands of labels that is fine. With 32 labels the random head is the weak point:
# it has to learn from scratch what "positive" means.
#
# This notebook goes the other way (taxonomy cell **1A**: unsupervised pre-training, and
# the *same* task downstream). We rewrite the review as the kind of question the model was
# pre-trained to answer:
#
# > *"A gripping, beautifully acted film. **It was [MASK].**"* → `great` or `terrible`?
#
# A **pattern** wraps the input into a cloze question; a **verbalizer** maps each label to
# a word (positive → *great*, negative → *terrible*). The model's prediction is the label
# whose word it finds more likely in the blank. No new weights at all (Schick & Schütze
# 2021, "PET").
#
# 1. patterns and verbalizers, and what our masked LM really puts in the blank;
# 2. **zero-shot**: no labels at all, with the masked LM and with a causal LM (the
#    "prefix" route: which continuation, *"It was great"* or *"It was terrible"*, is more
#    likely?), with several patterns and with calibration;
# 3. **few-shot**: prompt fine-tuning against head fine-tuning on the same model, from 8
#    to 512 labels;
# 4. **how many data points is a prompt worth?** Le Scao & Rush's measure (NAACL 2021),
#    computed on our curves.

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

# %% [markdown]
# **You will be able to**
#
# * turn a classification task into the model's own pre-training question, a cloze with a
#   pattern and a verbalizer, and score it with a masked LM and with a causal LM;
# * compute each label's score at the mask yourself, from the model's logits;
# * compare prompt fine-tuning with head fine-tuning of the same model at the same label
#   budgets, on the course's fixed test set;
# * measure how many labelled examples a prompt is worth (Le Scao & Rush's horizontal gap),
#   and say how far to trust that number.
#
# **Prerequisites**: notebook 03 (what a masked LM predicts at `[MASK]`), notebook 04 (a new
# head on a pre-trained encoder, `finetune.fit_classifier`, label budgets). Ideas: logits and
# softmax, cross-entropy, learning curves.

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("LABKIT_PROFILE", "quick")   # "smoke" | "quick" | "full"
SEED = int(os.environ.get("LABKIT_SEED", 0))

# %%
import copy
import time

import datasets
import matplotlib.pyplot as plt
import numpy as np
import torch
import transformers
from IPython.display import Markdown, display

from labkit import (checks, compare, course, data, device, finetune, hub, ledger, mlm,
                    models, prompts, protocol, quiz)
from labkit.profile import check, choose

check(PROFILE)
course.header("07_prompt_cloze")
started = time.perf_counter()
datasets.disable_progress_bars()
transformers.logging.set_verbosity_error()    # the checkpoints' load reports are explained in prose
device.seed_everything(SEED)
dev = device.pick()
run = ledger.Run("07_prompt_cloze", profile=PROFILE, seed=SEED, device=dev)

# %% [markdown]
# ## The plan, and how it was chosen
#
# **Which model.** Prompting needs a model with a masked-LM head. Offline we have one
# real one: `tiny-mlm` (2 layers, hidden 128, a few million parameters, BERT's vocabulary,
# its output layer tied to the word embeddings). `minilm`, our strongest encoder, has no
# masked-LM head (see notebook 00), so it cannot fill a blank. The `full` profile takes
# `bert-base` from the hub when it answers. Both few-shot methods below run on the
# **same** masked LM, so the comparison is fair. The causal LM is `smollm2`
# (SmolLM2-135M-Instruct).
#
# **The setting the effect needs, the one chosen, and the one we can afford.** PET's
# gain over a new head (Schick & Schütze 2021) and Le Scao & Rush's "a prompt is worth
# hundreds of examples" were measured with large masked LMs whose cloze already works
# (RoBERTa-large: 355M parameters, pre-trained on about 160 GB of text): the prompt's
# head start is the meaning the model already gives the verbalizer words at the blank,
# so PET's gain is largest with the fewest labels (10 to 100 in the paper) and shrinks
# as labels grow, when a new head has enough examples to learn what the verbalizer gave
# for free. The setting chosen follows that reason: **one pattern and one verbalizer,
# fixed before any run, prompt fine-tuning against head fine-tuning of the same masked
# LM at budgets from 8 to 512 labels, the lesson cell checking the comparison at 32**
# (inside PET's range, and enough rows per class for a run to learn at all). Offline, the only masked
# LM with a head is `tiny-mlm` (4.4M parameters, about 80 times fewer; its head was tuned
# for search, and section 1 shows what it puts in the blank); PET also ensembled several
# patterns and distilled them on unlabelled text, which this notebook leaves out. The
# setting was explored on seeds 100-102 (`labkit run 07 --seed 100`, which shifts
# `SEEDS`): there prompt fine-tuning's mean was ahead of head fine-tuning's at every
# budget from 8 to 512 labels, but no difference was resolved (every 95% interval
# included 0), and at 8 labels neither method was resolved above the majority line. So
# in `quick` the few-shot comparison is run and reported with its 95% interval, and where
# the interval includes 0 it reads "not resolved at this size": the scale the effect needs
# is out of reach of a CPU here. `full` takes `bert-base` (110M parameters, a real
# masked-LM head) from the hub, closer to the papers' scale.
#
# **Which zero-shot number is the headline (`acc_zero_shot`), and how it was chosen.**
# Not before seeing numbers: while this notebook was written, both routes were scored on
# the zero-shot test slice below, and the masked-LM cloze stayed at the level of always
# answering one class in every variant (section 2a shows it again). The headline was then
# set to the **causal LM** with everything that needs no labels: **all three patterns
# averaged, calibrated** with the content-free input "N/A". Since that choice saw test
# numbers, read the headline as slightly optimistic. It is the same in every profile, and
# every other variant is printed beside it (`acc_zero_shot_mlm`, the tables below), never
# swapped in.
#
# **Test data: the course's one protocol.** The few-shot runs score the course's fixed test
# set (`protocol.test_set`: the same rows in notebooks 02-08, with its majority-class line).
# The causal LM is slow on a CPU, so zero-shot scores only the first `ZS_TEST` rows of that
# set: a named slice (`protocol.slice_name`) with **its own** majority-class line. Numbers on
# the slice and on the whole test set are never compared with each other.

# %%
MLM = choose(PROFILE, smoke="tiny-mlm", quick="tiny-mlm", full="bert-base")
if MLM == "bert-base" and not hub.use_hub(PROFILE):
    print("[07] bert-base needs the hub, which is not reachable: using tiny-mlm instead "
          "(bert-base's offline stand-in, minilm, has no masked-LM head)")
    MLM = "tiny-mlm"
CAUSAL_LM = "smollm2"
PATTERNS = list(prompts.PATTERNS)          # label 0 = negative, 1 = positive
VERBALIZER = prompts.VERBALIZER            # ("terrible", "great")
ZS_TEST = choose(PROFILE, smoke=24, quick=200, full=2000)
BUDGETS = choose(PROFILE, smoke=(8, 16), quick=(8, 32, 128, 512),
                 full=(8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096))
# the seeds every comparison averages over; `labkit run 07 --seed 100` shifts them all
# (100, 101, 102), which is how settings are explored without touching the reported seeds
SEEDS = tuple(SEED + s for s in
              choose(PROFILE, smoke=(0,), quick=(0, 1, 2), full=(0, 1, 2, 3, 4)))
MAX_LENGTH = 64

reviews = data.load("movie_reviews", profile=PROFILE, source="bundled")  # the protocol's files
test_rows = protocol.test_split(PROFILE)                     # the fixed test set, raw
TEST_SET = protocol.test_set(PROFILE)
ZS_SET = protocol.slice_name(PROFILE, ZS_TEST)
zs_test = protocol.test_split(PROFILE, ZS_TEST)
acc_majority = protocol.log_baseline(run)                    # the fixed test set's line
majority = protocol.log_baseline(run, test_set=ZS_SET, labels=zs_test["label"])  # the slice's
print(f"profile {PROFILE}: masked LM {MLM}, causal LM {CAUSAL_LM}; budgets {BUDGETS}, "
      f"seeds {SEEDS}")
print(f"few-shot test set {TEST_SET}: {len(test_rows):,} sentences, majority class "
      f"{acc_majority:.1%}")
print(f"zero-shot slice   {ZS_SET}: {len(zs_test):,} sentences, "
      f"{np.mean(zs_test['label']):.1%} positive, majority class {majority:.1%}")

# %% [markdown]
# ## 1 · Patterns and verbalizers
#
# A pattern is a string with two holes: `{text}` for the review and `[MASK]` for the
# answer. Three patterns in the style of PET and LM-BFF (Gao et al. 2021), all with the
# blank at the end, so a causal LM can use them too:

# %%
mlm_model, mlm_tok = models.load(MLM, task="masked-lm", profile=PROFILE)
mlm_model.to(dev).eval()
print(f"{MLM}: {models.count_parameters(mlm_model):,} parameters, vocabulary {len(mlm_tok):,}")
example = zs_test[0]["text"]
for p in PATTERNS:
    print(" ", prompts.fill(p, example))
print("verbalizer:", {i: w for i, w in enumerate(VERBALIZER)},
      "-> token ids", prompts.verbalizer_ids(mlm_tok, VERBALIZER))

# %% [markdown]
# Each verbalizer word must be **one token** of the model's vocabulary, because the
# blank holds one token: `prompts.verbalizer_ids` refuses a word the tokenizer splits.
# `prompts.tokenize` fills the pattern and, when a review is too long, shortens the
# review, never the pattern: losing the `[MASK]` would lose the question.

# %%
rows = prompts.tokenize(zs_test.select(range(2)), mlm_tok, PATTERNS[0], max_length=MAX_LENGTH)
for r in rows:
    print(mlm_tok.convert_ids_to_tokens(r["input_ids"]))
try:
    prompts.verbalizer_ids(mlm_tok, ("dreadful", "magnificently"))
except ValueError as e:
    print("ValueError:", e)

# %% [markdown]
# What does the masked LM actually put in the blank? `mlm.fill_mask` (notebook 03) shows
# its top guesses over the whole vocabulary.

# %%
probes = [prompts.fill(PATTERNS[0], t) for t in
          ("A masterpiece, moving and beautifully acted.", "A boring, ugly waste of two hours.")]
for probe, top in zip(probes, mlm.fill_mask(mlm_model, mlm_tok, probes, top_k=6)):
    print(f"{probe}\n   -> " + ", ".join(f"{w} {p:.3f}" for w, p in top))

# %% [markdown]
# Prompting rests on a premise: that the model's output vectors for the verbalizer
# words already mean "bad" and "good", so the blank after a glowing review favours
# *great* and the blank after a scathing one *terrible*. Check it on these two probes:
# where do the two words come in the model's ranking of its whole vocabulary?

# %%
ranked = mlm.fill_mask(mlm_model, mlm_tok, probes, top_k=len(mlm_tok))
premise = {}
for probe, words, want in zip(probes, ranked, (1, 0)):       # a positive, then a negative probe
    order = {w: (i + 1, p) for i, (w, p) in enumerate(words)}
    (r_neg, p_neg), (r_pos, p_pos) = order[VERBALIZER[0]], order[VERBALIZER[1]]
    premise[want] = (p_pos > p_neg) == bool(want)
    print(f"{probe[:45]:45s} {VERBALIZER[1]}: rank {r_pos:,} (p {p_pos:.4f}); "
          f"{VERBALIZER[0]}: rank {r_neg:,} (p {p_neg:.4f}) of {len(mlm_tok):,}")
premise_holds = all(premise.values())
display(Markdown(
    f"**The premise, checked on {MLM}**: the positive probe "
    f"{'favours' if premise[1] else 'does not favour'} *{VERBALIZER[1]}*, the negative one "
    f"{'favours' if premise[0] else 'does not favour'} *{VERBALIZER[0]}*. "
    + ("So the two output vectors already lean the right way on these probes, although "
       "neither word is near the top of the ranking."
       if premise_holds else
       "So in this model the two output vectors do **not** yet mean 'bad' and 'good': "
       "whatever a prompt gains here cannot come from the words' meaning at the blank. "
       "The zero-shot table below says the same over 200 reviews.")))

# %% [markdown]
# ## 2 · Zero-shot: no labels at all
#
# ### 2a · The masked LM (cloze)
#
# The score of a label is how strongly the model predicts its word at the mask: its
# **logit** there (the number before the softmax over the vocabulary). A softmax over the
# labels' logits alone turns them into label probabilities.
#
# ### Your turn 07.1 · The score of each label at the mask
#
# Write `verbalizer_scores(logits, input_ids, mask_token_id, label_ids)`:
#
# * `logits`: the masked LM's output, shape (rows, length, vocabulary);
# * `input_ids`: the tokenised rows, shape (rows, length), padded at the end, each with
#   one `mask_token_id` at its own position (reviews differ in length, so the mask does
#   not sit in the same column in every row);
# * `label_ids`: the token id of each label's word, in label order (label k is
#   `label_ids[k]`; they are not sorted);
# * return a tensor (rows, labels): the raw logits (no softmax) of the label words at
#   each row's mask;
# * a row without exactly one mask cannot be scored: raise a `ValueError` saying so.

# %%
def verbalizer_scores(logits, input_ids, mask_token_id, label_ids):
    """(rows, labels) logits of the verbalizer tokens at each row's one mask."""
    ### BEGIN SOLUTION
    where = input_ids == mask_token_id
    if not bool((where.sum(1) == 1).all()):
        raise ValueError("every row needs exactly one mask token")
    return logits[where][:, torch.as_tensor(label_ids, device=logits.device)]
    ### END SOLUTION


verbalizer_scores = checks.run("07.1", verbalizer_scores)

# %% [markdown]
# Your function now scores the slice with the first pattern: the masked LM's full logits
# for every row, then your scores at the mask, then the label with the higher score. The
# `raw` column of the first pattern in the table below comes from `prompts.zero_shot`,
# which computes the same scores through `prompts.ClozeClassifier`; the two agree.

# %%
label_ids = prompts.verbalizer_ids(mlm_tok, VERBALIZER)
cloze_rows = prompts.tokenize(zs_test, mlm_tok, PATTERNS[0], max_length=MAX_LENGTH)
collate_mlm = finetune.collate(mlm_tok.pad_token_id)
by_hand = []
with torch.inference_mode():
    for start in range(0, len(cloze_rows), 32):
        batch = collate_mlm([cloze_rows[i] for i in range(start, min(start + 32,
                                                                     len(cloze_rows)))])
        batch.pop("labels")
        batch = {k: v.to(dev) for k, v in batch.items()}
        scores = verbalizer_scores(mlm_model(**batch).logits, batch["input_ids"],
                                   mlm_tok.mask_token_id, label_ids)
        by_hand += scores.argmax(-1).tolist()
acc_by_hand = float(np.mean(np.array(by_hand) == np.array(zs_test["label"])))
print(f"pattern {PATTERNS[0]!r}, raw, scored with your verbalizer_scores: {acc_by_hand:.1%} "
      f"on {ZS_SET} ({np.mean(by_hand):.0%} predicted positive)")

# %% [markdown]
# `prompts.zero_shot` scores each pattern, turns each pattern's scores into probabilities
# over the two labels and averages them (an ensemble: with no labels there is no way to
# pick the best pattern). It also reports each pattern alone.
#
# **Calibration** (Zhao et al. 2021). A model may prefer "great" whatever it reads. Feed it
# a content-free input, "N/A It was [MASK].", and that preference is all it can express;
# subtracting those scores from every review's puts the two words on an equal footing.
# It is a label-free correction, so it fits zero-shot. The raw and the calibrated results
# come from one scoring pass (`prompts.label_scores`, then `prompts.from_scores` twice):
# calibration only subtracts a constant per pattern and label.

# %%
def zero_shot_table(model, tok, name):
    """Zero-shot accuracy of each pattern and of the ensemble, raw and calibrated."""
    scores, bias = prompts.label_scores(model, tok, zs_test["text"], PATTERNS, VERBALIZER,
                                        calibrated=True, max_length=MAX_LENGTH)
    out = {True: prompts.from_scores(scores, zs_test["label"], PATTERNS, bias),
           False: prompts.from_scores(scores + bias[:, None, :], zs_test["label"], PATTERNS)}
    print(f"{name}: zero-shot accuracy on {ZS_SET} (majority class {majority:.1%})")
    print(f"  {'pattern':42s} {'raw':>7s} {'calibrated':>11s}")
    for p in PATTERNS:
        print(f"  {p:42s} {out[False].per_pattern[p]:7.1%} {out[True].per_pattern[p]:11.1%}")
    print(f"  {'all three, averaged':42s} {out[False].accuracy:7.1%} {out[True].accuracy:11.1%}")
    share = {c: np.mean(out[c].predictions) for c in out}
    print(f"  share predicted positive: raw {share[False]:.0%}, calibrated {share[True]:.0%}")
    return out


def log_zero_shot(metric, z, model_name):
    """One zero-shot accuracy through the protocol, on the slice it was scored on."""
    correct = (z.predictions == np.asarray(zs_test["label"])).tolist()
    return protocol.log_accuracy(run, metric, correct, budget=0, model=model_name,
                                 trainable=0, test_set=ZS_SET)


zs_mlm = zero_shot_table(mlm_model, mlm_tok, MLM)
# the two routes to the same scores may break a near-tie differently: one row at most
assert abs(zs_mlm[False].per_pattern[PATTERNS[0]] - acc_by_hand) <= 1 / len(zs_test) + 1e-9, \
    "verbalizer_scores and prompts.zero_shot disagree"
print(f"your scores and prompts.zero_shot, first pattern raw: {acc_by_hand:.1%} and "
      f"{zs_mlm[False].per_pattern[PATTERNS[0]]:.1%}")
log_zero_shot("acc_zero_shot_mlm", zs_mlm[True], MLM)

# %% [markdown]
# Notebook 03 pre-trains the course's own small BERT, `course-bert`. If you ran it, the
# same table for that model follows (it has its own vocabulary, so the verbalizer must be
# in it); if not, the cell says so and moves on.

# %%
if models.local_path("course-bert") is not None:
    cb_model, cb_tok = models.load("course-bert", task="masked-lm")
    try:
        zero_shot_table(cb_model.to(dev), cb_tok, "course-bert")
    except ValueError as e:
        print("course-bert:", e)
    del cb_model
else:
    print("course-bert not found (run notebook 03 to make it): showing tiny-mlm only")

# %% [markdown]
# ### 2b · The causal LM (the "prefix" route)
#
# A left-to-right LM cannot fill a blank in the middle, but with the blank at the end it
# does not need to: it reads *"<review> It was"* and we compare how likely it finds
# *" great"* and *" terrible"* as the next word. `prompts.causal_scores` does this with
# one trick worth knowing: the review is read **once**, and the model's memory of it (the
# key/value cache) is reused for every pattern and every label. A word of several tokens
# is scored as the sum of its tokens' log-probabilities, read on top of the same cache.

# %%
if PROFILE == "smoke":     # loading SmolLM2 is too slow for CI: a tiny random stand-in
    torch.manual_seed(0)
    lm_tok = mlm_tok
    lm = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=len(lm_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2))
    print("smoke: a tiny random causal LM stands in for smollm2 (no quality claims)")
else:
    t0 = time.perf_counter()
    lm, lm_tok = models.load(CAUSAL_LM, task="causal-lm", profile=PROFILE)
    print(f"{CAUSAL_LM}: {models.count_parameters(lm):,} parameters, loaded in "
          f"{time.perf_counter() - t0:.0f}s")
lm.to(dev).eval()
t0 = time.perf_counter()
zs_lm = zero_shot_table(lm, lm_tok, CAUSAL_LM)
print(f"(scored in {time.perf_counter() - t0:.0f}s)")

# %% [markdown]
# The headline, as chosen above: the causal LM, three patterns averaged, calibrated, on
# the zero-shot slice and read against that slice's majority class.

# %%
acc_zero_shot = log_zero_shot("acc_zero_shot", zs_lm[True], CAUSAL_LM)
print(f"acc_zero_shot = {acc_zero_shot:.1%} (causal LM, patterns averaged, calibrated) vs "
      f"majority class {majority:.1%} on {ZS_SET}; masked-LM cloze {zs_mlm[True].accuracy:.1%}")

fig, ax = plt.subplots(figsize=(7, 3.2))
names, accs = [], []
for label, z in ((MLM, zs_mlm), (CAUSAL_LM, zs_lm)):
    for c in (False, True):
        names.append(f"{label}\n{'calibrated' if c else 'raw'}")
        accs.append(z[c].accuracy)
ax.bar(names, accs, color=["tab:blue", "tab:blue", "tab:green", "tab:green"], alpha=0.8)
ax.axhline(majority, color="black", ls="--", label=f"majority class of {ZS_SET}")
ax.set_ylim(0.3, 1)
ax.set_ylabel("zero-shot accuracy")
ax.set_title(f"Zero-shot, three patterns averaged ({ZS_SET})")
ax.legend()
plt.show()

# %% [markdown]
# A look at single reviews: the probability each model gives "great" against
# "terrible" (calibrated, patterns averaged).

# %%
p_mlm = np.exp(zs_mlm[True].scores[:, 1])
p_lm = np.exp(zs_lm[True].scores[:, 1])
print(f"{'review':70s} {'gold':>5s} {MLM + ' P(great)':>18s} {CAUSAL_LM + ' P(great)':>18s}")
for i in range(min(8, len(zs_test))):
    text = zs_test[i]["text"]
    text = text if len(text) <= 68 else text[:65] + "..."
    print(f"{text:70s} {VERBALIZER[zs_test[i]['label']]:>5.5s} {p_mlm[i]:18.2f} {p_lm[i]:18.2f}")

# %% [markdown]
# Why the two models differ. A cloze can only use what pre-training put in the model.
# `tiny-mlm` is small and was tuned for search (SPLADE), not for filling blanks: its
# guesses in section 1 are not words of praise or blame. SmolLM2 has read far more text,
# and its next-word probabilities carry some sentiment. Calibration makes the two labels
# equally likely *a priori*: that helps when the model's tilt is wrong, and costs accuracy
# when the test set is unbalanced and the tilt happened to match it. What happened here:

# %%
def verdict(name, z):
    for c, label in ((False, "raw"), (True, "calibrated")):
        single = len(set(z[c].predictions.tolist())) == 1
        side = ("one class for every review" if single else
                "above" if z[c].accuracy > majority else "not above")
        print(f"{name:9s} {label:10s} {z[c].accuracy:6.1%}: {side} (majority class "
              f"{majority:.1%}); best single pattern {max(z[c].per_pattern.values()):.1%}")


verdict(MLM, zs_mlm)
verdict(CAUSAL_LM, zs_lm)

# %% [markdown]
# ### Try your own pattern
#
# In JupyterLab, the editor below scores a pattern and verbalizer of your choice on the
# first 100 sentences of the zero-shot slice as you click. It calls `try_prompt`, which is
# an ordinary function: the cell after it calls it directly (that is also what runs
# headless).

# %%
def try_prompt(pattern: str, negative: str, positive: str, calibrated: bool = True,
               model: str = "causal LM", n: int = 100) -> str:
    """Zero-shot accuracy of one pattern and verbalizer on the first `n` slice sentences."""
    m, tok = (lm, lm_tok) if model == "causal LM" else (mlm_model, mlm_tok)
    subset = zs_test.select(range(min(n, len(zs_test))))
    try:
        z = prompts.zero_shot(m, tok, subset["text"], subset["label"], [pattern],
                              (negative, positive), calibrated=calibrated,
                              max_length=MAX_LENGTH)
    except ValueError as e:
        return f"cannot score this prompt: {e}"
    return (f"{model}, {pattern!r}, {negative}/{positive}, "
            f"{'calibrated' if calibrated else 'raw'}: {z.accuracy:.1%} on {len(subset)} "
            f"sentences (majority class {protocol.majority(PROFILE, subset['label']):.1%}, "
            f"{np.mean(z.predictions):.0%} predicted positive)")


def prompt_editor():
    """An ipywidgets editor around try_prompt; None when there is no frontend."""
    from labkit.progress import in_notebook, is_headless
    if is_headless() or not in_notebook():
        return None
    try:
        import ipywidgets as w
    except ImportError:
        return None
    pattern = w.Text(value="{text} Overall, the movie was [MASK].", description="pattern",
                     layout=w.Layout(width="60%"))
    neg, pos = w.Text(value="bad", description="negative"), w.Text(value="good", description="positive")
    which = w.Dropdown(options=["causal LM", "masked LM"], description="model")
    cal = w.Checkbox(value=True, description="calibrate")
    button, out = w.Button(description="score"), w.Output()

    def on_click(_):
        out.clear_output()
        with out:
            print("scoring...")
            msg = try_prompt(pattern.value, neg.value, pos.value, cal.value, which.value)
            out.clear_output()
            print(msg)

    button.on_click(on_click)
    box = w.VBox([pattern, w.HBox([neg, pos]), w.HBox([which, cal, button]), out])
    display(box)
    return box


editor = prompt_editor()
if editor is None:
    print("(no notebook frontend: the editor is not shown; try_prompt is called below)")

# %%
print(try_prompt("{text} Overall, the movie was [MASK].", "bad", "good",
                 n=choose(PROFILE, smoke=24, quick=100)))

# %% [markdown]
# ## 3 · Few-shot: prompt fine-tuning against head fine-tuning
#
# Now give both approaches the same few labels and train every weight.
#
# * **Head fine-tuning** (notebook 04, `finetune.build_classifier`): the masked-LM head is
#   dropped; a new pooler and a random 2-way classifier go on top of the encoder.
# * **Prompt fine-tuning** (PET): keep the masked-LM head and the pattern, and train the
#   model to put the right verbalizer word at the mask: cross-entropy over the logits of
#   "terrible" and "great" at the mask position (the scores of exercise 07.1).
#   `prompts.ClozeClassifier` wraps the masked LM so it looks like any classifier, so the
#   very same `finetune.fit_classifier` trains both.
#
# Why should the prompt help with few labels? Look at what the "classifier" of a
# `ClozeClassifier` is: the hidden state at the mask goes through the masked-LM transform
# and is compared with the output embeddings of "terrible" and "great", which are the
# **word embeddings** of those words (the weights are tied). The head-fine-tuned model
# starts from a random matrix; the prompt-fine-tuned one starts from the two words'
# vectors, in a position the model was trained to predict. PET's premise is that those
# vectors already mean "bad" and "good" in a model whose cloze works (RoBERTa-large and
# ALBERT in Schick & Schütze; RoBERTa-large in Le Scao & Rush): then the head start is
# worth most when labels are few. Section 1 checked that premise on our model, and the
# zero-shot table scored it; where it fails, the prompt starts from two word vectors
# that training must still aim, and there is little head start to measure.

# %%
clf_base, _ = models.load(MLM, task="sequence-classification", num_labels=2, profile=PROFILE)
splits = {"train": reviews["train"],
          "validation": reviews["validation"].select(range(protocol.VALIDATION_ROWS[PROFILE])),
          "test": test_rows}
cloze = {k: prompts.tokenize(v, mlm_tok, PATTERNS[0], max_length=MAX_LENGTH)
         for k, v in splits.items()}
plain = {k: finetune.tokenize(v, mlm_tok, max_length=MAX_LENGTH) for k, v in splits.items()}
a, b = data.sample(cloze["train"], 32, seed=0), data.sample(plain["train"], 32, seed=0)
assert a["label"] == b["label"]
print("the same 32 reviews for both methods; the first, as each one sees it:")
print("  prompt:", mlm_tok.decode(a[0]["input_ids"]))
print("  head:  ", mlm_tok.decode(b[0]["input_ids"]))
head_new = finetune.head(finetune.build_classifier(clf_base, seed=0)[0])
print(f"parameters that start random: head fine-tuning "
      f"{sum(p.numel() for p in head_new.parameters()):,} in the classifier (plus the "
      f"pooler, which a masked-LM checkpoint lacks); prompt fine-tuning 0")

# %% [markdown]
# The training recipe is the same for both and fixed in advance: AdamW at `LR`, batches
# of 16 grouped by length, three passes over the labels but at least 50 steps, and the
# weights scored are picked by the course's one rule (`protocol.fit_options`: the best of
# four checkpoints on the protocol's validation rows), as in notebooks 04-06, so notebook 09
# compares like with like. (With 32 real labels a large validation set is a luxury you
# would not have, Perez et al. 2021; here it is kept so every notebook selects alike.)
# Every budget is drawn with `data.sample(pool, n, seed=s)`, so both methods see the same
# reviews for each seed.
# Each run is scored on the fixed test set with `protocol.score` (no autograd, batches of
# similar lengths) and logged with `protocol.log_accuracy`: its label budget, model, seed,
# trained parameters and wall time, and which test rows it got right.
#
# `LR = 1e-4` was checked on validation sentences (not the test set) before the runs
# below: at 32 labels, 1e-4, 3e-4 and 1e-3 gave both methods about the same accuracy.

# %%
LR = 1e-4
TRAIN = dict(lr=LR, epochs=3, min_steps=choose(PROFILE, smoke=3, quick=50),
             batch_size=16, **protocol.fit_options(PROFILE))


def learning_curve(strategy, metric, make_model, rows):
    """Fine-tune a fresh model per budget and seed, score it on the fixed test set and log
    it through the protocol; one row per run."""
    out = []
    for n in BUDGETS:
        for s in SEEDS:
            model = make_model(s)
            res = finetune.fit_classifier(model, data.sample(rows["train"], n, seed=s),
                                          validation=rows["validation"], seed=s,
                                          desc=f"{strategy} n={n} seed={s}", **TRAIN)
            correct = protocol.score(model, rows["test"])
            acc = protocol.log_accuracy(run, f"{metric}@{n}", correct, budget=n, model=MLM,
                                        seed=s, trainable=res.trainable, wall_s=res.seconds)
            out.append({"strategy": strategy, "n": n, "seed": s, "accuracy": acc,
                        "correct": correct})
            del model, res
    return out


t0 = time.perf_counter()
prompt_rows = learning_curve(
    "prompt fine-tuning", "acc_prompt_ft",
    lambda s: prompts.ClozeClassifier(copy.deepcopy(mlm_model), mlm_tok, VERBALIZER), cloze)
t1 = time.perf_counter()
head_rows = learning_curve(
    "head fine-tuning", "acc_head_ft",
    lambda s: finetune.build_classifier(clf_base, seed=s)[0], plain)
print(f"{len(prompt_rows)} prompt runs in {t1 - t0:.0f}s, {len(head_rows)} head runs in "
      f"{time.perf_counter() - t1:.0f}s")

# %%
rows = prompt_rows + head_rows
summary = finetune.summarize(rows)
print(f"test accuracy on {TEST_SET} ({len(test_rows):,} sentences, majority class "
      f"{acc_majority:.1%}), mean ± std over seeds {SEEDS}")
print(f"{'labels':>7s} {'prompt fine-tuning':>22s} {'head fine-tuning':>20s}   per seed (prompt | head)")
for n in BUDGETS:
    p = next(r for r in summary if r["strategy"] == "prompt fine-tuning" and r["n"] == n)
    h = next(r for r in summary if r["strategy"] == "head fine-tuning" and r["n"] == n)
    ps = " ".join(f"{r['accuracy']:.3f}" for r in prompt_rows if r["n"] == n)
    hs = " ".join(f"{r['accuracy']:.3f}" for r in head_rows if r["n"] == n)
    print(f"{n:7d} {p['mean']:15.1%} ± {p['std']:.1%} {h['mean']:13.1%} ± {h['std']:.1%}"
          f"   {ps} | {hs}")

ax = finetune.plot_curve(rows, title=f"{MLM}: prompt vs head fine-tuning ({TEST_SET})")
ax.axhline(acc_majority, color="gray", ls=":", label=f"majority class of {TEST_SET}")
ax.legend()
plt.show()

# %% [markdown]
# Read the table against the majority-class line of the same test set: a mean below it
# means that budget taught the model less than always answering the commoner label (the
# label budgets are balanced, the test set is not). The cell below says, per budget, the
# balanced accuracy of each method (chance 50%, whatever the test set's balance) and the
# difference between them with its 95% interval over seeds and test rows.

# %%
for n in BUDGETS:
    p_runs = [r for r in prompt_rows if r["n"] == n]
    h_runs = [r for r in head_rows if r["n"] == n]
    bal = [np.mean([protocol.balanced_accuracy(r["correct"], test_rows["label"]) for r in x])
           for x in (p_runs, h_runs)]
    d = compare.versus_runs(p_runs, h_runs, TEST_SET)
    print(f"{n:5d} labels: balanced accuracy prompt {bal[0]:.1%}, head {bal[1]:.1%}; "
          + d.sentence("prompt", "head"))

# %% [markdown]
# ## 4 · How many data points is a prompt worth?
#
# Le Scao & Rush (NAACL 2021) turned "prompts help with few labels" into one number.
# Draw both learning curves (mean accuracy against labels). Pick an accuracy that both
# reach: read off how many labels each method needs to get there, and take the
# difference. That **horizontal gap** is what the prompt saved at that accuracy. Average
# it over every accuracy both curves reach (the area between the curves, measured
# sideways, divided by the height of the shared range): that is how many labelled examples
# the prompt is worth.
#
# ### Your turn 07.2 · The horizontal gap
#
# Write `prompt_worth(prompt_curve, head_curve)`. Each curve is a dict
# `{label budget: mean accuracy}`, **in any order**. Return the mean horizontal gap
# (labels the head needs minus labels the prompt needs), a float. You may use
# `prompts.labels_needed(curve, levels)`: for each accuracy in `levels`, the budget at
# which the curve (joined by straight lines) first reaches it.
#
# * A dip does not undo an accuracy already reached: each curve's range runs from its
#   first accuracy to its **best** one (its running maximum), not to its last one.
# * Only the accuracies that **both** curves reach count: from the higher of the two
#   starting accuracies to the lower of the two best ones. Average the gap over a fine,
#   even grid of that range (about 2,000 levels).
# * If the curves share no accuracy range (one is above the other everywhere), the gap
#   is undefined: raise a `ValueError`.

# %%
def prompt_worth(prompt_curve, head_curve):
    """Mean horizontal gap (labels) between two {budget: accuracy} curves."""
    ### BEGIN SOLUTION
    ends = []
    for curve in (prompt_curve, head_curve):
        accs = np.maximum.accumulate([curve[n] for n in sorted(curve)])
        ends.append((accs[0], accs[-1]))
    low, high = max(e[0] for e in ends), min(e[1] for e in ends)
    if not high > low:
        raise ValueError("the curves share no accuracy range: the gap is undefined")
    levels = np.linspace(low, high, 2001)
    gap = prompts.labels_needed(head_curve, levels) - prompts.labels_needed(prompt_curve, levels)
    return float(gap.mean())
    ### END SOLUTION


prompt_worth = checks.run("07.2", prompt_worth)

# %% [markdown]
# Your function on this notebook's mean curves; `prompts.data_points_worth` draws the gap.

# %%
prompt_curve = prompts.curve_from_rows(summary, "prompt fine-tuning")
head_curve = prompts.curve_from_rows(summary, "head fine-tuning")
try:
    worth_examples = prompt_worth(prompt_curve, head_curve)
except ValueError as e:
    worth_examples = None
    print("no shared accuracy range:", e)
if worth_examples is not None:
    worth = prompts.data_points_worth(prompt_curve, head_curve)
    print(f"a prompt is worth {worth_examples:,.0f} labelled examples (your prompt_worth; "
          f"mean horizontal gap over accuracies {worth.low:.1%}-{worth.high:.1%})")
    for q in (0.0, 0.5, 1.0):
        i = int(q * (len(worth.levels) - 1))
        print(f"  at {worth.levels[i]:.1%}: prompt needs {worth.n_prompt[i]:6.1f} labels, "
              f"head {worth.n_head[i]:6.1f}")
    run.log("prompt_worth_examples", worth_examples, test_set=TEST_SET)
    prompts.plot_worth(prompt_curve, head_curve, worth)
    plt.title("The horizontal gap between the mean curves")
    plt.show()

# %% [markdown]
# How stable is that number? The same measure on each seed's own pair of curves
# (not logged: the headline uses the mean curves, as in the paper):

# %%
per_seed_worth = {}
for s in SEEDS:
    pc = {r["n"]: r["accuracy"] for r in prompt_rows if r["seed"] == s}
    hc = {r["n"]: r["accuracy"] for r in head_rows if r["seed"] == s}
    try:
        per_seed_worth[s] = prompt_worth(pc, hc)
        print(f"seed {s}: {per_seed_worth[s]:8.1f} examples")
    except ValueError as e:
        print(f"seed {s}: undefined ({str(e).split(':')[0]})")

# %% [markdown]
# Reading the number. Le Scao & Rush measured this gap for RoBERTa-large on SuperGLUE and
# MNLI and found prompts worth from under a hundred to a few thousand examples depending
# on the task (and a negative worth on one, WiC). Ours comes from a model of a few million parameters
# whose two curves sit close together, with seed spreads of about the size of the gap
# between them, and which can sit below the majority-class line at small budgets (the
# verdicts of section 3 say where): read it as an order of magnitude, not a constant (the
# per-seed values above show how much it moves). It also
# depends on the budgets measured: the shared accuracy range ends where the lower curve
# stops, so adding larger budgets (the `full` profile) lets the comparison reach higher
# accuracies.

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
# **Think.** The model reads each review through the pattern and its two verbalizer words.
# For which of these errors would the cloze question itself be hard for a person to
# answer? Would another pattern or verbalizer help, or only more labels?

# %% [markdown]
# ## The lesson, checked
#
# The bars of this notebook (quick and full; smoke only runs the code): with no labels
# at all, the zero-shot headline route beats always answering the majority class of the
# slice it was scored on; and at 32 labels, prompt fine-tuning is compared with head
# fine-tuning of the same model (over the notebook's seeds, on the fixed test set, in
# balanced accuracy) with a 95% interval over seeds and test rows: a direction is
# asserted only if that interval excludes 0, otherwise the notebook must say "not
# resolved at this size".

# %%
y_test = test_rows["label"]
d32 = None
if 32 in BUDGETS:
    d32 = compare.versus_runs([r for r in prompt_rows if r["n"] == 32],
                              [r for r in head_rows if r["n"] == 32], TEST_SET)
print(f"zero-shot ({CAUSAL_LM}, averaged, calibrated) {acc_zero_shot:.1%} vs majority "
      f"{majority:.1%} on {ZS_SET}; masked-LM cloze {zs_mlm[True].accuracy:.1%}")
if d32 is not None:
    for name, part in (("prompt fine-tuning", prompt_rows), ("head fine-tuning", head_rows)):
        bal = np.mean([protocol.balanced_accuracy(r["correct"], y_test) for r in part
                       if r["n"] == 32])
        print(f"32 labels on {TEST_SET}, {name}: balanced accuracy {bal:.1%} (chance 50%)")
    verdict32 = d32.sentence("prompt fine-tuning", "head fine-tuning") + " at 32 labels"
    print(verdict32)
if worth_examples is not None:
    print(f"a prompt is worth {worth_examples:,.0f} examples on these mean curves "
          "(read with the per-seed values above)")
if PROFILE != "smoke":
    assert acc_zero_shot > majority, (acc_zero_shot, majority)
    prompt_32 = compare.between(run, "acc_prompt_ft@32", "acc_head_ft@32")
    print("32 labels, as logged:", prompt_32.sentence("prompt fine-tuning", "head fine-tuning"))
    assert prompt_32.verdict != "worse", prompt_32      # a resolved claim, or "not resolved"
print(f"notebook wall time {time.perf_counter() - started:.0f}s ({PROFILE})")

# %% [markdown]
# ## Key takeaways
#
# * A pattern and a verbalizer turn classification into the pre-training question; the
#   score of a label is the model's logit for its word at the mask (or, for a causal LM,
#   the likelihood of the word as the continuation). No new weights are needed.
# * Zero-shot prompting works only when pre-training put the knowledge in the model: the
#   small masked LM cannot answer the cloze, the larger causal LM can, and calibration
#   decides how much of that shows.
# * With few labels, starting from the verbalizer words' embeddings (prompt fine-tuning) is
#   PET's head start over a random head, and it is only as good as the meaning the model
#   already gives those words at the blank (check it with fill-mask first); the
#   horizontal gap between the two learning curves says how many labels it is worth.
# * Read every accuracy against the majority class of the same test rows, and every
#   difference against the seed spread: at small budgets both methods can sit at or below
#   that line.
#
# ## Check your understanding

# %%
q = quiz.ask("07")

# %% [markdown]
# ## What to try next
#
# * **Verbalizers matter.** Try *good/bad*, *fantastic/awful* or *yes/no* in the editor;
#   LM-BFF (Gao et al. 2021) searches for them automatically.
# * **More patterns in few-shot.** Prompt-fine-tune with each of the three patterns and
#   average their predictions (PET's ensemble), or distil them into one classifier.
# * **Put the prompt in the causal LM's own format.** SmolLM2 is an *instruct* model: wrap
#   the review in its chat template ("Is this review positive or negative?") and compare.
# * **A bigger masked LM.** Run the `full` profile with the hub reachable: `bert-base`
#   (110M parameters, a real masked-LM head) is the regime where zero-shot cloze starts to
#   work and Le Scao & Rush measured prompts worth hundreds of examples.
# * **Notebook 08** keeps every pre-trained weight frozen and learns a few new ones
#   instead (LoRA, adapters and *prompt tuning*, where the prompt itself is learned).
#
# ## References
#
# * Schick & Schütze 2021, "Exploiting Cloze Questions for Few Shot Text Classification
#   and Natural Language Inference", EACL 2021, `arXiv:2001.07676` (PET).
# * Le Scao & Rush 2021, "How Many Data Points is a Prompt Worth?", NAACL 2021,
#   `arXiv:2103.08493`.
# * Gao, Fisch & Chen 2021, "Making Pre-trained Language Models Better Few-shot Learners",
#   ACL 2021, `arXiv:2012.15723` (LM-BFF).
# * Zhao, Wallace, Feng, Klein & Singh 2021, "Calibrate Before Use: Improving Few-Shot
#   Performance of Language Models", ICML 2021, `arXiv:2102.09690`.
# * Perez, Kiela & Cho 2021, "True Few-Shot Learning with Language Models", NeurIPS 2021,
#   `arXiv:2105.11447`.
# * Devlin, Chang, Lee & Toutanova 2019, "BERT: Pre-training of Deep Bidirectional
#   Transformers for Language Understanding", NAACL 2019, `arXiv:1810.04805`.
# * Allal et al. 2025, "SmolLM2: When Smol Goes Big", `arXiv:2502.02737`.

# %%
run.finish()   # close this run in the ledger: only a notebook that ran to its end counts
