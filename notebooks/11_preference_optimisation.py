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
# # 11 · Preference optimisation: DPO and on-policy RL on one reward-vs-KL frontier
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/labkit-course/labkit/blob/main/notebooks/11_preference_optimisation.ipynb)
#
# Notebook 10 built the first two steps of InstructGPT's recipe (Ouyang et al. 2022) on
# SmolLM2-135M: a supervised fine-tuned (SFT) model that continues movie reviews, a
# labeller that ranks its samples, and a reward model trained on those rankings; and it
# spent the reward model on best-of-n sampling. This notebook takes the third step two
# ways and puts every method on **one frontier**: how much reward each buys (the reward
# model's score, the *proxy*) for how far it moves from the SFT model (the KL divergence):
#
# * **DPO** (Rafailov et al. 2023): no sampling during training, a logistic loss on the
#   labeller's pairs;
# * **on-policy RL**: sample from the current policy, score with the reward model, push
#   up what scored better than the policy's other samples (REINFORCE with a leave-one-out
#   baseline, RLOO: Ahmadian et al. 2024), with InstructGPT's KL penalty to the SFT model;
#   PPO's clipped ratio (Schulman et al. 2017) is the named extension.
#
# A **judge** that nothing was trained against (SmolLM2's zero-shot sentiment prompt of
# notebook 07) says whether the behaviour moved, with a paired interval over prompts.
#
# **You will be able to**
#
# * write DPO's loss and the RL loss (RLOO with a KL penalty), and check both against `trl`;
# * measure KL exactly on the policy's own sampled tokens, with its standard error;
# * read a reward-vs-KL frontier, and test for reward hacking with a judge.
#
# **Prerequisites**: notebook 10 (SFT, the reward model, best-of-n).

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
# ## 0 · Set-up
#
# `quick` is sized for one CPU core. This notebook starts from what notebook 10 built and
# saved for the same profile and seed (`labkit run 10` first; `labkit run 10 11` runs both
# in that order). `smoke` uses the tiny random Llama that notebook 10's smoke run trained
# and claims nothing.

# %%
import copy
import inspect
import time

if os.environ.get("LABKIT_HEADLESS") == "1":
    os.environ.setdefault("TQDM_DISABLE", "1")

import matplotlib.pyplot as plt
import numpy as np
import torch
import transformers

from labkit import align, checks, course, device, finetune, ledger, models, peft, prompts, quiz, rl, train
from labkit.profile import check, choose

check(PROFILE)
course.header("11_preference_optimisation")
transformers.logging.set_verbosity_error()
started = time.perf_counter()
device.seed_everything(SEED)
dev = device.pick()
run = ledger.Run("11_preference_optimisation", profile=PROFILE, seed=SEED, device=dev)

BETA = 0.1                                                     # DPO's beta
DPO_LEGS = choose(PROFILE, smoke=[1, 1], quick=[15, 15], full=[100, 100, 100])
RL_STEPS = choose(PROFILE, smoke=2, quick=8, full=100)
RL_EVAL_AT = choose(PROFILE, smoke=[1, 2], quick=[4, 8], full=[25, 50, 100])
RL_PROMPTS, RL_K = choose(PROFILE, smoke=2, quick=4, full=16), 4   # 16 samples per RL step in quick
BETA_KL = 0.05                                                 # RL's KL penalty
LM = choose(PROFILE, smoke="tiny random Llama", quick="smollm2", full="smollm2-360m")
print(f"profile {PROFILE}, seed {SEED}: DPO {sum(DPO_LEGS)} steps, RL {RL_STEPS} steps of "
      f"{RL_PROMPTS * RL_K} samples; device {dev.type}")

# %% [markdown]
# ## 1 · The stage of notebook 10
#
# The prompts (`Movie review: <first words>`), the labeller (a sentiment classifier
# fine-tuned on review sentences: the stand-in for people), the SFT model (LoRA on
# positive demonstrations), the `K` SFT samples per preference prompt that the labeller
# ranked, the reward model (a linear head on the SFT model's middle-layer features,
# Bradley-Terry loss), and the scores of the base and SFT models and of best-of-n's pool on
# the judged prompts: all as notebook 10 saved them (`align.load_stage`). Only the
# pre-trained model is loaded afresh; the judge is SmolLM2 zero-shot (notebook 07), frozen.

# %%
t0 = time.perf_counter()
stage_path = align.stage_dir(PROFILE, SEED)
if PROFILE == "smoke":   # the tiny random stand-in notebook 10 trained, rebuilt from its tokenizer
    base, lm_tok = align.tiny_causal_lm(transformers.AutoTokenizer.from_pretrained(stage_path / "labeller"))
else:
    base, lm_tok = models.load(LM, task="causal-lm", profile=PROFILE)
base.to(dev).eval()
for p in base.parameters():
    p.requires_grad_(False)
stage = align.load_stage(stage_path, base, profile=PROFILE, seed=SEED, device=dev)
sft, reward_model, labeller, enc_tok = stage.sft, stage.reward_model, stage.labeller, stage.labeller_tokenizer
info = stage.info
MAX_NEW, K, POOL, MARGIN = info["max_new"], info["k"], info["pool"], info["margin"]
eval_words, pref_prompts, pref_words = info["eval_words"], info["pref_prompts"], info["pref_words"]
pref_out, pref_scores = info["pref_out"], info["pref_scores"]
eval_prompts = [f"Movie review: {w}" for w in eval_words]
N_EVAL = len(eval_words)
pool_reward, pool_judge, pool_label = (stage.arrays[k] for k in ("pool_reward", "pool_judge", "pool_label"))
N_FRONT = len(pool_reward)          # the first prompts, where best-of-n has its pool
print(f"notebook 10's stage (profile {PROFILE}, seed {SEED}) loaded in {time.perf_counter() - t0:.0f}s: "
      f"{N_EVAL} judged prompts ({N_FRONT} with a best-of-n pool), {len(pref_prompts)} preference "
      f"prompts x {K} samples, {MAX_NEW}-token continuations")


def labeller_p(texts):
    """P(positive) by the labeller, one number per text."""
    return finetune.class_p(labeller, enc_tok, texts)


def judge_p(texts):
    """P(positive) by SmolLM2's calibrated zero-shot prompt judge (notebook 07)."""
    return prompts.ensemble_p(base, lm_tok, texts)


def feats(prompt_list, continuations):
    return align.features(sft, lm_tok, list(prompt_list), list(continuations),
                          max_completion_tokens=MAX_NEW)


def proxy(prompt_list, continuations):
    """The reward model's score of each continuation (the proxy reward)."""
    with torch.no_grad():
        return reward_model.reward(feats(prompt_list, continuations)).numpy()


# %% [markdown]
# ## 2 · Measuring a policy: paired, per prompt, KL on its own tokens
#
# Every policy writes one continuation per judged prompt with the same seed (common
# random numbers), keeping the **token ids it sampled** (`rl.generate`): scoring
# re-tokenised text would score other tokens than were drawn. For each prompt we keep the
# judge's P(positive), the labeller's, the proxy reward, and the KL from the SFT model,
# measured exactly: at every position of the sample, the KL between the two next-token
# distributions over the whole vocabulary, summed over the continuation
# (`rl.sequence_kl`). Its mean over prompts comes with a standard error.
#
# A CPU cannot afford all of that at every checkpoint. A checkpoint on the way is read
# where best-of-n has its pool, on the first `N_FRONT` prompts: its proxy reward and KL,
# a point of the frontier. The last checkpoint of each run is read on every one of the
# `N_EVAL` prompts by the judge and the labeller too.

# %%
print(inspect.getsource(rl.sequence_kl))

# %%
evals = {}


def measure(name, policy, judged=True):
    """Sample one continuation per prompt (seed SEED, ids kept); the proxy reward and the
    exact KL from SFT on the first N_FRONT prompts, and with `judged` the judge's and the
    labeller's scores on all N_EVAL."""
    some = eval_prompts if judged else eval_prompts[:N_FRONT]
    batch = rl.generate(policy, lm_tok, some, max_new_tokens=MAX_NEW, seed=SEED)
    e = {"reward": proxy(some, batch["texts"]), "texts": batch["texts"],
         "kl": rl.sequence_kl(policy, sft, rl.select(batch, range(N_FRONT))).numpy()}
    if judged:
        texts = [w + c for w, c in zip(eval_words, batch["texts"])]
        e["judge"], e["labeller"] = judge_p(texts), labeller_p(texts)
    evals[name] = e
    show(name)
    return e


def show(name):
    e = evals[name]
    kl = (f"KL {rl.mean_se(e['kl'])[0]:.2f} ± {rl.mean_se(e['kl'])[1]:.2f} nats" if "kl" in e
          else "KL from SFT not measured")
    judge = (f"judge {e['judge'].mean():.3f}  labeller rate {(e['labeller'] > 0.5).mean():.3f} "
             f"({len(e['judge'])} prompts)" if "judge" in e else "(not judged)")
    print(f"{name:10s} reward {e['reward'][:N_FRONT].mean():+.3f} (first {N_FRONT} prompts)  {kl}  {judge}")


# the base and SFT models' samples of these prompts, scored by notebook 10 with the same seed
for name in ("base", "sft"):
    evals[name] = {k: stage.arrays[f"{k}_{name}"] for k in ("judge", "labeller", "reward")}
    evals[name]["texts"] = info["samples"][name]
evals["sft"]["kl"] = np.zeros(N_FRONT)     # the SFT model is the reference: its KL is 0
for name in ("base", "sft"):
    show(name)

# %% [markdown]
# ## 3 · Best-of-n from one pool
#
# For each of the first `N_FRONT` prompts the SFT model wrote `POOL` = 8 samples once, in
# notebook 10. The best of n (n = 1, 2, 4, 8) by the proxy is not drawn again for each n: averaging over every subset of n of
# the 8 gives its expected judge score, labeller score and reward without bias
# (`rl.best_of_n_expectation`). Its KL from SFT is at most log n - (n-1)/n nats, an
# **upper bound** (Beirami et al. 2024), not an exact value.

# %%
for n in (1, 2, 4, 8):
    evals[f"bon{n}"] = {"judge": rl.best_of_n_expectation(pool_reward, pool_judge, n),
                        "labeller": rl.best_of_n_expectation(pool_reward, pool_label, n),
                        "reward": rl.best_of_n_expectation(pool_reward, pool_reward, n),
                        "kl_bound": align.best_of_n_kl(n)}
    e = evals[f"bon{n}"]
    print(f"best-of-{n}: reward {e['reward'].mean():+.3f}, KL <= {e['kl_bound']:.2f} nats, judge "
          f"{e['judge'].mean():.3f}")

# %% [markdown]
# ## 4 · DPO
#
# DPO turns the KL-regularised objective into a logistic loss on pairs: the policy's
# log-ratio to the reference, times beta, is its implicit reward, and the loss is
# Bradley-Terry on it:
# $\mathcal{L}_{DPO} = -\log \sigma\big(\beta \log \frac{\pi(y_w|x)}{\pi_{ref}(y_w|x)} -
# \beta \log \frac{\pi(y_l|x)}{\pi_{ref}(y_l|x)}\big)$.
#
# ### Your turn 11.1 · The DPO loss
#
# Four tensors of shape `(pairs,)`, the summed log-probabilities of each pair's chosen and
# rejected continuation under the policy and the reference, and `beta > 0`. Return **one
# loss per pair**.

# %%
def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    """One DPO loss per pair, from summed log-probabilities of shape (pairs,)."""
    ### BEGIN SOLUTION
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return -torch.nn.functional.logsigmoid(margin)
    ### END SOLUTION


dpo_loss = checks.run("11.1", dpo_loss)

# %% [markdown]
# Checked against `trl`'s DPOTrainer on the same pairs (the SFT model with its LoRA
# weights nudged at random, so that the loss is not simply log 2):

# %%
probe_pairs = align.preference_pairs(pref_prompts, pref_out, pref_scores)[:choose(PROFILE, smoke=4, quick=4, full=16)]
probe = copy.deepcopy(sft)
g = torch.Generator().manual_seed(SEED)
with torch.no_grad():
    for layer in peft.lora_layers(probe).values():
        layer.lora_B.weight.add_(torch.randn(layer.lora_B.weight.shape, generator=g).to(dev) * 0.01)
dpo_parity = align.trl_loss_parity(probe, sft, lm_tok, probe_pairs, beta=BETA, batch_size=4, loss=dpo_loss)
del probe
print(f"DPO: largest |ours - trl| over {len(probe_pairs)} pairs: {dpo_parity:.2e}")
run.log("dpo_loss_parity_max_abs_diff", dpo_parity, n=len(probe_pairs))

# %% [markdown]
# The policy starts as the SFT model and trains its LoRA weights with `train.fit` on
# every labeller pair of the preference prompts (best vs worst of each prompt's `K`), in
# legs of a few steps (AdamW restarts at each leg); after each leg it is measured as in
# section 2. Where it lands on the frontier is set by the learning rate times the steps;
# beta sets where the loss saturates, which a run this short does not reach.

# %%
dpo_pairs = align.preference_pairs(pref_prompts, pref_out, pref_scores, min_margin=MARGIN)
dpo_rows = align.add_reference_logps(sft, align.pair_rows(lm_tok, dpo_pairs, max_completion_tokens=MAX_NEW),
                                     lm_tok.pad_token_id)
dpo = copy.deepcopy(sft)
for name, p in dpo.named_parameters():
    p.requires_grad_("lora_" in name)
done = 0
for i, steps in enumerate(DPO_LEGS):
    train.fit(dpo, dpo_rows, loss_fn=align.DPOLoss(BETA, loss=dpo_loss),
              collate_fn=align.pair_collate(lm_tok.pad_token_id), max_steps=steps, batch_size=4,
              lr=5e-4, warmup=0.1 if i == 0 else 0.0, device=dev, seed=SEED + i, desc=f"DPO leg {i + 1}")
    done += steps
    dpo.eval()
    measure(f"dpo@{done}", dpo, judged=i == len(DPO_LEGS) - 1)
DPO_FINAL = f"dpo@{done}"

# %% [markdown]
# ## 5 · On-policy RL, written out
#
# The step InstructGPT takes with PPO, in its simplest sound form. Each step:
#
# 1. `RL_PROMPTS` training prompts, `RL_K` samples each from the **current** policy,
#    token ids kept (`rl.generate`);
# 2. the proxy reward of each, and the log-ratio log pi_old(y|x) - log pi_SFT(y|x) of each
#    sample (`rl.log_ratios`, no gradients);
# 3. the loss below, one gradient step on the LoRA weights.
#
# ### Your turn 11.2 · The RL loss
#
# Inputs, all of shape `(samples,)` with the `k` samples of a prompt next to each other:
# `logps` (log pi(y|x) of the policy being trained, with gradients), `old_logps` (the same
# before the update, no gradients), `scores` (the reward model's), `log_ratio` (log pi_old
# - log pi_ref). Then:
#
# * reward = score - beta * log_ratio (the KL penalty, per sequence);
# * advantage = reward - the mean reward of the **other** k - 1 samples of the same prompt
#   (RLOO's leave-one-out baseline: it lowers the variance and, not using the sample
#   itself, keeps the gradient unbiased);
# * loss = -mean(exp(logps - old_logps) * advantage), advantages held constant.
#
# In one pass the ratio exp(logps - old_logps) is 1, and the gradient is advantage x
# grad log pi: REINFORCE. PPO clips this ratio to [1 - 0.2, 1 + 0.2] (`rl.ppo_clip_loss`)
# so that several passes over the same samples cannot move the policy far; **with one
# pass its gradient equals this one**.

# %%
def rl_loss(logps, old_logps, scores, log_ratio, k, beta):
    """RLOO with a KL penalty: one loss for the batch."""
    ### BEGIN SOLUTION
    rewards = (scores - beta * log_ratio).detach()
    group = rewards.view(-1, k)
    baseline = ((group.sum(1, keepdim=True) - group) / (k - 1)).view(-1)
    return -(torch.exp(logps - old_logps.detach()) * (rewards - baseline)).mean()
    ### END SOLUTION


rl_loss = checks.run("11.2", rl_loss)

# %% [markdown]
# Checked against `trl`'s RLOOTrainer on one batch it samples and scores itself (our
# reward model as its Python reward function): the advantages, and the loss and its
# gradient on the LoRA weights at the sampling policy and after a random nudge (a second
# pass).

# %%
PARITY_PROMPTS = choose(PROFILE, smoke=2, quick=1, full=2)   # RL_K samples each; the check
probe = copy.deepcopy(sft)                                   # is exact on any batch
with torch.no_grad():
    for layer in peft.lora_layers(probe).values():
        layer.lora_B.weight.add_(torch.randn(layer.lora_B.weight.shape, generator=g).to(dev) * 0.01)
rl_parity = rl.trl_loss_parity(probe, sft, lm_tok, pref_prompts[:PARITY_PROMPTS],
                               lambda ps, cs: proxy(ps, cs).tolist(), k=RL_K, beta=BETA_KL,
                               max_new_tokens=min(MAX_NEW, 8), loss=rl_loss, nudge=0.002, seed=SEED)
del probe
print(f"RL: largest |ours - trl| (advantages, loss, gradient): {rl_parity:.2e}")
run.log("rl_loss_parity_max_abs_diff", rl_parity, n=PARITY_PROMPTS * RL_K)

# %% [markdown]
# The loop. Reward, KL and the labeller's positive rate are logged every step, so the
# path from SFT outwards comes free. The step's KL is the mean of its samples' log-ratios
# log pi(y|x) - log pi_SFT(y|x): the same expectation as the exact KL, noisier, and it
# costs nothing more (the penalty needs those log-ratios anyway). With one pass per batch
# pi_old is the policy itself, so `old_logps` is `logps` without its gradient.

# %%
policy = copy.deepcopy(sft)
lora = [p for name, p in policy.named_parameters() if "lora_" in name]
for p in lora:
    p.requires_grad_(True)
optimizer = torch.optim.AdamW(lora, lr=choose(PROFILE, smoke=1e-3, quick=2e-3, full=1e-4))
rng = np.random.default_rng(SEED)
log = []
for step in range(1, RL_STEPS + 1):
    t0 = time.perf_counter()
    chosen = [pref_prompts[i] for i in rng.choice(len(pref_prompts), RL_PROMPTS, replace=False)]
    batch = rl.generate(policy, lm_tok, chosen, n=RL_K, max_new_tokens=MAX_NEW, seed=1000 * SEED + step)
    scores = torch.as_tensor(proxy([p for p in chosen for _ in range(RL_K)], batch["texts"]))
    t = rl.tensors(batch, dev)
    policy.train()
    logps = align.sequence_logps(policy, t)
    with torch.no_grad():
        log_ratio = logps.detach() - align.sequence_logps(sft, t)
    kl = log_ratio.cpu()
    loss = rl_loss(logps, logps.detach(), scores.to(dev), log_ratio, RL_K, BETA_KL)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    policy.eval()
    texts = [chosen[i // RL_K].removeprefix("Movie review: ") + t for i, t in enumerate(batch["texts"])]
    log.append({"step": step, "reward": float(scores.mean()), "kl": float(kl.mean()),
                "labeller_rate": float((labeller_p(texts) > 0.5).mean()),
                "seconds": time.perf_counter() - t0})
    print(f"step {step:3d}: reward {log[-1]['reward']:+.3f}  KL {log[-1]['kl']:.2f}  labeller "
          f"rate {log[-1]['labeller_rate']:.2f}  ({log[-1]['seconds']:.1f}s)")
    if step in RL_EVAL_AT:
        measure(f"rl@{step}", policy, judged=step == RL_EVAL_AT[-1])
RL_FINAL = f"rl@{RL_EVAL_AT[-1]}"
first, last = np.mean([r["reward"] for r in log[:3]]), np.mean([r["reward"] for r in log[-3:]])
run.log("rl_reward_first", float(first), steps=3)
run.log("rl_reward_last", float(last), steps=3)

# %% [markdown]
# ## 6 · One frontier
#
# Left: proxy reward against KL from the SFT model on the first `N_FRONT` prompts
# (best-of-n at its KL bound, DPO and RL at their measured KL with ± one standard error).
# Right: the judge's **paired gain** for each method's last point, mean P(positive) per
# prompt, with a 95% paired bootstrap interval over prompts: DPO and RL over SFT on the
# `N_EVAL` prompts; best-of-n over the same pool's n = 1 (which estimates SFT there) on its
# `N_FRONT`. The judge is the one nothing was trained against.

# %%
against = {"base": "sft", "bon2": "bon1", "bon4": "bon1", "bon8": "bon1", DPO_FINAL: "sft", RL_FINAL: "sft"}
gains = {name: rl.paired_gain(evals[ref]["judge"], evals[name]["judge"]) for name, ref in against.items()}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
bon = [f"bon{n}" for n in (1, 2, 4, 8)]
ax1.plot([evals[b]["kl_bound"] for b in bon], [evals[b]["reward"].mean() for b in bon], "^-",
         label="best-of-n (KL: upper bound)")
for prefix, style, label in (("dpo@", "o-", "DPO"), ("rl@", "s-", "RL (RLOO + KL penalty)")):
    names = [n for n in evals if n.startswith(prefix)]
    ms = [rl.mean_se(evals[n]["kl"]) for n in names]
    ax1.errorbar([0.0] + [m for m, _ in ms], [evals["sft"]["reward"][:N_FRONT].mean()] +
                 [evals[n]["reward"][:N_FRONT].mean() for n in names],
                 xerr=[0.0] + [s for _, s in ms], fmt=style, capsize=3, label=label)
ax1.set_xlabel("KL from the SFT model (nats per continuation)")
ax1.set_ylabel("proxy reward (reward model)")
ax1.set_title("Reward vs KL")
ax1.grid(alpha=0.3)
ax1.legend(fontsize=8)
shown = list(against)
y = np.arange(len(shown))
ax2.errorbar([gains[n]["gain"] for n in shown], y,
             xerr=[[gains[n]["gain"] - gains[n]["ci_low"] for n in shown],
                   [gains[n]["ci_high"] - gains[n]["gain"] for n in shown]], fmt="o", capsize=3)
ax2.axvline(0, color="gray", lw=1)
ax2.set_yticks(y, [f"{n} - {against[n]}" for n in shown])
ax2.set_xlabel("judge: gain in mean P(positive), 95% paired interval")
ax2.set_title(f"Judge's paired gains (seed {SEED})")
plt.tight_layout()
plt.show()
for n in shown:
    print(rl.verdict(gains[n], f"{n} - {against[n]} ({len(evals[n]['judge'])} prompts): the judge's P(positive)"))

# %% [markdown]
# ## 7 · Reward hacking, tested
#
# If a policy pleased the labeller (whose rankings it learned from) without the behaviour
# changing, its samples would score lower with the judge than their labeller score
# predicts. The line: judge ~ labeller fitted on the SFT model's samples; for each
# optimised policy, the mean residual of its samples below that line, with a bootstrap
# interval over prompts. A residual interval below 0 is evidence of hacking; one that
# includes 0 is not resolved at this size.

# %%
slope, intercept = np.polyfit(evals["sft"]["labeller"], evals["sft"]["judge"], 1)
print(f"on SFT samples: judge = {intercept:.3f} + {slope:.3f} x labeller")
hacking = {}
for name in (DPO_FINAL, RL_FINAL):
    e = evals[name]
    hacking[name] = rl.paired_gain(intercept + slope * e["labeller"], e["judge"])
    print(rl.verdict(hacking[name], f"{name}: the judge's score relative to the line"))

# %% [markdown]
# ## 8 · The ledger, and what three seeds say
#
# Each seed writes its rows and its per-prompt judge scores (`runs/`); the cell after
# pools the seeds found: each prompt's gain averaged over seeds, then a paired bootstrap
# over prompts.

# %%
# (the base model's, SFT's and best-of-n's rows are notebook 10's)
for name, key in ((DPO_FINAL, "dpo"), (RL_FINAL, "rl")):
    run.log(f"judge_p_{key}", float(evals[name]["judge"].mean()), n=N_EVAL)
    g_ = gains[name]
    run.log(f"judge_gain_{key}", g_["gain"], ci_low=g_["ci_low"], ci_high=g_["ci_high"], n=N_EVAL)
    m, se = rl.mean_se(evals[name]["kl"])
    run.log(f"kl_{key}", m, se=se, n=N_FRONT)
    run.log(f"labeller_rate_{key}", float((evals[name]["labeller"] > 0.5).mean()), n=N_EVAL)
    run.log(f"reward_gain_{key}", float(evals[name]["reward"].mean() - evals["sft"]["reward"].mean()),
            n=N_EVAL)
SETTING = {"lm": LM, "n_eval": N_EVAL, "dpo_legs": DPO_LEGS, "rl_steps": RL_STEPS,
           "rl_samples": RL_PROMPTS * RL_K}
rl.save_prompt_scores("11_preference_optimisation", PROFILE, SEED,
                      {k: evals[n]["judge"] for n, k in (("sft", "sft"), (DPO_FINAL, "dpo"), (RL_FINAL, "rl"))},
                      SETTING)

# %%
pooled = rl.pooled_prompt_scores("11_preference_optimisation", PROFILE, SEEDS, SETTING)
print(f"seeds with per-prompt scores: {sorted(pooled)}")
if len(pooled) >= 2:
    for key in ("dpo", "rl"):
        g_ = rl.paired_gain([pooled[s_]["sft"] for s_ in pooled], [pooled[s_][key] for s_ in pooled])
        print(rl.verdict(g_, f"{key.upper()} over SFT, seeds {sorted(pooled)} pooled"))

# %% [markdown]
# ## The lesson, checked
#
# Both losses equal `trl`'s to 1e-5. Beyond `smoke`, what this design resolves: the proxy
# reward rises under DPO and RL and along best-of-n, and KL rises along each path. The
# judge is reported with its interval above, not asserted.

# %%
assert dpo_parity < 1e-5, f"the DPO loss differs from trl's by {dpo_parity:.2e}"
assert rl_parity < 1e-5, f"the RL loss differs from trl's by {rl_parity:.2e}"
if PROFILE != "smoke":
    assert evals["bon8"]["reward"].mean() > evals["bon1"]["reward"].mean(), "best-of-8 did not raise the reward"
    for name in (DPO_FINAL, RL_FINAL):      # the same prompts and sampling seed as SFT's
        assert evals[name]["reward"].mean() > evals["sft"]["reward"].mean(), f"{name} did not raise the reward"
    for prefix in ("dpo@", "rl@"):
        kls = [evals[n]["kl"].mean() for n in evals if n.startswith(prefix)]
        assert kls[-1] > kls[0] > 0, f"KL did not rise along {prefix[:-1]}: {kls}"
for name in (DPO_FINAL, RL_FINAL):
    print(f"{name}: proxy reward {evals['sft']['reward'].mean():+.3f} -> {evals[name]['reward'].mean():+.3f}, "
          f"labeller rate {(evals['sft']['labeller'] > 0.5).mean():.3f} -> {(evals[name]['labeller'] > 0.5).mean():.3f} "
          f"({N_EVAL} prompts, the same as SFT's)")
print(f"notebook wall time {time.perf_counter() - started:.0f}s (CPU time of this process "
      f"{time.process_time():.0f}s: the wall time of a machine with nothing else running)")

# %% [markdown]
# ## Key takeaways
#
# * DPO and on-policy RL optimise the same KL-regularised objective: DPO from fixed pairs
#   with a logistic loss, RL from the policy's own fresh samples scored by the reward
#   model. A reward is half a result without its KL.
# * RLOO needs no value network: the other samples of the same prompt are the baseline.
#   PPO's clip matters only when the same samples are reused for several passes.
# * Measure KL on the tokens the policy sampled, exactly over the vocabulary, with a
#   standard error; best-of-n's log n - (n-1)/n is an upper bound.
# * Compare policies paired, on the same prompts, with an interval; test for hacking
#   against a judge nothing was trained on, and claim only what the interval resolves.
#
# ## Check your understanding

# %%
q = quiz.ask("11")

# %% [markdown]
# ## What to try next
#
# * Several PPO passes per batch (`rl.ppo_clip_loss`) and watch the ratio clip.
# * A larger `BETA_KL`: RL stops further out or earlier on the frontier?
# * Longer DPO until its loss saturates; then beta's role shows.
#
# ## References
#
# * Ouyang et al. 2022, *Training language models to follow instructions with human
#   feedback* (InstructGPT), arXiv 2203.02155.
# * Rafailov et al. 2023, *Direct preference optimization*, arXiv 2305.18290.
# * Ahmadian et al. 2024, *Back to basics: revisiting REINFORCE-style optimization for
#   learning from human feedback in LLMs* (RLOO), arXiv 2402.14740.
# * Schulman et al. 2017, *Proximal policy optimization algorithms*, arXiv 1707.06347.
# * Gao, Schulman & Hilton 2023, *Scaling laws for reward model overoptimization*,
#   arXiv 2210.10760.
# * Beirami et al. 2024, *Theoretical guarantees on the best-of-n alignment policy*,
#   arXiv 2401.01879.

# %%
run.finish()   # close this run in the ledger: only a notebook that ran to its end counts
