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

from labkit import checks, data, device, finetune, hub, ledger, mlm, models, prompts
from labkit.metrics import mean_std
from labkit.profile import check, choose

check(PROFILE)
started = time.perf_counter()
datasets.disable_progress_bars()
transformers.logging.set_verbosity_error()    # the checkpoints' load reports are explained in prose
device.seed_everything(SEED)
dev = device.pick()
run = ledger.Run("07_prompt_cloze", profile=PROFILE, seed=SEED, device=dev)

# %% [markdown]
# ## The plan, fixed before any number is computed
#
# **Which model.** Prompting needs a model with a masked-LM head. Offline we have one
# real one: `tiny-mlm` (2 layers, hidden 128, 4.4M parameters, BERT's vocabulary, its
# output layer tied to the word embeddings). `minilm`, our strongest encoder, has no
# masked-LM head (see notebook 00), so it cannot fill a blank. The `full` profile takes
# `bert-base` from the hub when it answers. Both few-shot methods below run on the
# **same** masked LM, so the comparison is fair. The causal LM is `smollm2`
# (SmolLM2-135M-Instruct).
#
# **Which zero-shot number is the headline (`acc_zero_shot`).** Measured before this
# notebook was written (`OFFLINE_SOURCES.md`): no offline masked LM gets beyond the
# majority class in a zero-shot cloze, before or after repairing its head. So the best
# zero-shot route this notebook teaches, offline, is the **causal LM**, and with no labels
# to choose a pattern or to check a calibration, it uses everything that needs no labels:
# **all three patterns averaged, calibrated** with the content-free input "N/A".
# `acc_zero_shot` is that number, in every profile. The masked-LM cloze and every other
# variant are reported beside it (`acc_zero_shot_mlm`, the tables below), never swapped in.
#
# **Test data.** Every method is scored on the same fixed slice of the 2,000 test
# sentences: the first `ZS_TEST` of them for zero-shot (the causal LM is the slow part),
# the first `FS_TEST` (a superset) for few-shot. The test file's rows are in random order,
# so a head slice is a random sample; its majority class is the baseline.

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
FS_TEST = choose(PROFILE, smoke=32, quick=500, full=2000)
BUDGETS = choose(PROFILE, smoke=(8, 16), quick=(8, 16, 32, 64, 128, 256, 512),
                 full=(8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096))
SEEDS = choose(PROFILE, smoke=(0,), quick=(0, 1, 2), full=(0, 1, 2, 3, 4))
MAX_LENGTH = 64
print(f"profile {PROFILE}: masked LM {MLM}, causal LM {CAUSAL_LM}; zero-shot on "
      f"{ZS_TEST} test sentences, few-shot on {FS_TEST}; budgets {BUDGETS}, seeds {SEEDS}")

reviews = data.load("movie_reviews", profile=PROFILE)
zs_test = reviews["test"].select(range(ZS_TEST))
fs_test = reviews["test"].select(range(FS_TEST))
majority = prompts.majority_accuracy(zs_test["label"])
print(f"zero-shot slice: {ZS_TEST} sentences, {np.mean(zs_test['label']):.1%} positive -> "
      f"majority-class accuracy {majority:.1%}")
print(f"few-shot slice:  {FS_TEST} sentences, majority-class accuracy "
      f"{prompts.majority_accuracy(fs_test['label']):.1%}")
run.log("acc_majority", majority)

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
# blank holds one token. `prompts.tokenize` fills the pattern and, when a review is too
# long, shortens the review, never the pattern: losing the `[MASK]` would lose the
# question.

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
# ## 2 · Zero-shot: no labels at all
#
# ### 2a · The masked LM (cloze)
#
# The score of a label is how strongly the model predicts its word at the mask (its logit;
# a softmax over the labels turns the scores into probabilities). `prompts.zero_shot`
# scores each pattern, turns each pattern's scores into probabilities over the two labels
# and averages them (an ensemble: with no labels there is no way to pick the best
# pattern). It also reports each pattern alone.
#
# **Calibration** (Zhao et al. 2021). A model may prefer "great" whatever it reads. Feed it
# a content-free input, "N/A It was [MASK].", and that preference is all it can express;
# subtracting those scores from every review's puts the two words on an equal footing.
# It is a label-free correction, so it fits zero-shot.

# %%
def zero_shot_table(model, tok, name):
    """Zero-shot accuracy of each pattern and of the ensemble, raw and calibrated."""
    out = {}
    for calibrated in (False, True):
        z = prompts.zero_shot(model, tok, zs_test["text"], zs_test["label"], PATTERNS,
                              VERBALIZER, calibrated=calibrated, max_length=MAX_LENGTH)
        out[calibrated] = z
    print(f"{name}: zero-shot accuracy on {ZS_TEST} test sentences (majority class "
          f"{majority:.1%})")
    print(f"  {'pattern':42s} {'raw':>7s} {'calibrated':>11s}")
    for p in PATTERNS:
        print(f"  {p:42s} {out[False].per_pattern[p]:7.1%} {out[True].per_pattern[p]:11.1%}")
    print(f"  {'all three, averaged':42s} {out[False].accuracy:7.1%} {out[True].accuracy:11.1%}")
    share = {c: np.mean(out[c].predictions) for c in out}
    print(f"  share predicted positive: raw {share[False]:.0%}, calibrated {share[True]:.0%}")
    return out


zs_mlm = zero_shot_table(mlm_model, mlm_tok, MLM)
run.log("acc_zero_shot_mlm", zs_mlm[True].accuracy, model=MLM)

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
# key/value cache) is reused for every pattern and every label.

# %%
if PROFILE == "smoke":     # a 23 s load is too slow for CI: a tiny random stand-in
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
# The headline, as fixed above: the causal LM, three patterns averaged, calibrated.

# %%
acc_zero_shot = zs_lm[True].accuracy
run.log("acc_zero_shot", acc_zero_shot, model=CAUSAL_LM)   # the route chosen in advance
print(f"acc_zero_shot = {acc_zero_shot:.1%} (causal LM, patterns averaged, calibrated) vs "
      f"majority class {majority:.1%}; masked-LM cloze {zs_mlm[True].accuracy:.1%}")

fig, ax = plt.subplots(figsize=(7, 3.2))
names, accs = [], []
for label, z in ((MLM, zs_mlm), (CAUSAL_LM, zs_lm)):
    for c in (False, True):
        names.append(f"{label}\n{'calibrated' if c else 'raw'}")
        accs.append(z[c].accuracy)
ax.bar(names, accs, color=["tab:blue", "tab:blue", "tab:green", "tab:green"], alpha=0.8)
ax.axhline(majority, color="black", ls="--", label=f"majority class {majority:.0%}")
ax.set_ylim(0.3, 1)
ax.set_ylabel("zero-shot accuracy")
ax.set_title("Zero-shot, three patterns averaged")
ax.legend()
plt.show()

# %% [markdown]
# A look at single reviews: the probability each model gives "great" against
# "terrible" (calibrated, patterns averaged).

# %%
p_mlm = np.exp(zs_mlm[True].scores[:, 1])
p_lm = np.exp(zs_lm[True].scores[:, 1])
print(f"{'review':70s} {'gold':>5s} {MLM + ' P(great)':>18s} {CAUSAL_LM + ' P(great)':>18s}")
for i in range(8):
    text = zs_test[i]["text"]
    text = text if len(text) <= 68 else text[:65] + "..."
    print(f"{text:70s} {VERBALIZER[zs_test[i]['label']]:>5.5s} {p_mlm[i]:18.2f} {p_lm[i]:18.2f}")

# %% [markdown]
# Why the two models differ. A cloze can only use what pre-training put in the model.
# `tiny-mlm` is small and was tuned for search (SPLADE), not for filling blanks: its
# guesses in section 1 are not words of praise or blame, and before this notebook was
# written every offline masked LM was measured at the majority-class level in this very
# test. SmolLM2 has read far more text, and its next-word probabilities carry some
# sentiment. Calibration makes the two labels equally likely *a priori*: that helps when
# the model's tilt is wrong, and costs accuracy when the test set is unbalanced and the
# tilt happened to match it. What happened here:

# %%
def verdict(name, z):
    for c, label in ((False, "raw"), (True, "calibrated")):
        side = "above" if z[c].accuracy > majority else "not above"
        print(f"{name:9s} {label:10s} {z[c].accuracy:6.1%}: {side} the majority class "
              f"({majority:.1%}); best single pattern {max(z[c].per_pattern.values()):.1%}")


verdict(MLM, zs_mlm)
verdict(CAUSAL_LM, zs_lm)

# %% [markdown]
# ### Try your own pattern
#
# In JupyterLab, the editor below scores a pattern and verbalizer of your choice on the
# first 100 test sentences as you click. It calls `try_prompt`, which is an ordinary
# function: the cell after it calls it directly (that is also what runs headless).

# %%
def try_prompt(pattern: str, negative: str, positive: str, calibrated: bool = True,
               model: str = "causal LM", n: int = 100) -> str:
    """Zero-shot accuracy of one pattern and verbalizer on the first `n` test sentences."""
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
            f"sentences (majority {prompts.majority_accuracy(subset['label']):.1%}, "
            f"{np.mean(z.predictions):.0%} predicted positive)")


def prompt_editor():
    """An ipywidgets editor around try_prompt; None when there is no frontend."""
    from labkit.progress import in_notebook, is_headless
    if is_headless() or not in_notebook():
        return None
    try:
        import ipywidgets as w
        from IPython.display import display
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
#   "terrible" and "great" at the mask position. `prompts.ClozeClassifier` wraps the
#   masked LM so it looks like any classifier, so the very same `finetune.fit_classifier`
#   and `finetune.learning_curve` train both.
#
# Why should the prompt help with few labels? Look at what the "classifier" of a
# `ClozeClassifier` is: the hidden state at the mask goes through the masked-LM transform
# and is compared with the output embeddings of "terrible" and "great", which are the
# **word embeddings** of those words (the weights are tied). The head-fine-tuned model
# starts from a random matrix; the prompt-fine-tuned one starts from two vectors that
# already mean "bad" and "good", in a position the model was trained to predict. That
# head start is worth most when labels are few.

# %%
clf_base, _ = models.load(MLM, task="sequence-classification", num_labels=2, profile=PROFILE)
splits = {"train": reviews["train"], "validation": reviews["validation"].select(range(100)),
          "test": fs_test}
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
# of 16, three passes over the labels but at least 50 steps, no model selection (one
# evaluation on 100 validation sentences at the end; with 32 labels a large validation
# set would be a luxury you do not have, Perez et al. 2021). Every budget is drawn with
# `data.sample(pool, n, seed=s)`, so both methods see the same reviews for each seed.

# %% [markdown]
# `LR = 1e-4` was checked on validation sentences (not the test slice) before the runs
# below: at 32 labels, 1e-4, 3e-4 and 1e-3 gave both methods about the same accuracy.

# %%
LR = 1e-4
TRAIN = dict(lr=LR, epochs=3, min_steps=choose(PROFILE, smoke=3, quick=50),
             batch_size=16, evals=1, eval_batch_size=128)


def logger(metric):
    def log(row):
        run.log(f"{metric}@{row['n']}", row["accuracy"], seed=row["seed"], model=MLM)
    return log


t0 = time.perf_counter()
prompt_rows = finetune.learning_curve(
    lambda s: prompts.ClozeClassifier(copy.deepcopy(mlm_model), mlm_tok, VERBALIZER),
    cloze["train"], BUDGETS, SEEDS, strategy="prompt fine-tuning",
    validation=cloze["validation"], test=cloze["test"], on_result=logger("acc_prompt_ft"),
    **TRAIN)
t1 = time.perf_counter()
head_rows = finetune.learning_curve(
    lambda s: finetune.build_classifier(clf_base, seed=s)[0],
    plain["train"], BUDGETS, SEEDS, strategy="head fine-tuning",
    validation=plain["validation"], test=plain["test"], on_result=logger("acc_head_ft"),
    **TRAIN)
print(f"{len(prompt_rows)} prompt runs in {t1 - t0:.0f}s, {len(head_rows)} head runs in "
      f"{time.perf_counter() - t1:.0f}s")

# %%
rows = prompt_rows + head_rows
summary = finetune.summarize(rows)
print(f"test accuracy on {FS_TEST} sentences, mean ± std over seeds {SEEDS}")
print(f"{'labels':>7s} {'prompt fine-tuning':>22s} {'head fine-tuning':>20s}   per seed (prompt | head)")
for n in BUDGETS:
    p = next(r for r in summary if r["strategy"] == "prompt fine-tuning" and r["n"] == n)
    h = next(r for r in summary if r["strategy"] == "head fine-tuning" and r["n"] == n)
    ps = " ".join(f"{r['accuracy']:.3f}" for r in prompt_rows if r["n"] == n)
    hs = " ".join(f"{r['accuracy']:.3f}" for r in head_rows if r["n"] == n)
    print(f"{n:7d} {p['mean']:15.1%} ± {p['std']:.1%} {h['mean']:13.1%} ± {h['std']:.1%}"
          f"   {ps} | {hs}")

ax = finetune.plot_curve(rows, title=f"{MLM}: prompt vs head fine-tuning")
ax.axhline(majority, color="gray", ls=":", label="majority class")
ax.axhline(acc_zero_shot, color="tab:red", ls="--",
           label=f"zero-shot {CAUSAL_LM} ({ZS_TEST} test sentences)")
ax.legend()
plt.show()

# %% [markdown]
# ## 4 · How many data points is a prompt worth?
#
# Le Scao & Rush (NAACL 2021) turned "prompts help with few labels" into one number.
# Draw both learning curves (mean accuracy against labels). Pick an accuracy that both
# reach, say 60%: read off how many labels each method needs to get there, and take the
# difference. That **horizontal gap** is what the prompt saved at that accuracy. Average
# it over every accuracy both curves reach (the area between the curves, measured
# sideways, divided by the height of the shared range): that is how many labelled examples
# the prompt is worth. Details that matter, all in `prompts.data_points_worth`:
#
# * the curves are the **means over seeds**, joined by straight lines;
# * a dip does not undo an accuracy already reached (the running maximum is used);
# * only the accuracy range that **both** curves reach counts; outside it, one method never
#   gets there and the gap is undefined.

# %%
prompt_curve = prompts.curve_from_rows(summary, "prompt fine-tuning")
head_curve = prompts.curve_from_rows(summary, "head fine-tuning")
try:
    worth = prompts.data_points_worth(prompt_curve, head_curve)
except ValueError as e:
    worth = None
    print("no shared accuracy range:", e)
if worth is not None:
    print(worth)
    for q in (0.0, 0.5, 1.0):
        i = int(q * (len(worth.levels) - 1))
        print(f"  at {worth.levels[i]:.1%}: prompt needs {worth.n_prompt[i]:6.1f} labels, "
              f"head {worth.n_head[i]:6.1f}")
    run.log("prompt_worth_examples", worth.examples)
    prompts.plot_worth(prompt_curve, head_curve, worth)
    plt.title("The horizontal gap between the mean curves")
    plt.show()

# %% [markdown]
# How stable is that number? The same measure on each seed's own pair of curves
# (not logged: the headline uses the mean curves, as in the paper):

# %%
for s in SEEDS:
    pc = {r["n"]: r["accuracy"] for r in prompt_rows if r["seed"] == s}
    hc = {r["n"]: r["accuracy"] for r in head_rows if r["seed"] == s}
    try:
        print(f"seed {s}: {prompts.data_points_worth(pc, hc).examples:8.1f} examples")
    except ValueError as e:
        print(f"seed {s}: undefined ({str(e).split(':')[0]})")

# %% [markdown]
# Reading the number. Le Scao & Rush measured this gap for RoBERTa-large on SuperGLUE and
# MNLI and found prompts worth from under a hundred to a few thousand examples depending
# on the task (and a negative worth on one, WiC).
# Ours comes from a 4.4M-parameter model whose curves sit a few points apart with seed
# spreads of the same size, so read it as an order of magnitude, not a constant: the
# per-seed values above show how much it moves. It also depends on the budgets measured:
# the shared accuracy range ends where the lower curve stops, so adding larger budgets
# (the `full` profile) lets the comparison reach higher accuracies.

# %% [markdown]
# ## Exercise
#
# Compute the measure by hand for two toy learning curves, then check:
#
# | labels | 10 | 20 | 40 | 80 |
# |---|---|---|---|---|
# | prompt fine-tuning | 60% | 70% | 80% | |
# | head fine-tuning | 50% | 60% | 70% | 80% |
#
# Which accuracies do both reach? At 60%, 70% and 80%, how many labels does each need?
# The gap changes linearly in between: what is its mean?

# %%
my_answer = None   # the number of labelled examples the prompt is worth
if my_answer is not None:
    checks.prompt_worth(my_answer)

# %% [markdown]
# ## The lesson, checked
#
# The bars of this notebook (quick and full; smoke only runs the code): with no labels
# at all, the pre-registered zero-shot route beats always answering the majority class;
# and at 32 labels, prompt fine-tuning beats head fine-tuning of the same model (mean over
# seeds). Whatever holds or not is printed as measured.

# %%
at32 = {s: next(r["mean"] for r in summary if r["strategy"] == s and r["n"] == 32)
        for s in ("prompt fine-tuning", "head fine-tuning")} if 32 in BUDGETS else {}
print(f"zero-shot ({CAUSAL_LM}, averaged, calibrated) {acc_zero_shot:.1%} vs majority "
      f"{majority:.1%}; masked-LM cloze {zs_mlm[True].accuracy:.1%}")
if at32:
    print(f"32 labels: prompt fine-tuning {at32['prompt fine-tuning']:.1%} vs head "
          f"fine-tuning {at32['head fine-tuning']:.1%}")
if worth is not None:
    print(worth)
if PROFILE != "smoke":
    assert acc_zero_shot > majority, (acc_zero_shot, majority)
    assert at32["prompt fine-tuning"] > at32["head fine-tuning"], at32
print(f"notebook wall time {time.perf_counter() - started:.0f}s ({PROFILE})")

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
