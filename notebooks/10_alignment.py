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
# # 10 · After pre-training: SFT, a reward model and DPO on a real small LLM
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
# **DPO** (Rafailov et al. 2023) replaces step 3 (and the reward model) by one logistic
# loss on the preference pairs: most open models are now tuned that way.
#
# This notebook runs all of it in miniature on **SmolLM2-135M-Instruct**, offline, on a
# CPU. The behaviour to teach is the classic demonstration of the RLHF papers: continue
# the opening words of a movie review **positively**.
#
# **You will be able to**
#
# * format demonstrations for SFT, with the loss on the answer only;
# * turn a model's own samples into preference pairs and train a reward model on them
#   with the Bradley-Terry loss;
# * write DPO's loss, and check it against the `trl` library;
# * compare best-of-n sampling, SFT and DPO by an independent judge *and* by how far each
#   moved from the reference model (the KL divergence).
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

# %% [markdown]
# ## 0 · Set-up, and what each profile runs
#
# Everything below is sized for `quick` on one CPU core: SmolLM2 trains at about a second
# per step of 8 short sequences, so SFT gets `SFT_STEPS` steps, DPO `DPO_EPOCHS` passes over
# its pairs, continuations are `MAX_NEW` tokens long, and every model is judged on one
# continuation of each of `N_EVAL` prompts. One run is one seed (`SEED`): 64 judged
# continuations per model are too few to trust one run, so the course's verdicts come from
# seeds 0, 1 and 2 together (`labkit run 10 --seed 1`, `--seed 2`; the last cell reads them
# from the ledger). `smoke` swaps SmolLM2 for a tiny random Llama so that every code path
# runs in seconds; it claims nothing. `full` is for a GPU: the larger SmolLM2-360M-Instruct
# from the hub (the offline 135M model when the hub is out of reach), 500 judged prompts
# instead of 64, longer continuations, more demonstrations, pairs and betas.

# %%
import copy
import inspect
import time
from collections import defaultdict

if os.environ.get("LABKIT_HEADLESS") == "1":   # no progress bars when nobody watches
    os.environ.setdefault("TQDM_DISABLE", "1")

import matplotlib.pyplot as plt
import numpy as np
import torch
import transformers

from labkit import align, checks, course, data, device, finetune, ledger, models, peft, prompts, quiz, train
from labkit.profile import check, choose

check(PROFILE)
course.header("10_alignment")
transformers.logging.set_verbosity_error()
started = time.perf_counter()
device.seed_everything(SEED)
dev = device.pick()
run = ledger.Run("10_alignment", profile=PROFILE, seed=SEED, device=dev)

PROMPT_WORDS = 4                                               # words of a review given as the prompt
MAX_NEW = choose(PROFILE, smoke=8, quick=16, full=32)          # tokens per continuation
N_EVAL = choose(PROFILE, smoke=8, quick=64, full=500)          # eval prompts (test split)
N_SFT = choose(PROFILE, smoke=16, quick=512, full=3_000)       # positive demonstrations
SFT_STEPS = choose(PROFILE, smoke=2, quick=64, full=375)       # one pass over them
N_PREF = choose(PROFILE, smoke=8, quick=128, full=1_000)       # prompts to rank samples for
K = 4                                                          # samples per prompt to rank
N = 4                                                          # best-of-n
BETAS = choose(PROFILE, smoke=[0.1], quick=[0.1, 0.5], full=[0.05, 0.1, 0.2, 0.5])
BETA = 0.1                                                     # the headline DPO run
DPO_EPOCHS = choose(PROFILE, smoke=1, quick=1, full=3)
BATCH = 8                                                      # SFT sequences per step
DPO_BATCH = 4                                                  # DPO pairs per step (8 sequences)
LM = choose(PROFILE, smoke="tiny random Llama", quick="smollm2", full="smollm2-360m")   # policy and judge
LABELLER_LABELS = choose(PROFILE, smoke=32, quick=384, full=2_000)
MARGIN = choose(PROFILE, smoke=0.0, quick=0.2, full=0.2)      # smallest labeller gap that makes a pair
LORA = dict(r=8, alpha=16, target_modules=("q_proj", "k_proj", "v_proj", "o_proj"),
            modules_to_save=())
print(f"profile {PROFILE}, seed {SEED}: {N_EVAL} eval prompts, {MAX_NEW}-token continuations; "
      f"SFT {SFT_STEPS} steps on {N_SFT} demonstrations; {N_PREF} prompts x {K} samples ranked; "
      f"DPO betas {BETAS}; device {dev.type}")

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
# * the **labeller** ranks the samples that the reward model and DPO learn from. It stands
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
encoder, enc_tok = models.load(choose(PROFILE, smoke="tiny-mlm", quick="minilm"),  # smoke: seconds
                               task="sequence-classification", num_labels=2, profile=PROFILE)
splits = finetune.tokenize(reviews, enc_tok, max_length=64)
labeller_result = finetune.fit_classifier(
    finetune.build_classifier(encoder, num_labels=2, seed=SEED)[0],
    data.sample(splits["train"], LABELLER_LABELS, seed=SEED),
    validation=splits["validation"].select(range(choose(PROFILE, smoke=32, quick=64, full=1_000))),
    test=splits["test"].select(range(choose(PROFILE, smoke=32, quick=200, full=2_000))),
    lr=1e-4, epochs=2, batch_size=8, evals=2, seed=SEED, desc="labeller")
labeller = labeller_result.model.eval()
del encoder


@torch.no_grad()
def labeller_scores(texts):
    """P(positive) by the labeller, one number per text."""
    out = []
    for start in range(0, len(texts), 64):
        enc = enc_tok(texts[start:start + 64], padding=True, truncation=True, max_length=64,
                      return_tensors="pt").to(dev)
        out += labeller(**enc).logits.softmax(-1)[:, 1].tolist()
    return np.array(out)


print(f"labeller: test accuracy {labeller_result.accuracy:.3f} on review sentences "
      f"({LABELLER_LABELS} labels, {labeller_result.seconds:.0f}s)")

# %% [markdown]
# The policy and the judge start as the same pre-trained SmolLM2. The judge stays frozen
# (it is never the model being trained); the policy is a copy that LoRA will change.

# %%
t0 = time.perf_counter()
if PROFILE == "smoke":     # a 20 s load is too slow for CI: a tiny random stand-in
    lm_tok = copy.deepcopy(enc_tok)
    lm_tok.eos_token = lm_tok.sep_token
    torch.manual_seed(0)
    base = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=len(lm_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, eos_token_id=lm_tok.eos_token_id,
        pad_token_id=lm_tok.pad_token_id))
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
    scores, _ = prompts.label_scores(base, lm_tok, list(texts), prompts.PATTERNS,
                                     prompts.VERBALIZER, calibrated=True)
    return torch.as_tensor(scores).softmax(-1).mean(0)[:, 1].numpy()


check_rows = reviews["test"].select(range(choose(PROFILE, smoke=16, quick=100, full=1_000)))
gold = np.array(check_rows["label"])
judge_says = judge_scores(check_rows["text"]) > 0.5
labeller_says = labeller_scores(check_rows["text"]) > 0.5
judge_acc, labeller_acc = float((judge_says == gold).mean()), float((labeller_says == gold).mean())
print(f"on {len(gold)} real test reviews: judge accuracy {judge_acc:.3f}, labeller accuracy "
      f"{labeller_acc:.3f} (majority class {max(gold.mean(), 1 - gold.mean()):.3f}); the two "
      f"agree on {(judge_says == labeller_says).mean():.0%} of them")
run.log("judge_accuracy", judge_acc, model=LM, n=len(gold))
run.log("labeller_accuracy", labeller_acc, model="minilm", n=len(gold))

# %% [markdown]
# Both are imperfect readers of sentiment (real reviews are hard; the models are small),
# and they disagree on many texts: that disagreement is exactly what lets the judge catch
# a policy that pleases the labeller without turning positive.
#
# ## 2 · The base model, before any alignment
#
# One continuation per eval prompt, sampled at temperature 1 (the model's own
# distribution: the KL numbers later need that). `score` reads a model's continuations
# two ways, the judge's positive rate and the labeller's; section 4 adds the reward
# model's mean reward. Every model samples with the same seed, so base, SFT and DPO draw
# the same random numbers (*common random numbers*): where two models agree on the next
# token's probabilities they write the same token, and their differences are the models',
# not the dice's.

# %%
eval_prompts = [as_prompt(w) for w in eval_words]
results, samples, judged = {}, {}, {}


def full_text(words, continuation):
    return words + continuation


def score(name, continuations):
    texts = [full_text(w, c) for w, c in zip(eval_words, continuations)]
    samples[name] = continuations
    judged[name] = judge_scores(texts)
    results[name] = {"judge_rate": float((judged[name] > 0.5).mean()),
                     "labeller_rate": float((labeller_scores(texts) > 0.5).mean())}
    print(f"{name:12s} judge positive rate {results[name]['judge_rate']:.3f}, labeller "
          f"positive rate {results[name]['labeller_rate']:.3f}")


t0 = time.perf_counter()
base_out = [c[0] for c in align.sample(base, lm_tok, eval_prompts, max_new_tokens=MAX_NEW,
                                       seed=SEED)]
print(f"sampled {len(base_out)} continuations in {time.perf_counter() - t0:.0f}s")
score("base", base_out)
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

sft_out = [c[0] for c in align.sample(sft, lm_tok, eval_prompts, max_new_tokens=MAX_NEW,
                                      seed=SEED)]
score("sft", sft_out)

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


for name in ("base", "sft"):
    results[name]["reward"] = float(rewards(eval_prompts, samples[name]).mean())

# %% [markdown]
# ## 5 · Best-of-n: the reward model with no training at all
#
# The simplest use of a reward model: sample `N` continuations from the SFT model and keep
# the one it likes best. Nothing is trained, and the price is known in advance: the best
# of $n$ samples is at most $\log n - (n-1)/n$ nats of KL from the model that sampled
# them, whatever the reward (exactly that when no two rewards tie). It costs $n$ times
# the sampling, at every use.

# %%
cands = align.sample(sft, lm_tok, eval_prompts, n=N, max_new_tokens=MAX_NEW, seed=SEED + 2)
cand_rewards = rewards([p for p in eval_prompts for _ in range(N)], [c for cs in cands for c in cs])
bon_out = align.best_of_n(cands, cand_rewards.reshape(len(eval_prompts), N).tolist())
score("best_of_n", bon_out)
results["best_of_n"]["reward"] = float(rewards(eval_prompts, bon_out).mean())
results["best_of_n"]["kl"] = align.best_of_n_kl(N)

# %% [markdown]
# ## 6 · DPO: the preference loss, written out
#
# RLHF maximises reward minus a KL penalty, $\mathbb{E}[r(x, y)] - \beta\,
# \mathrm{KL}(\pi \,\|\, \pi_{ref})$. Rafailov et al. showed that this objective's optimum
# is $\pi^*(y|x) \propto \pi_{ref}(y|x)\, e^{r(x,y)/\beta}$; turned around, a policy
# *defines* a reward, $r(x, y) = \beta \log \frac{\pi(y|x)}{\pi_{ref}(y|x)}$ (plus a
# term that depends on $x$ only and cancels in a pair). Put that reward into the
# Bradley-Terry loss of section 4 and the reward model disappears:
#
# $$\mathcal{L}_{DPO} = -\log \sigma\Big(\beta \log \frac{\pi(y_w|x)}{\pi_{ref}(y_w|x)} -
#   \beta \log \frac{\pi(y_l|x)}{\pi_{ref}(y_l|x)}\Big).$$
#
# Everything in it is a sum of token log-probabilities (`align.sequence_logps`) of the
# policy and of the frozen reference (the SFT model), on the labeller's pairs (best and
# worst of each prompt's `K` samples). No sampling during training, no reward model, no
# value network: a classification loss.
#
# ### Your turn 10.2 · The DPO loss
#
# Write it. The inputs are four tensors of shape `(pairs,)`: the summed log-probabilities
# of each pair's chosen and rejected continuations under the policy and under the
# reference; `beta` is a positive number. Return **one loss per pair** (shape `(pairs,)`;
# the training loop takes the mean). `torch.nn.functional.logsigmoid` is stabler than
# `log(sigmoid(...))` when the margin is large. The checker tries your function on fresh
# random log-probabilities; the DPO training below then uses it (or, if you skip it,
# `labkit.align.dpo_loss`).

# %%
def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    """One DPO loss per pair, from summed log-probabilities of shape (pairs,)."""
    ### BEGIN SOLUTION
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return -torch.nn.functional.logsigmoid(margin)
    ### END SOLUTION


dpo_loss = checks.run("10.2", dpo_loss)

# %% [markdown]
# ### Checked against `trl`
#
# `trl` is the library most DPO models are trained with. Its `DPOTrainer` computes the loss
# from the same pairs (it tokenises them itself and appends an end-of-text token);
# `align.trl_loss_parity` feeds its batches to both, with **your** `dpo_loss` on our side,
# and returns the largest difference.
# The policy here is the SFT model with its LoRA weights moved a little at random, so the
# loss is not simply $\log 2$.

# %%
probe_pairs = align.preference_pairs(pref_prompts, pref_out, pref_scores)[:choose(PROFILE, smoke=4, quick=8, full=16)]
probe_policy = copy.deepcopy(sft)
g = torch.Generator().manual_seed(SEED)
with torch.no_grad():
    for layer in peft.lora_layers(probe_policy).values():
        layer.lora_B.weight.add_(torch.randn(layer.lora_B.weight.shape, generator=g).to(dev) * 0.01)
parity = align.trl_loss_parity(probe_policy, sft, lm_tok, probe_pairs, beta=BETA, batch_size=4,
                               loss=dpo_loss)
del probe_policy
print(f"largest |ours - trl| over {len(probe_pairs)} pairs: {parity:.2e}")
run.log("dpo_loss_parity_max_abs_diff", parity, n=len(probe_pairs))

# %% [markdown]
# ### Training with DPO, for several beta
#
# The pairs: best vs worst of each preference prompt's `K` samples, by the labeller, from
# the prompts the reward model trained and stopped on; the pairs of its held-out prompts
# are held out here too, and after training we ask how many of them DPO's implicit reward
# $\beta \log \pi / \pi_{ref}$ ranks right (the reward model's question of section 4). The
# reference log-probabilities are computed once (`add_reference_logps`); the policy
# starts as the SFT model and keeps training its LoRA weights with `align.DPOLoss` as the
# loss of `train.fit`. For each beta we sample the eval prompts and measure the KL from the
# SFT model with the policy's own samples: $\mathrm{KL} \approx \frac{1}{m}\sum_i \log
# \pi(y_i|x_i) - \log \pi_{ref}(y_i|x_i)$.

# %%
def dpo_data(a, b):
    pairs = align.preference_pairs(pref_prompts[a:b], pref_out[a:b], pref_scores[a:b],
                                   min_margin=MARGIN)
    return align.add_reference_logps(sft, align.pair_rows(lm_tok, pairs, max_completion_tokens=MAX_NEW),
                                     lm_tok.pad_token_id)


dpo_rows, dpo_test = dpo_data(0, cuts[2]), dpo_data(cuts[2], N_PREF)   # the reward model's split
print(f"{len(dpo_rows)} DPO pairs to train on, {len(dpo_test)} held out (labeller margin > {MARGIN})")
results["sft"]["kl"] = 0.0
results["base"]["kl"] = align.kl_estimate(base, sft, lm_tok, eval_prompts, base_out,
                                          max_completion_tokens=MAX_NEW)
for beta in BETAS:
    policy = copy.deepcopy(sft)
    for name, p in policy.named_parameters():
        p.requires_grad_("lora_" in name)
    objective = dict(loss_fn=align.DPOLoss(beta, loss=dpo_loss),
                     collate_fn=align.pair_collate(lm_tok.pad_token_id))
    hist = train.fit(policy, dpo_rows, **objective, epochs=DPO_EPOCHS, batch_size=DPO_BATCH,
                     lr=1e-3, warmup=0.1, device=dev, seed=SEED, desc=f"DPO beta={beta}")
    held_out = train.evaluate(policy, dpo_test, **objective, batch_size=16)
    policy.eval()
    out = [c[0] for c in align.sample(policy, lm_tok, eval_prompts, max_new_tokens=MAX_NEW,
                                      seed=SEED)]
    name = f"dpo_{beta}"
    score(name, out)
    results[name]["reward"] = float(rewards(eval_prompts, out).mean())
    results[name]["kl"] = align.kl_estimate(policy, sft, lm_tok, eval_prompts, out,
                                            max_completion_tokens=MAX_NEW)
    results[name]["pair_acc"] = held_out["accuracy"]
    print(f"   beta {beta}: {hist.steps} steps in {hist.seconds:.0f}s; on the {len(dpo_test)} "
          f"held-out pairs DPO loss {held_out['loss']:.3f} (log 2 = {np.log(2):.3f} at the "
          f"start), its implicit reward ranks {held_out['accuracy']:.3f} of them right; KL "
          f"from SFT {results[name]['kl']:.2f} nats")
    del policy

# %% [markdown]
# ## 7 · What moved, and what it cost
#
# Positive rate by the judge (the model that nothing trained against) and by the labeller
# (the one whose rankings were learned), the reward model's mean reward, and the KL from
# the SFT model (the reference of DPO): the distance travelled.

# %%
order = ["base", "sft", "best_of_n"] + [f"dpo_{b}" for b in BETAS]
print(f"{'model':12s} {'judge':>7s} {'labeller':>9s} {'reward':>8s} {'KL(nats)':>9s}")
for name in order:
    r = results[name]
    print(f"{name:12s} {r['judge_rate']:7.3f} {r['labeller_rate']:9.3f} {r['reward']:8.3f} "
          f"{r['kl']:9.2f}")
main = f"dpo_{BETA}"
run.log("judge_rate_base", results["base"]["judge_rate"], n=N_EVAL, model=LM)
run.log("judge_rate_sft", results["sft"]["judge_rate"], n=N_EVAL, model=LM)
run.log("judge_rate_best_of_n", results["best_of_n"]["judge_rate"], n=N_EVAL, best_of=N)
run.log("judge_rate_dpo", results[main]["judge_rate"], n=N_EVAL, beta=BETA)
run.log("kl_dpo", results[main]["kl"], n=N_EVAL, beta=BETA)
run.log("dpo_pair_acc", results[main]["pair_acc"], n=len(dpo_test), beta=BETA)
for name in order:
    run.log(f"labeller_rate_{name}", results[name]["labeller_rate"], n=N_EVAL)

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
x = np.arange(len(order))
ax1.bar(x - 0.2, [results[n]["judge_rate"] for n in order], 0.4, label="judge (SmolLM2 zero-shot)")
ax1.bar(x + 0.2, [results[n]["labeller_rate"] for n in order], 0.4, label="labeller (MiniLM)")
ax1.set_xticks(x, order, rotation=20)
ax1.set_ylabel(f"positive rate ({N_EVAL} continuations)")
ax1.set_ylim(0, 1)
ax1.legend(fontsize=8)
ax1.set_title("Who finds the continuations positive")
for name, marker in (("sft", "s"), ("best_of_n", "^"), ("base", "x")):
    ax2.scatter(results[name]["kl"], results[name]["reward"], marker=marker, s=60, label=name)
kl_b = [results[f"dpo_{b}"]["kl"] for b in BETAS]
rw_b = [results[f"dpo_{b}"]["reward"] for b in BETAS]
ax2.plot(kl_b, rw_b, "o-", color="tab:red", label="DPO")
for b, k, r in zip(BETAS, kl_b, rw_b):
    ax2.annotate(f"beta={b}", (k, r), textcoords="offset points", xytext=(5, 5), fontsize=8)
ax2.set_xlabel("KL from the SFT model (nats per continuation)")
ax2.set_ylabel("mean reward (reward model)")
ax2.set_title("Reward vs KL")
ax2.grid(alpha=0.3)
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the two columns of positive rates side by side. Best-of-n and DPO were fitted to
# the labeller's taste (through the reward model, or through its pairs); SFT was not (its
# demonstrations carry the data's own positive labels). All three raise the labeller's
# rate above the base model's; the judge, which nothing was fitted to, moves less:
#
# * **SFT** changes the *style* of the continuations (they read like film criticism now)
#   more than their sentiment: by the judge it is within the noise of the base model.
# * **Best-of-n** raises the labeller's rate more than the judge's. It keeps whatever the
#   reward model likes best, and the reward model learned the labeller, quirks included:
#   reward over-optimisation in its smallest form.
# * **DPO** raises the labeller's rate too, and the judge's by less, within one seed's
#   noise, for a few nats of KL from the SFT model. Whether the judge's gain is more than
#   noise is the question of the last section.
#
# The same prompts, one continuation per model (the judge's P(positive) in brackets):

# %%
show = list(range(min(6, N_EVAL)))
for i in show:
    print(f"prompt: {eval_words[i]!r}")
    for name in ("base", "sft", "best_of_n", main):
        print(f"   {name:10s} [{judged[name][i]:.2f}] {samples[name][i].strip()[:95]!r}")

# %% [markdown]
# ## The lesson, checked
#
# Always: our DPO loss equals `trl`'s on the same batch (to 1e-5). What one CPU-sized run
# shows reliably is asserted beyond `smoke`: the reward model ranks held-out pairs better
# than chance, best-of-n raises the reward model's mean reward over SFT's samples, and DPO
# moved the policy (KL > 0). Then this seed's differences, each with the sampling noise
# of `N_EVAL` continuations (two binomial standard errors of a difference):

# %%
assert parity < 1e-5, f"labkit.align.dpo_loss differs from trl's by {parity:.2e}"
rates = {n: results[n]["judge_rate"] for n in ("base", "sft", "best_of_n", main)}


def noise(p, q, n=N_EVAL):
    """Two standard errors of the difference of two rates measured on n samples each."""
    return 2 * np.sqrt((p * (1 - p) + q * (1 - q)) / n)


print(f"judge positive rate: base {rates['base']:.3f}, SFT {rates['sft']:.3f}, best-of-{N} "
      f"{rates['best_of_n']:.3f}, DPO (beta {BETA}) {rates[main]:.3f}; KL(DPO || SFT) "
      f"{results[main]['kl']:.2f} nats; reward model held-out pair accuracy {rm_pair_acc:.3f}")
for a, b in ((main, "sft"), ("sft", "base"), ("best_of_n", "sft")):
    diff = rates[a] - rates[b]
    verdict = "above the noise" if abs(diff) > noise(rates[a], rates[b]) else "within the noise"
    ldiff = results[a]["labeller_rate"] - results[b]["labeller_rate"]
    print(f"  {a} - {b}: judge {diff:+.3f} ({verdict}, noise {noise(rates[a], rates[b]):.3f}), "
          f"labeller {ldiff:+.3f}")
if PROFILE != "smoke":
    assert rm_pair_acc > 0.55, f"the reward model ranks held-out pairs at chance ({rm_pair_acc:.3f})"
    assert results["best_of_n"]["reward"] > results["sft"]["reward"], "best-of-n did not raise the reward"
    assert results[main]["kl"] > 0, "DPO did not move the policy"

# %% [markdown]
# One seed's `N_EVAL` continuations per model leave a noise on each difference of rates
# as large as the differences themselves (above), so the course's bars for this notebook are judged over **seeds 0, 1 and 2**
# together, read back from the ledger (run `labkit run 10 --seed 1` and `--seed 2` to
# complete yours). The bars: the judge finds DPO's continuations positive more often than
# SFT's by more than the seed spread (the larger standard deviation over seeds of the
# two), SFT's at least as often as the base model's, and the reward model ranks at least
# 70% of held-out pairs right.

# %%
mine = [r for r in ledger.last_runs(ledger.read()) if r["notebook"] == "10_alignment"]
per_seed = defaultdict(dict)
for row in ledger.latest(mine, PROFILE):
    per_seed[row["seed"]][row["metric"]] = row["value"]
shown = {"judge_rate_base": "judge base", "judge_rate_sft": "judge SFT",
         "judge_rate_best_of_n": "judge BoN", "judge_rate_dpo": "judge DPO",
         f"labeller_rate_dpo_{BETA}": "label. DPO", "labeller_accuracy": "label. acc",
         "kl_dpo": "KL DPO", "rm_pair_acc": "RM pairs", "dpo_pair_acc": "DPO pairs"}
seeds = sorted(s for s, m in per_seed.items() if all(k in m for k in shown))
print("seed" + "".join(f"{label:>12s}" for label in shown.values()))
for s_ in seeds:
    print(f"{s_:4d}" + "".join(f"{per_seed[s_][k]:12.3f}" for k in shown))
if len(seeds) >= 3:
    stats = {r["metric"]: (r["mean"], r["std"])
             for r in ledger.summary([r for r in mine if r["seed"] in seeds], PROFILE)}
    print("mean" + "".join(f"{stats[k][0]:7.3f}±{stats[k][1]:.2f}" for k in shown))
    gain = stats["judge_rate_dpo"][0] - stats["judge_rate_sft"][0]
    spread = max(stats["judge_rate_dpo"][1], stats["judge_rate_sft"][1])
    bars = {f"DPO - SFT = {gain:+.3f} > seed spread {spread:.3f}": gain > spread,
            f"SFT - base = {stats['judge_rate_sft'][0] - stats['judge_rate_base'][0]:+.3f} >= 0":
                stats["judge_rate_sft"][0] >= stats["judge_rate_base"][0],
            f"reward model {stats['rm_pair_acc'][0]:.3f} >= 0.7": stats["rm_pair_acc"][0] >= 0.7}
    for text, met in bars.items():
        print(f"  bar {'met    ' if met else 'NOT met'}  {text}")
    print("  DPO - SFT by the judge, seed by seed: " + ", ".join(
        f"{per_seed[s_]['judge_rate_dpo'] - per_seed[s_]['judge_rate_sft']:+.3f}" for s_ in seeds))
else:
    print(f"seeds {seeds} in the ledger for profile {PROFILE}: the bars need seeds 0, 1 and 2 "
          f"(labkit run 10 --seed 1, then --seed 2)")
print(f"notebook wall time {time.perf_counter() - started:.0f}s")

# %% [markdown]
# **What the seeds say.** DPO's continuations are judged positive more often than SFT's on
# every seed, but by amounts so unequal that the mean gain does not clear the seed spread:
# the first bar is not met. Read the seed 1 row: its DPO pleased the labeller the most of
# the three seeds, while its judge rate barely moved above SFT's, and its labeller was the
# least accurate of the three. That is the lesson of this notebook in one row: optimising
# against a weak labeller teaches the policy the labeller's taste, not the behaviour. What
# would clear the bar: a better labeller (more labels), more judged prompts per seed (the
# noise shrinks with their square root), more seeds and more DPO steps, which is what
# `full` on a GPU gives.
#
# ## Key takeaways
#
# * SFT teaches the *form* of the behaviour from demonstrations; preferences teach
#   *which* of the model's own outputs are better, which is easier to give than a
#   demonstration and says more about the model's actual mistakes.
# * A reward model is a classifier of pairs, trained with the Bradley-Terry loss. DPO
#   skips it: the policy's own log-probability ratio to the reference *is* its reward,
#   and the loss is a logistic loss on pairs, trained like any fine-tuning.
# * Every method pays in distance from the reference: best-of-n a known
#   $\log n - (n-1)/n$ nats, DPO as much as beta lets it. A reward is only half a result
#   without its KL.
# * Check against a judge that was not optimised against: the labeller's score rises
#   faster than the behaviour (reward hacking), most of all where the labeller is weak.
# * AI feedback is only as good as its labeller: a policy optimised against a poor one
#   learns the poor one's taste.
# * Demonstrations teach a small model the form (reviews) sooner than the property
#   (positive ones).
# * With a few dozen judged samples per model, one run decides nothing: compare seeds.
#
# ## Check your understanding

# %%
q = quiz.ask("10")

# %% [markdown]
# ## What to try next
#
# * More betas, or more DPO epochs, and watch the labeller's and the judge's rates part.
# * Raise `N_EVAL` until the per-seed noise is smaller than the differences you care about
#   (it shrinks with the square root of the number of prompts).
# * Train the reward model's body too (LoRA on the SFT model plus the scalar head), as
#   InstructGPT does; then best-of-16.
# * PPO against the reward model with `trl`, and compare its reward-vs-KL curve with DPO's.
# * The chat template (`lm_tok.apply_chat_template`) with an instruction ("Write a
#   positive movie review starting with ..."): does the instruct model need SFT at all?
#
# ## References
#
# * Christiano et al. 2017, *Deep reinforcement learning from human preferences*.
# * Stiennon et al. 2020, *Learning to summarize from human feedback*.
# * Ouyang et al. 2022, *Training language models to follow instructions with human
#   feedback* (InstructGPT).
# * Bai et al. 2022, *Constitutional AI: harmlessness from AI feedback*.
# * Rafailov et al. 2023, *Direct preference optimization: your language model is
#   secretly a reward model*.
# * Gao, Schulman & Hilton 2023, *Scaling laws for reward model overoptimization*.

# %%
run.finish()   # close this run in the ledger: only a notebook that ran to its end counts
