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
# # 10 · After pre-training: SFT, a reward model and best-of-n on a real small LLM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/labkit-course/labkit/blob/main/notebooks/10_alignment.ipynb)
#
# Notebooks 04-09 adapted a pre-trained model to a **task**: a label per sentence. A chat
# model's second life is different: after pre-training it is taught to **behave**, and
# behaviour has no single right answer per input, only better and worse ones. The recipe
# of InstructGPT (Ouyang et al. 2022), the model before ChatGPT, has three steps:
#
# 1. **supervised fine-tuning (SFT)** on demonstrations of the behaviour;
# 2. a **reward model** trained on people's rankings of the SFT model's own outputs
#    (Christiano et al. 2017; Stiennon et al. 2020);
# 3. **reinforcement learning** (PPO) against that reward, with a penalty on the KL
#    divergence from the SFT model so that the policy does not drift into text the
#    reward model was never trained on.
#
# This notebook takes the first two steps, and spends the reward model on **best-of-n**
# sampling; notebook 11 takes the third (on-policy RL, and DPO, which replaces it by one
# logistic loss on the pairs). It runs in miniature on **SmolLM2-135M-Instruct**, offline, on a
# CPU. The behaviour to teach is the classic demonstration of the RLHF papers: continue
# the opening words of a movie review **positively**.
#
# **You will be able to**
#
# * format demonstrations for SFT, with the loss on the answer only;
# * turn a model's own samples into preference pairs and train a reward model on them
#   with the Bradley-Terry loss;
# * compare models by the gain an independent judge sees, paired over the same prompts,
#   with an interval, and by how far each moved (the KL divergence).
#
# **Prerequisites**: notebook 04 (fine-tuning a classifier: the labeller here), 07 (the
# zero-shot prompt judge), 08 (LoRA on SmolLM2).

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
SEEDS = [0, 1, 2]                                     # the seeds the course reports

# %% [markdown]
# ## 0 · Set-up, and what each profile runs
#
# Everything below is sized for `quick` on one CPU core, where every sample costs a pass
# of SmolLM2 to write it and another to judge it: SFT gets `SFT_STEPS` steps,
# continuations are `MAX_NEW` tokens long, every model is judged on one continuation of
# each of `N_EVAL` prompts, and best-of-n, whose eight samples per prompt cost eight
# times one, on the first `N_POOL` of them. One run is one seed (`SEED`); each seed leaves its per-prompt judge
# scores in `runs/`, and the last cell pools the seeds of `SEEDS` that have run
# (`labkit run 10 --seed 1`, `--seed 2`). `smoke` swaps SmolLM2 for a tiny random Llama
# so that every code path runs in seconds; it claims nothing. `full` is for a GPU: the
# larger SmolLM2-360M-Instruct from the hub (the offline 135M model when the hub is out
# of reach), more judged prompts, longer continuations, more demonstrations and pairs.

# %%
import copy
import inspect
import time

if os.environ.get("LABKIT_HEADLESS") == "1":   # no progress bars when nobody watches
    os.environ.setdefault("TQDM_DISABLE", "1")

import matplotlib.pyplot as plt
import numpy as np
import torch
import transformers

from labkit import align, checks, course, data, device, finetune, ledger, models, peft, prompts, quiz, rl, train
from labkit.profile import check, choose

check(PROFILE)
course.header("10_alignment")
transformers.logging.set_verbosity_error()
started = time.perf_counter()
device.seed_everything(SEED)
dev = device.pick()
run = ledger.Run("10_alignment", profile=PROFILE, seed=SEED, device=dev)

PROMPT_WORDS = 4                                               # words of a review given as the prompt
MAX_NEW = choose(PROFILE, smoke=4, quick=8, full=32)           # tokens per continuation
N_EVAL = choose(PROFILE, smoke=8, quick=128, full=1_000)       # eval prompts (test split)
N_POOL = choose(PROFILE, smoke=4, quick=32, full=1_000)        # of them, with a best-of-n pool
N_KL = choose(PROFILE, smoke=4, quick=64, full=1_000)          # of them, where KL(SFT || base) is measured
N_SFT = choose(PROFILE, smoke=16, quick=512, full=3_000)       # positive demonstrations
SFT_STEPS = choose(PROFILE, smoke=2, quick=32, full=375)       # quick: half a pass; full: one pass
N_PREF = choose(PROFILE, smoke=8, quick=96, full=1_000)        # prompts to rank samples for
K = 4                                                          # samples per prompt to rank
POOL = 8                                                       # best-of-n pool per prompt
BATCH = 8                                                      # SFT sequences per step
LM = choose(PROFILE, smoke="tiny random Llama", quick="smollm2", full="smollm2-360m")   # policy and judge
LABELLER_LABELS = choose(PROFILE, smoke=32, quick=384, full=2_000)
MARGIN = choose(PROFILE, smoke=0.0, quick=0.2, full=0.2)      # smallest labeller gap that makes a pair
LORA = dict(r=8, alpha=16, target_modules=("q_proj", "k_proj", "v_proj", "o_proj"),
            modules_to_save=())
print(f"profile {PROFILE}, seed {SEED}: {N_EVAL} eval prompts, {MAX_NEW}-token continuations; "
      f"SFT {SFT_STEPS} steps on {N_SFT} demonstrations; {N_PREF} prompts x {K} samples ranked; "
      f"best-of-n from a pool of {POOL} on {N_POOL} prompts; device {dev.type}")

# %% [markdown]
# ## 1 · The task, the prompts and the two judges
#
# **Prompts** are the first `PROMPT_WORDS` words of review sentences ("A sensitive and
# astute ..."), written as `Movie review: <words>` for the model to continue. This is a
# *plain* prompt format, not SmolLM2's chat template: the behaviour is continuing a review,
# not answering a user, and the chat template's system prompt and role markers would be
# longer than the prompt and the answer together (counted below, when the model is
# loaded), which on a CPU is most of the cost. The words "Movie review:" matter: with a
# bare `Review:` the base model often wandered off to books and drinks when we tried it,
# and comparing it with a model that writes about films would then measure the topic,
# not the sentiment. The training prompts come from the train split, the evaluation
# prompts from the test split.
#
# Whether a continuation is positive is decided by two **different** models, on purpose:
#
# * the **labeller** ranks the samples that the reward model (and, in notebook 11, DPO)
#   learns from. It stands
#   in for the people who ranked outputs for InstructGPT: it is a *classifier*, so this is
#   **AI feedback** (Bai et al. 2022), not human feedback. It is the course's own sentiment
#   classifier: MiniLM fine-tuned on `LABELLER_LABELS` labelled sentences, as in notebook 04.
# * the **judge** scores the final models. It is SmolLM2's zero-shot prompt judge of
#   notebook 07 (three patterns, calibrated), a model that nothing here trains against.
#   Optimising hard against one model's opinion finds that model's blind spots (*reward
#   hacking*, *over-optimisation*: Gao et al. 2023); a second opinion shows whether the
#   behaviour or only the labeller's score moved.

# %%
reviews = data.load("movie_reviews", profile=PROFILE)


def prompt_words(text: str) -> str:
    return " ".join(text.split()[:PROMPT_WORDS])


def as_prompt(words: str) -> str:
    return f"Movie review: {words}"


long_enough = lambda row: len(row["text"].split()) > PROMPT_WORDS + 4   # noqa: E731
train_pool = reviews["train"].filter(long_enough)
eval_words = [prompt_words(t) for t in reviews["test"].filter(long_enough)["text"][:N_EVAL]]
positives = train_pool.filter(lambda row: row["label"] == 1).shuffle(seed=0).select(range(N_SFT))
pref_words = [prompt_words(t) for t in
              train_pool.filter(lambda row: row["label"] == 0).shuffle(seed=1)["text"][:N_PREF // 2]]
pref_words += [prompt_words(t) for t in positives.shuffle(seed=2)["text"][:N_PREF - len(pref_words)]]
pref_words = [pref_words[i] for i in np.random.default_rng(3).permutation(len(pref_words))]   # mix them
print(f"{len(eval_words)} eval prompts, e.g. {as_prompt(eval_words[0])!r}; {len(positives)} "
      f"positive demonstrations; {len(pref_words)} prompts for preferences (half from negative reviews)")

# %% [markdown]
# The labeller: MiniLM with a new classification head, fine-tuned through
# `finetune.fit_classifier` (notebook 04's recipe). Its score for a text is the
# probability it gives "positive".

# %%
LABELLER = choose(PROFILE, smoke="tiny-mlm", quick="minilm", full="minilm")   # smoke: seconds
encoder, enc_tok = models.load(LABELLER, task="sequence-classification", num_labels=2,
                               profile=PROFILE)
splits = finetune.tokenize(reviews, enc_tok, max_length=64)
labeller_result = finetune.fit_classifier(
    finetune.build_classifier(encoder, num_labels=2, seed=SEED)[0],
    data.sample(splits["train"], LABELLER_LABELS, seed=SEED),
    validation=splits["validation"].select(range(choose(PROFILE, smoke=32, quick=64, full=1_000))),
    test=splits["test"].select(range(choose(PROFILE, smoke=32, quick=200, full=2_000))),
    lr=1e-4, epochs=2, batch_size=8, evals=2, seed=SEED, desc="labeller")
labeller = labeller_result.model.eval()
del encoder


def labeller_scores(texts):
    """P(positive) by the labeller, one number per text."""
    return finetune.class_p(labeller, enc_tok, texts)


print(f"labeller: test accuracy {labeller_result.accuracy:.3f} on review sentences "
      f"({LABELLER_LABELS} labels, {labeller_result.seconds:.0f}s)")

# %% [markdown]
# The policy and the judge start as the same pre-trained SmolLM2. The judge stays frozen
# (it is never the model being trained); the policy is a copy that LoRA will change.

# %%
t0 = time.perf_counter()
if PROFILE == "smoke":     # a real load is too slow for CI: a tiny random stand-in
    base, lm_tok = align.tiny_causal_lm(enc_tok)
    print("smoke: a tiny random causal LM stands in for smollm2 (no quality claims)")
else:
    base, lm_tok = models.load(LM, task="causal-lm", profile=PROFILE)
    print(f"{LM}: {models.count_parameters(base):,} parameters, loaded in "
          f"{time.perf_counter() - t0:.0f}s")
    plain = len(lm_tok(as_prompt(eval_words[0]), add_special_tokens=False)["input_ids"])
    chat = len(lm_tok(lm_tok.apply_chat_template(
        [{"role": "user", "content": as_prompt(eval_words[0])}], add_generation_prompt=True,
        tokenize=False), add_special_tokens=False)["input_ids"])
    print(f"prompt {as_prompt(eval_words[0])!r}: {plain} tokens plain, {chat} in the chat "
          f"template; a continuation is {MAX_NEW}")
base.to(dev).eval()
for p in base.parameters():
    p.requires_grad_(False)


def judge_scores(texts):
    """P(positive) by the zero-shot judge of notebook 07: SmolLM2 (frozen, never trained
    here) reads '<text> It was' and compares ' great' with ' terrible', calibrated,
    averaged over three patterns."""
    return prompts.ensemble_p(base, lm_tok, texts)


check_rows = reviews["test"].select(range(choose(PROFILE, smoke=16, quick=64, full=1_000)))
gold = np.array(check_rows["label"])
judge_says = judge_scores(check_rows["text"]) > 0.5
labeller_says = labeller_scores(check_rows["text"]) > 0.5
judge_acc, labeller_acc = float((judge_says == gold).mean()), float((labeller_says == gold).mean())
print(f"on {len(gold)} real test reviews: judge accuracy {judge_acc:.3f}, labeller accuracy "
      f"{labeller_acc:.3f} (majority class {max(gold.mean(), 1 - gold.mean()):.3f}); the two "
      f"agree on {(judge_says == labeller_says).mean():.0%} of them")
run.log("judge_accuracy", judge_acc, model=LM, n=len(gold))
run.log("labeller_accuracy", labeller_acc, model=LABELLER, n=len(gold))

# %% [markdown]
# Both are imperfect readers of sentiment (real reviews are hard; the models are small),
# and they disagree on many texts: that disagreement is exactly what lets the judge catch
# a policy that pleases the labeller without turning positive.
#
# ## 2 · The base model, before any alignment
#
# One continuation per eval prompt, sampled at temperature 1 (the model's own
# distribution: the KL numbers later need that), keeping the token ids that were sampled
# (`rl.generate`). `score` reads a model's continuations two ways, the judge's P(positive)
# per prompt and the labeller's; section 4 adds the reward model's mean reward. Every
# model samples with the same seed, so base and SFT draw
# the same random numbers (*common random numbers*): where two models agree on the next
# token's probabilities they write the same token, and their differences are the models',
# not the dice's.

# %%
eval_prompts = [as_prompt(w) for w in eval_words]
results, samples, judged, labelled = {}, {}, {}, {}


def full_text(words, continuation):
    return words + continuation


def score(name, batch):
    texts = [full_text(w, c) for w, c in zip(eval_words, batch["texts"])]
    samples[name] = batch["texts"]
    judged[name] = judge_scores(texts)
    labelled[name] = labeller_scores(texts)
    results[name] = {"judge_p": float(judged[name].mean()),
                     "labeller_rate": float((labelled[name] > 0.5).mean())}
    print(f"{name:12s} judge mean P(positive) {results[name]['judge_p']:.3f}, labeller "
          f"positive rate {results[name]['labeller_rate']:.3f}")


t0 = time.perf_counter()
base_batch = rl.generate(base, lm_tok, eval_prompts, max_new_tokens=MAX_NEW, seed=SEED)
base_out = base_batch["texts"]
print(f"sampled {len(base_out)} continuations in {time.perf_counter() - t0:.0f}s")
score("base", base_batch)
for w, c in list(zip(eval_words, base_out))[:4]:
    print(f"  {w!r} -> {c.strip()[:90]!r}")

# %% [markdown]
# ## 3 · Supervised fine-tuning on demonstrations
#
# The demonstrations are real positive review sentences from the train split: the first
# `PROMPT_WORDS` words are the prompt, the rest is the answer. `align.sft_rows` keeps the
# two apart: the loss is the next-token cross-entropy on the **answer tokens only**
# (`completion_mask`); the prompt is given, so learning to predict it would spend the
# model's capacity on the wrong thing. LoRA (notebook 08) on the four attention
# projections; `train.fit` is the loop, `align.sft_loss` the loss:

# %%
print(inspect.getsource(align.sft_loss))

# %%
sft = copy.deepcopy(base)
peft.apply_lora(sft, **LORA, seed=SEED)
sft_rows = align.sft_rows(lm_tok, [as_prompt(prompt_words(t)) for t in positives["text"]],
                          [" " + " ".join(t.split()[PROMPT_WORDS:]) for t in positives["text"]],
                          max_completion_tokens=MAX_NEW)
pad = align.collate(lm_tok.pad_token_id)
sft_hist = train.fit(sft, sft_rows, loss_fn=align.sft_loss, collate_fn=pad, max_steps=SFT_STEPS,
                     batch_size=BATCH, lr=2e-3, warmup=0.1, device=dev, seed=SEED, desc="SFT")
print(f"{peft.describe(sft)}; {sft_hist.seconds / sft_hist.steps:.1f} s/step, loss "
      f"{sft_hist.train[0]['loss']:.2f} -> {sft_hist.final_loss(4):.2f}")
sft.eval()
for p in sft.parameters():
    p.requires_grad_(False)

sft_batch = rl.generate(sft, lm_tok, eval_prompts, max_new_tokens=MAX_NEW, seed=SEED)
score("sft", sft_batch)
kl_sft = rl.mean_se(rl.sequence_kl(sft, base, rl.select(sft_batch, range(N_KL))))   # exact per token, on SFT's own samples

# %% [markdown]
# ## 4 · Preferences, and a reward model
#
# InstructGPT's labellers ranked 4 to 9 outputs of the SFT model per prompt. Here the SFT
# model writes `K` continuations for each of `N_PREF` training prompts (half of them the
# openings of negative reviews, where a positive turn is harder), and the labeller ranks
# them by P(positive). The reward model learns those rankings with the **Bradley-Terry**
# loss: it models the chance that a person prefers $y_w$ over $y_l$ as
# $\sigma(r(x, y_w) - r(x, y_l))$ and maximises the likelihood of the rankings seen:
#
# $$\mathcal{L}_{RM} = -\log \sigma\big(r(x, y_w) - r(x, y_l)\big).$$
#
# InstructGPT's reward model is a whole 6B-parameter LM with a scalar head, all of it
# trained. On a CPU we train only the head: the frozen SFT model reads each text, its
# hidden states after the middle block are averaged over the tokens (`align.features`:
# the last blocks specialise in predicting the next word, the middle ones carry more of
# what a text says), and a linear layer turns that into a reward (`align.RewardHead`).
#
# A pair is kept only when the labeller's two scores differ by more than `MARGIN`: people
# asked to rank two near-identical answers mostly flip a coin, and a reward model cannot
# learn from coin flips. The prompts are split three ways (`cuts`): pairs from most of
# them train the reward model, pairs from a few more choose when to stop (the epoch with
# the lowest validation loss), and the last quarter's pairs measure its accuracy on
# prompts it never saw.
#
# ### Your turn 10.1 · The Bradley-Terry loss
#
# Write the reward model's loss. `r_chosen` and `r_rejected` are the rewards of each
# pair's chosen and rejected continuation, two tensors of shape `(pairs,)`; return **the
# mean** over the pairs (one number). The reward model below trains with your function
# (or, if you skip it, with `labkit.align.bradley_terry_loss`).

# %%
def bradley_terry_loss(r_chosen, r_rejected):
    """-log P(chosen beats rejected) under Bradley-Terry, averaged over the pairs."""
    ### BEGIN SOLUTION
    return -torch.nn.functional.logsigmoid(r_chosen - r_rejected).mean()
    ### END SOLUTION


bradley_terry_loss = checks.run("10.1", bradley_terry_loss)

# %% [markdown]
# The SFT model writes `K` continuations for each preference prompt, the labeller ranks
# them, and the head trains on the pairs:

# %%
t0 = time.perf_counter()
pref_prompts = [as_prompt(w) for w in pref_words]
pref_out = align.sample(sft, lm_tok, pref_prompts, n=K, max_new_tokens=MAX_NEW, seed=SEED + 1)
pref_scores = [labeller_scores([full_text(w, c) for c in cs]).tolist()
               for w, cs in zip(pref_words, pref_out)]
print(f"{len(pref_prompts)} prompts x {K} samples written and ranked in "
      f"{time.perf_counter() - t0:.0f}s")
cuts = [0, int(0.6 * N_PREF), int(0.75 * N_PREF), N_PREF]
rm_train, rm_val, rm_test = (
    align.preference_pairs(pref_prompts[a:b], pref_out[a:b], pref_scores[a:b], mode="all",
                           min_margin=MARGIN) for a, b in zip(cuts, cuts[1:]))
print(f"reward-model pairs (labeller margin > {MARGIN}): {len(rm_train)} to train, "
      f"{len(rm_val)} to choose the epoch, {len(rm_test)} held out")


_features = {}       # (prompt, continuation) -> vector: each text is read once


def text_features(prompt_list, continuations):
    todo = [k for k in dict.fromkeys(zip(prompt_list, continuations)) if k not in _features]
    if todo:
        _features.update(zip(todo, align.features(sft, lm_tok, [p for p, _ in todo],
                                                  [c for _, c in todo], max_completion_tokens=MAX_NEW)))
    return torch.stack([_features[k] for k in zip(prompt_list, continuations)])


def pair_features(pairs):
    prompt_list = [p["prompt"] for p in pairs]
    chosen = text_features(prompt_list, [p["chosen"] for p in pairs])
    rejected = text_features(prompt_list, [p["rejected"] for p in pairs])
    return [{"chosen": c, "rejected": r} for c, r in zip(chosen, rejected)]


rm_train_rows, rm_test_rows = pair_features(rm_train), pair_features(rm_test)
reward_model = align.RewardHead(rm_train_rows[0]["chosen"].shape[0], seed=SEED,
                                loss=bradley_terry_loss)
rm_hist = train.fit(reward_model, rm_train_rows, eval_data=pair_features(rm_val), epochs=10,
                    batch_size=32, lr=3e-3, weight_decay=0.1, warmup=0, device="cpu",
                    seed=SEED, desc="reward model", rollback=False)


def stack(rows, key):
    return torch.stack([r[key] for r in rows])


rm_pair_acc = align.pair_accuracy(reward_model, stack(rm_test_rows, "chosen"),
                                  stack(rm_test_rows, "rejected"))
rm_train_acc = align.pair_accuracy(reward_model, stack(rm_train_rows, "chosen"),
                                   stack(rm_train_rows, "rejected"))
print(f"reward model pair accuracy: train {rm_train_acc:.3f}, held-out {rm_pair_acc:.3f} "
      f"({len(rm_test_rows)} pairs)")
run.log("rm_pair_acc", rm_pair_acc, n=len(rm_test_rows))


def rewards(prompt_list, continuations):
    feats = text_features(prompt_list, continuations)
    with torch.no_grad():
        return reward_model.reward(feats).numpy()


rewarded = {name: rewards(eval_prompts, samples[name]) for name in ("base", "sft")}
for name in ("base", "sft"):
    results[name]["reward"] = float(rewarded[name].mean())

# %% [markdown]
# ## 5 · Best-of-n: the reward model with no training at all
#
# The simplest use of a reward model: sample n continuations from the SFT model and keep
# the one it likes best. Nothing is trained; it costs n samples at every use. Rather than
# drawing again for each n, the SFT model writes `POOL` = 8 continuations once for each of
# the first `N_POOL` eval prompts (eight samples of each cost eight times one: in `quick`
# the pool covers fewer prompts than the single samples do), and the best of n
# (n = 1, 2, 4, 8) is averaged over every subset of n of the 8
# (`rl.best_of_n_expectation`): an estimate without bias of its expected reward, judge
# score and labeller score. Its KL from the SFT model is at most
# $\log n - (n-1)/n$ nats: an **upper bound** (Beirami et al. 2024), not an exact value.

# %%
pool = rl.generate(sft, lm_tok, eval_prompts[:N_POOL], n=POOL, max_new_tokens=MAX_NEW, seed=SEED + 2)
pool_texts = [full_text(eval_words[i // POOL], c) for i, c in enumerate(pool["texts"])]
shape = (N_POOL, POOL)
pool_reward = rewards([p for p in eval_prompts[:N_POOL] for _ in range(POOL)], pool["texts"]).reshape(shape)
pool_judge = judge_scores(pool_texts).reshape(shape)
pool_label = labeller_scores(pool_texts).reshape(shape)
for n in (1, 2, 4, 8):
    judged[f"bon{n}"] = rl.best_of_n_expectation(pool_reward, pool_judge, n)
    results[f"bon{n}"] = {"reward": float(rl.best_of_n_expectation(pool_reward, pool_reward, n).mean()),
                          "labeller_p": float(rl.best_of_n_expectation(pool_reward, pool_label, n).mean()),
                          "judge_p": float(judged[f"bon{n}"].mean()), "kl_bound": align.best_of_n_kl(n)}
    r = results[f"bon{n}"]
    print(f"best-of-{n}: reward {r['reward']:+.3f}, KL <= {r['kl_bound']:.2f} nats, judge "
          f"P(positive) {r['judge_p']:.3f}, labeller {r['labeller_p']:.3f}")

# %% [markdown]
# ## 6 · What moved: gains, paired, with intervals
#
# Every model was scored on the same prompts (`N_EVAL` of them; best-of-n on its
# `N_POOL`, against the same pool's n = 1, which estimates the SFT model there), so we
# compare them **paired**: per
# prompt, the judge's P(positive) of one model minus the other's, averaged, with a 95%
# bootstrap interval that resamples prompts (`rl.paired_gain`). A gain whose interval
# includes 0 is not resolved at this size. The judge is the model nothing was fitted to;
# the labeller is the one whose rankings the reward model learned.

# %%
comparisons = {"SFT - base": ("base", "sft"), "best-of-4 - SFT": ("bon1", "bon4"),
               "best-of-8 - SFT": ("bon1", "bon8")}
gains = {}
for label, (a, b) in comparisons.items():
    gains[label] = rl.paired_gain(judged[a], judged[b])
    print(rl.verdict(gains[label], f"{label}: the judge's P(positive)"))
print(f"KL(SFT || base) on SFT's own samples ({N_KL} prompts): {kl_sft[0]:.2f} ± {kl_sft[1]:.2f} nats")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ns = [1, 2, 4, 8]
ax1.plot([results[f"bon{n}"]["kl_bound"] for n in ns], [results[f"bon{n}"]["reward"] for n in ns],
         "^-", label="best-of-n, SFT pool")
for n in ns:
    ax1.annotate(f"n={n}", (results[f"bon{n}"]["kl_bound"], results[f"bon{n}"]["reward"]),
                 textcoords="offset points", xytext=(5, -10), fontsize=8)
ax1.set_xlabel("KL from the SFT model, upper bound (nats)")
ax1.set_ylabel("proxy reward (reward model)")
ax1.set_title("Best-of-n: reward vs KL")
ax1.grid(alpha=0.3)
labels = list(gains)
ax2.errorbar([gains[k]["gain"] for k in labels], range(len(labels)),
             xerr=[[gains[k]["gain"] - gains[k]["ci_low"] for k in labels],
                   [gains[k]["ci_high"] - gains[k]["gain"] for k in labels]], fmt="o", capsize=3)
ax2.axvline(0, color="gray", lw=1)
ax2.set_yticks(range(len(labels)), labels)
ax2.set_xlabel("judge: gain in mean P(positive), 95% paired interval")
ax2.set_title(f"{N_EVAL} prompts (best-of-n: {N_POOL}), seed {SEED}")
plt.tight_layout()
plt.show()

# %% [markdown]
# The same prompts, one continuation per model (the judge's P(positive) in brackets):

# %%
for i in range(min(4, N_EVAL)):
    print(f"prompt: {eval_words[i]!r}")
    for name in ("base", "sft"):
        print(f"   {name:5s} [{judged[name][i]:.2f}] {samples[name][i].strip()[:95]!r}")

# %% [markdown]
# ## The lesson, checked
#
# What this design resolves is asserted beyond `smoke`: the reward model ranks held-out
# pairs better than chance and the proxy reward rises with n. The judge's gains are
# reported with their intervals above, not asserted. The rows of this seed go to the
# ledger, and its per-prompt judge scores to `runs/`, so that the next cell can pool the
# seeds that have run (each prompt's gain averaged over seeds, prompts resampled).

# %%
if PROFILE != "smoke":
    assert rm_pair_acc > 0.55, f"the reward model ranks held-out pairs at chance ({rm_pair_acc:.3f})"
    rw = [results[f"bon{n}"]["reward"] for n in ns]
    assert all(b > a for a, b in zip(rw, rw[1:])), f"the reward did not rise with n: {rw}"
run.log("judge_p_base", float(judged["base"].mean()), n=N_EVAL, model=LM)
run.log("judge_p_sft", float(judged["sft"].mean()), n=N_EVAL, model=LM)
run.log("judge_p_best_of_n", results["bon4"]["judge_p"], n=N_POOL, best_of=4)
run.log("labeller_rate_sft", results["sft"]["labeller_rate"], n=N_EVAL)
run.log("kl_sft_from_base", kl_sft[0], se=kl_sft[1], n=N_KL)
for label, key, n_ in (("SFT - base", "judge_gain_sft", N_EVAL), ("best-of-4 - SFT", "judge_gain_best_of_4", N_POOL)):
    run.log(key, gains[label]["gain"], ci_low=gains[label]["ci_low"], ci_high=gains[label]["ci_high"],
            n=n_)
SETTING = {"lm": LM, "n_eval": N_EVAL, "n_pool": N_POOL, "max_new": MAX_NEW, "sft_steps": SFT_STEPS}
rl.save_prompt_scores("10_alignment", PROFILE, SEED, {k: judged[k] for k in ("base", "sft", "bon1", "bon4")},
                      SETTING)

# %% [markdown]
# Notebook 11 starts where this one ends: the labeller, the SFT model (its LoRA weights
# only), the reward model, the preference samples and every score of the judged prompts
# are saved under `runs/`, keyed by profile and seed (`align.save_stage`, safetensors), so
# that it does not pay for them again.

# %%
stage = align.save_stage(
    align.stage_dir(PROFILE, SEED), sft=sft, reward_model=reward_model, labeller=labeller,
    labeller_tokenizer=enc_tok,
    arrays={**{f"{k}_{name}": v[name] for name in ("base", "sft")
               for k, v in (("judge", judged), ("labeller", labelled), ("reward", rewarded))},
            "pool_reward": pool_reward, "pool_judge": pool_judge, "pool_label": pool_label},
    info={"profile": PROFILE, "seed": SEED, "lm": LM, "labeller": LABELLER, "max_new": MAX_NEW,
          "k": K, "pool": POOL, "margin": MARGIN, "lora": {**LORA, "target_modules": list(LORA["target_modules"])},
          "eval_words": eval_words, "pref_prompts": pref_prompts, "pref_words": pref_words,
          "pref_out": pref_out, "pref_scores": pref_scores, "samples": samples})
print(f"saved for notebook 11: runs/10_alignment/stage/{stage.name}/ "
      f"({sum(f.stat().st_size for f in stage.rglob('*') if f.is_file()) / 1e6:.0f} MB)")

# %%
pooled = rl.pooled_prompt_scores("10_alignment", PROFILE, SEEDS, SETTING)
print(f"seeds with per-prompt judge scores: {sorted(pooled)}")
if len(pooled) >= 2:
    for label, (a, b) in (("SFT - base", ("base", "sft")), ("best-of-4 - SFT", ("bon1", "bon4"))):
        g_ = rl.paired_gain([pooled[s_][a] for s_ in pooled], [pooled[s_][b] for s_ in pooled])
        print(rl.verdict(g_, f"{label}, seeds {sorted(pooled)} pooled"))
print(f"notebook wall time {time.perf_counter() - started:.0f}s (CPU time of this process "
      f"{time.process_time():.0f}s: the wall time of a machine with nothing else running)")

# %% [markdown]
# ## Key takeaways
#
# * SFT teaches the *form* of the behaviour from demonstrations; preferences teach
#   *which* of the model's own outputs are better, which is easier to give than a
#   demonstration and says more about the model's actual mistakes.
# * A reward model is a classifier of pairs, trained with the Bradley-Terry loss.
# * Best-of-n spends the reward model at sampling time; its KL from the sampling model is
#   at most log n - (n-1)/n. A reward is only half a result without its KL.
# * Read gains, not levels, and pair them: the same prompts for every model, an interval
#   for every difference, and no claim the interval does not resolve.
#
# Notebook 11 takes the third step of the recipe: DPO and on-policy RL, on one
# reward-vs-KL frontier with best-of-n.
#
# ## Check your understanding

# %%
q = quiz.ask("10")

# %% [markdown]
# ## What to try next
#
# * Raise `N_EVAL` until the intervals are narrower than the gains you care about (they
#   shrink with the square root of the number of prompts).
# * Train the reward model's body too (LoRA on the SFT model plus the scalar head), as
#   InstructGPT does; then best-of-16.
# * The chat template (`lm_tok.apply_chat_template`) with an instruction ("Write a
#   positive movie review starting with ..."): does the instruct model need SFT at all?
#
# ## References
#
# * Christiano et al. 2017, *Deep reinforcement learning from human preferences*, arXiv 1706.03741.
# * Stiennon et al. 2020, *Learning to summarize from human feedback*, arXiv 2009.01325.
# * Ouyang et al. 2022, *Training language models to follow instructions with human
#   feedback* (InstructGPT), arXiv 2203.02155.
# * Bai et al. 2022, *Constitutional AI: harmlessness from AI feedback*, arXiv 2212.08073.
# * Gao, Schulman & Hilton 2023, *Scaling laws for reward model overoptimization*, arXiv 2210.10760.
# * Beirami et al. 2024, *Theoretical guarantees on the best-of-n alignment policy*, arXiv 2401.01879.

# %%
run.finish()   # close this run in the ledger: only a notebook that ran to its end counts
