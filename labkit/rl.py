"""On-policy reinforcement learning against a reward model, and how to measure it.

    >>> from labkit import rl
    >>> batch = rl.generate(policy, tok, prompts, n=4, max_new_tokens=16, seed=step)
    >>> logps = align.sequence_logps(policy, batch)                       # with gradients
    >>> loss = rl.rl_loss(logps, logps.detach(), scores, log_ratios, k=4, beta=0.05)
    >>> kl = rl.sequence_kl(policy, reference, batch)                     # exact, per sample

The step InstructGPT (Ouyang et al. 2022) takes after the reward model: sample from the
current policy, score the samples, and push up the log-probability of the ones that
scored better than expected. The pieces:

* `generate`: `k` completions per prompt from the current policy, **keeping their token
  ids** (decoding and re-tokenising text would score other tokens than were sampled).
* `rloo_advantages`: REINFORCE with a leave-one-out baseline (RLOO, Ahmadian et al. 2024):
  each sample's reward minus the mean reward of the other k - 1 samples of its prompt.
* `rl_loss` (the lesson): reward = reward-model score - beta * log pi_old/pi_ref (the KL
  penalty of InstructGPT, per sequence), RLOO advantages, and the policy-gradient loss
  -mean(ratio * advantage) with ratio = pi/pi_old. In one pass over a batch pi = pi_old,
  the ratio is 1 and its gradient is advantage * grad log pi: plain REINFORCE.
* `ppo_clip_loss`: PPO's clipped ratio (Schulman et al. 2017), which matters only when
  the same samples are used for several passes (then pi drifts from pi_old); with one
  pass its gradient equals `rl_loss`'s.
* `sequence_kl`: KL(policy || reference) of each sample, exact over the vocabulary at
  every position of the policy's own sample, summed over the completion; `mean_se` gives
  the mean over samples with its standard error.
* `best_of_n_expectation`: the expected value (reward, judge score, anything) of the best
  of n samples, estimated without bias from one pool of m >= n samples per prompt.
* `paired_gain`: B - A per prompt, with a paired bootstrap interval over prompts.
* `save_prompt_scores` / `pooled_prompt_scores`: each seed's per-prompt scores kept in
  `runs/` with the setting that chose the prompts, and pooled over the seeds that ran
  with the same one.
* `trl_loss_parity`: the same batch through the `trl` library's RLOOTrainer, to check
  `rl_loss` against it.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from .align import collate, first_scored, sequence_logps


# --------------------------------------------------------------------------- sampling, with ids
def sample_next(probs: torch.Tensor) -> torch.Tensor:
    """One index per row of `probs` (rows of non-negative weights), drawn with probability
    proportional to its weight: inverse-CDF sampling, one uniform number per row from
    torch's random stream, looked up in the row's running sum. The distribution of
    `torch.multinomial(probs, 1)`, which on a CPU is about twenty times slower over a
    49,152-word vocabulary (it spends 1.2 ms a row there; this, 0.06 ms). An index of
    weight 0 is never drawn."""
    cdf = probs.float().cumsum(-1)
    u = torch.rand(len(cdf), 1, device=cdf.device) * cdf[:, -1:]
    idx = torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.shape[-1] - 1)
    zero = probs.gather(1, idx) <= 0              # u rounded up onto the total: rare
    if bool(zero.any()):
        idx = torch.where(zero, probs.argmax(-1, keepdim=True), idx)
    return idx.squeeze(1)


class _Sample:
    """A logits processor for `model.generate` that samples the next token itself (at
    `temperature`, with `sample_next`) and leaves only it possible, so that greedy
    decoding picks it. It runs after generate's own processors (e.g. the one that blocks
    the end of text), so it samples what they allow."""

    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, input_ids, scores):
        token = sample_next((scores.float() / self.temperature).softmax(-1))
        out = torch.full_like(scores, -math.inf)
        return out.scatter_(1, token[:, None], 0.0)


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[str], *, n: int = 1, max_new_tokens: int = 16,
             temperature: float = 1.0, seed: int = 0, batch_size: int = 64) -> dict:
    """`n` completions of each prompt sampled from `model` at `temperature` (no top-k/top-p
    cut; the end of text is blocked, so every completion is `max_new_tokens` long), returned
    as one right-padded batch of prompt + completion token ids, the rows of a prompt next to
    each other: `input_ids`, `attention_mask`, `completion_mask` (1 on the sampled tokens),
    and `texts` (the completions decoded, for readers that need text). Repeatable with
    `seed`; the global random stream is left as it was. Each token is drawn by
    `sample_next` (what `do_sample=True` would draw, at a fraction of its cost on a CPU)."""
    if not prompts:
        raise ValueError("generate() got no prompts")
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    flat = [p for p in prompts for _ in range(n)]
    rows, texts = [], []
    try:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            for start in range(0, len(flat), batch_size):
                enc = tokenizer(flat[start:start + batch_size], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(dev)
                gen = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                     do_sample=False, logits_processor=[_Sample(temperature)],
                                     max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                                     pad_token_id=tokenizer.pad_token_id)
                width = enc["input_ids"].shape[1]
                for ids, mask, new in zip(enc["input_ids"], enc["attention_mask"], gen[:, width:]):
                    prompt = ids[mask.bool()].tolist()
                    rows.append({"input_ids": prompt + new.tolist(),
                                 "completion_mask": [0] * len(prompt) + [1] * len(new)})
                texts += tokenizer.batch_decode(gen[:, width:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    batch = collate(tokenizer.pad_token_id)(rows)
    batch["texts"] = texts
    return batch


def tensors(batch: dict, device=None) -> dict:
    """The tensors of a `generate` batch (optionally moved to `device`), without the texts."""
    return {k: (v.to(device) if device is not None else v) for k, v in batch.items()
            if torch.is_tensor(v)}


def select(batch: dict, index: Sequence[int]) -> dict:
    """The rows `index` of a `generate` batch."""
    idx = torch.as_tensor(list(index))
    out = {k: v[idx] for k, v in batch.items() if torch.is_tensor(v)}
    out["texts"] = [batch["texts"][i] for i in idx.tolist()]
    return out


# --------------------------------------------------------------------------- KL, measured exactly
@torch.no_grad()
def sequence_kl(policy, reference, batch: dict, *, batch_size: int = 16) -> torch.Tensor:
    """KL(policy || reference) of each sampled sequence: at every completion position t the
    exact KL between the two next-token distributions over the whole vocabulary,
    sum_v pi(v|y<t) (log pi(v|y<t) - log pi_ref(v|y<t)), summed over the completion. The
    prefixes y<t are the policy's own samples, so the mean over samples estimates the KL of
    the sequence distributions without bias, with less noise than log pi(y) - log pi_ref(y)
    (the same expectation, summed over the vocabulary instead of sampled).

    Only the cost changes with how it is computed: the rows are read in order of length
    (each chunk padded to its own longest) and the distributions over the vocabulary are
    made only from the first completion position on, not for the prompt."""
    dev = next(policy.parameters()).device
    states = policy.training, reference.training
    policy.eval()
    reference.eval()
    t = tensors(batch)
    lengths = t["attention_mask"].sum(1)
    order = torch.argsort(lengths, stable=True)
    out = torch.zeros(len(lengths))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = int(lengths[idx].max())
        b = {k: v[idx, :width].to(dev) for k, v in t.items()}
        target = b["completion_mask"][:, 1:]              # position t predicts token t + 1
        first = first_scored(b["completion_mask"])        # the first position any row needs
        kw = dict(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                  logits_to_keep=torch.arange(first, width - 1, device=dev))
        logp = policy(**kw).logits.float().log_softmax(-1)
        logq = reference(**kw).logits.float().log_softmax(-1)
        per_token = (logp.exp() * (logp - logq)).sum(-1)
        out[idx] = (per_token * target[:, first:]).sum(-1).cpu()
    policy.train(states[0])
    reference.train(states[1])
    return out


def mean_se(values) -> tuple[float, float]:
    """The mean of `values` and its standard error (sample std / sqrt(n))."""
    v = np.asarray(values, dtype=float).ravel()
    if v.size < 2:
        raise ValueError("a standard error needs at least two values")
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


@torch.no_grad()
def log_ratios(policy, reference, batch: dict, *, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(log pi(y|x), log pi(y|x) - log pi_ref(y|x)) of each sample, no gradients: the
    policy's log-probabilities before the update (pi_old) and the per-sequence log-ratio the
    KL penalty is made of."""
    dev = next(policy.parameters()).device
    t = tensors(batch)
    old, ratio = [], []
    for start in range(0, len(t["input_ids"]), batch_size):
        b = {k: v[start:start + batch_size].to(dev) for k, v in t.items()}
        lp, lq = sequence_logps(policy, b), sequence_logps(reference, b)
        old.append(lp.cpu())
        ratio.append((lp - lq).cpu())
    return torch.cat(old), torch.cat(ratio)


# --------------------------------------------------------------------------- the RL loss
def rloo_advantages(rewards: torch.Tensor, k: int) -> torch.Tensor:
    """REINFORCE leave-one-out: each reward minus the mean of the other k - 1 rewards of the
    same prompt (the k samples of a prompt are consecutive). The baseline does not use the
    sample itself, so the gradient stays unbiased; it sums to zero within each group."""
    if k < 2:
        raise ValueError("a leave-one-out baseline needs at least 2 samples per prompt")
    if rewards.numel() % k:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of k={k}")
    g = rewards.reshape(-1, k)
    baseline = (g.sum(1, keepdim=True) - g) / (k - 1)
    return (g - baseline).reshape(-1)


def rl_loss(logps: torch.Tensor, old_logps: torch.Tensor, scores: torch.Tensor,
            log_ratio: torch.Tensor, k: int, beta: float) -> torch.Tensor:
    """The on-policy RL loss of one batch, one number.

    reward = score - beta * log(pi_old / pi_ref) per sequence (the KL penalty), advantage =
    reward minus the mean reward of the prompt's other k - 1 samples (RLOO), loss =
    -mean(ratio * advantage) with ratio = pi / pi_old = exp(logps - old_logps). Rewards and
    advantages are constants (no gradient flows through the reward model or the penalty);
    the gradient is advantage * grad log pi, REINFORCE's."""
    rewards = (scores - beta * log_ratio).detach()
    advantages = rloo_advantages(rewards, k)
    return -(torch.exp(logps - old_logps.detach()) * advantages).mean()


def ppo_clip_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor,
                  epsilon: float = 0.2) -> torch.Tensor:
    """PPO's clipped surrogate (Schulman et al. 2017): -mean(min(ratio * A, clip(ratio,
    1 - epsilon, 1 + epsilon) * A)). It differs from -mean(ratio * A) only once the ratio
    leaves [1 - epsilon, 1 + epsilon], i.e. on a second or later pass over the same samples;
    in one pass the ratio is 1 and the two gradients are equal."""
    ratio = torch.exp(logps - old_logps.detach())
    return -torch.min(ratio * advantages, ratio.clamp(1 - epsilon, 1 + epsilon) * advantages).mean()


# --------------------------------------------------------------------------- best-of-n, paired gains
def best_of_n_weights(m: int, n: int) -> np.ndarray:
    """P(the i-th smallest of m samples is the best of n drawn from them without
    replacement) = C(i-1, n-1) / C(m, n), for i = 1..m."""
    if not 1 <= n <= m:
        raise ValueError(f"best-of-{n} needs 1 <= n <= m = {m} samples in the pool")
    return np.array([math.comb(i, n - 1) for i in range(m)], dtype=float) / math.comb(m, n)


def best_of_n_expectation(rewards, values, n: int) -> np.ndarray:
    """Per prompt, the expected `values` of the best-of-n sample (the one with the highest
    reward), estimated without bias from a pool of m samples: every subset of n of the m is
    averaged over, which is the weights of `best_of_n_weights` on the samples sorted by
    reward. `rewards` and `values` have shape (prompts, m)."""
    r, v = np.asarray(rewards, dtype=float), np.asarray(values, dtype=float)
    if r.shape != v.shape or r.ndim != 2:
        raise ValueError(f"rewards {r.shape} and values {v.shape} must both be (prompts, m)")
    order = np.argsort(r, axis=1, kind="stable")
    return (np.take_along_axis(v, order, axis=1) * best_of_n_weights(r.shape[1], n)).sum(1)


def paired_gain(a, b, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """The mean gain b - a over prompts, with a paired bootstrap interval: the prompts are
    resampled, each keeping its own pair of values. `a` and `b` are (prompts,) or (seeds,
    prompts) arrays for the same prompts; with several seeds, each prompt's gain is first
    averaged over the seeds (the seeds are pooled), then the prompts are resampled."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    d = (b - a).reshape(-1, a.shape[-1]).mean(0)
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return {"gain": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi), "n": int(d.size)}


def verdict(g: dict, what: str) -> str:
    """One sentence about a paired gain that says only what its interval shows."""
    span = f"{g['gain']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]"
    if g["ci_low"] > 0:
        return f"{what} rose by {span}: resolved, above zero"
    if g["ci_high"] < 0:
        return f"{what} fell by {span}: resolved, below zero"
    return f"{what} changed by {span}: not resolved at this size (the interval includes 0)"


def _prompt_scores_path(notebook: str, profile: str, seed: int) -> Path:
    from .ledger import runs_dir

    return runs_dir() / notebook / f"{profile}-seed{seed}.json"


def save_prompt_scores(notebook: str, profile: str, seed: int, scores: dict,
                       setting: dict) -> Path:
    """Keep one seed's per-prompt scores (name -> one number per prompt) in
    `runs/<notebook>/<profile>-seed<seed>.json`, with the `setting` that chose the prompts
    (how many, how long the samples, which model), so that another seed's run can pool
    them (`pooled_prompt_scores`)."""
    from .ledger import write_atomic

    return write_atomic(_prompt_scores_path(notebook, profile, seed), json.dumps(
        {"setting": setting, "scores": {k: np.asarray(v, dtype=float).tolist()
                                        for k, v in scores.items()}}))


def pooled_prompt_scores(notebook: str, profile: str, seeds: Sequence[int],
                         setting: dict) -> dict[int, dict]:
    """The per-prompt scores (`save_prompt_scores`) of each of `seeds` that has run with
    this same `setting`, so the same prompts: {seed: {name: list}}. A seed kept from
    another setting (e.g. before a change to the number of prompts) is named and left
    out: run it again to pool it."""
    pooled, stale = {}, []
    for seed in seeds:
        path = _prompt_scores_path(notebook, profile, seed)
        if not path.exists():
            continue
        kept = json.loads(path.read_text())
        if kept.get("setting") == setting:
            pooled[seed] = kept["scores"]
        else:
            stale.append(seed)
    if stale:
        print(f"left out seed(s) {stale}: their per-prompt scores in runs/{notebook}/ come "
              f"from another setting than this run's ({setting}); run them again "
              f"(`labkit run {notebook[:2]} --seed N`) to pool them")
    return pooled


# --------------------------------------------------------------------------- trl parity
def trl_loss_parity(policy, reference, tokenizer, prompts: Sequence[str],
                    reward_fn: Callable[[list[str], list[str]], list[float]], *, k: int = 4,
                    beta: float = 0.05, max_new_tokens: int = 8, loss: Callable = rl_loss,
                    nudge: float = 0.01, seed: int = 0) -> float:
    """The largest difference between our RL loss and `trl`'s RLOOTrainer on one batch that
    trl samples and scores itself (`reward_fn(prompts, completions)`): the loss at the
    sampling policy (one pass) and after the LoRA weights are nudged at random (a later
    pass, where the ratio pi/pi_old is no longer 1), each as a value and as its gradient on
    the LoRA weights (in one pass every group's advantages sum to 0, so the value alone is
    ~0 whatever the penalty), and the advantages. `loss` is ours
    (default `rl_loss`; a notebook passes the learner's). Both losses read the same
    log-probabilities, trl's (its tiled LM head rounds them differently from a plain
    log_softmax, by ~1e-4 on a sum of 6 tokens): what is compared is the loss built from
    them. Works on copies. trl builds its own reference from a hub id, so ours is handed
    to it after construction."""
    import tempfile
    import warnings

    import datasets
    import trl

    from . import peft

    scores: dict[tuple[str, str], float] = {}

    def reward(prompts, completions, **_):   # noqa: ARG001
        out = [float(s) for s in reward_fn(list(prompts), list(completions))]
        scores.update(zip(zip(prompts, completions), out))
        return out

    reward.__name__ = "reward_model"
    with tempfile.TemporaryDirectory(prefix="trl-rloo-") as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".*deprecated and will be removed in v6", FutureWarning)
        policy, reference = copy.deepcopy(policy).eval(), copy.deepcopy(reference).eval()
        for m in (policy, reference):
            if getattr(m, "is_quantized", False):
                m.is_quantized, m.hf_quantizer = False, None
        dev = next(policy.parameters()).device
        args = trl.RLOOConfig(output_dir=tmp, beta=0.0, num_generations=k,
                              per_device_train_batch_size=k * len(prompts),
                              max_completion_length=max_new_tokens, temperature=1.0,
                              report_to=[], use_cpu=dev.type == "cpu", save_strategy="no",
                              logging_strategy="no", seed=seed, bf16=False)
        data = datasets.Dataset.from_list([{"prompt": p} for p in prompts])
        trainer = trl.RLOOTrainer(model=policy, reward_funcs=reward, args=args, train_dataset=data,
                                  processing_class=tokenizer)
        trainer.beta, trainer.ref_model = beta, reference
        from trl.trainer.utils import add_fused_lm_head   # what trl does to its own reference
        add_fused_lm_head(reference, temperature=trainer.temperature)
        torch.manual_seed(seed)
        inputs = trainer._generate_and_score_completions([{"prompt": p} for p in prompts for _ in range(k)])
        model = trainer.model
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
        mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
        width, cmask = inputs["completion_ids"].shape[1], inputs["completion_mask"]

        def seq_logps(m, grad=False):    # trl's own log-probabilities (a tiled LM head), summed
            with torch.set_grad_enabled(grad):
                per_token = trainer._get_per_token_logps_and_entropies(m, ids, mask, width)[0]
            return (per_token * cmask).sum(1)

        lora = [p for n, p in model.named_parameters() if "lora_" in n]
        for p in model.parameters():
            p.requires_grad_(False)
        for p in lora:
            p.requires_grad_(True)

        def grads(value: torch.Tensor) -> torch.Tensor:
            out = torch.autograd.grad(value, lora, retain_graph=True)
            return torch.cat([x.reshape(-1) for x in out])

        texts = tokenizer.batch_decode(inputs["completion_ids"], skip_special_tokens=True)
        prompt_of = [p for p in prompts for _ in range(k)]
        s = torch.tensor([scores[(p, c)] for p, c in zip(prompt_of, texts)])
        old = seq_logps(model)
        ratio = old - seq_logps(reference)
        ours_adv = rloo_advantages(s - beta * ratio, k)
        worst = float((ours_adv - inputs["advantages"].cpu()).abs().max())
        g = torch.Generator().manual_seed(seed)
        for step in range(2):
            if step == 1:     # a second pass: the policy has moved since it sampled
                with torch.no_grad():
                    for layer in peft.lora_layers(model).values():
                        w = layer.lora_B.weight
                        w.add_(torch.randn(w.shape, generator=g).to(w.device) * nudge)
            theirs = trainer.compute_loss(model, inputs)
            logps = seq_logps(model, grad=True)
            checks = [ppo_clip_loss(logps, old, ours_adv, trainer.epsilon_low)]
            if ((logps - old).exp() - 1).abs().max() < trainer.epsilon_low:   # nothing clipped
                checks.append(loss(logps, old, s, ratio, k, beta))
            g_theirs = grads(theirs)
            for mine in checks:      # the value, and the gradient on the LoRA weights
                worst = max(worst, abs(float(mine.detach()) - float(theirs.detach())),
                            float((grads(mine) - g_theirs).abs().max()))
    return worst


# --------------------------------------------------------------------------- the README's summary
SUMMARY_START, SUMMARY_END = "<!-- alignment:start -->", "<!-- alignment:end -->"
_GAINS = {("10_alignment", "judge_gain_sft"): "SFT over the base model",
          ("10_alignment", "judge_gain_best_of_4"): "best-of-4 over SFT",
          ("11_preference_optimisation", "judge_gain_dpo"): "DPO over SFT",
          ("11_preference_optimisation", "judge_gain_rl"): "RL over SFT"}


def summary(rows: list[dict], profile: str = "quick") -> str:
    """Notebooks 10 and 11's results in words, generated from their ledger rows (the last
    run of each seed): the judge's paired gain of each method with its interval, seed by
    seed, said only as far as the interval resolves; the KL each paid, with its standard
    error; the proxy reward of the RL run's first and last steps."""
    from . import ledger

    rows = [r for r in ledger.last_runs(rows) if r.get("profile") == profile]
    by = {}
    for r in rows:
        by.setdefault((r["notebook"], r["metric"]), {})[r["seed"]] = r
    lines = []
    for key, what in _GAINS.items():
        seeds = by.get(key, {})
        if not seeds or not all("ci_low" in r for r in seeds.values()):
            continue
        parts = [verdict({"gain": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]},
                         f"seed {s}") for s, r in sorted(seeds.items())]
        lines.append(f"- The judge's mean P(positive), {what} ({next(iter(seeds.values())).get('n')} "
                     f"prompts, 95% paired interval): " + "; ".join(parts) + ".")
    for metric, what in (("kl_dpo", "DPO"), ("kl_rl", "RL")):
        seeds = by.get(("11_preference_optimisation", metric), {})
        if seeds:
            lines.append(f"- KL from the SFT model, {what} (exact per token, ± standard error): " +
                         "; ".join(f"seed {s} {r['value']:.2f} ± {r.get('se', float('nan')):.2f} nats"
                                   for s, r in sorted(seeds.items())) + ".")
    sft_rate = by.get(("10_alignment", "labeller_rate_sft"), {})
    for metric, what in (("labeller_rate_dpo", "DPO"), ("labeller_rate_rl", "RL")):
        seeds = by.get(("11_preference_optimisation", metric), {})
        both = sorted(set(seeds) & set(sft_rate))
        if both:
            lines.append(f"- The labeller's positive rate, SFT -> {what} (the same prompts): " +
                         "; ".join(f"seed {s} {sft_rate[s]['value']:.3f} -> {seeds[s]['value']:.3f}"
                                   for s in both) + ".")
    for metric, what in (("reward_gain_dpo", "DPO"), ("reward_gain_rl", "RL")):
        seeds = by.get(("11_preference_optimisation", metric), {})
        if seeds:
            lines.append(f"- The proxy reward's gain over SFT, {what} (the same prompts and sampling "
                         "seed): " + "; ".join(f"seed {s} {r['value']:+.3f}"
                                              for s, r in sorted(seeds.items())) + ".")
    first = by.get(("11_preference_optimisation", "rl_reward_first"), {})
    last = by.get(("11_preference_optimisation", "rl_reward_last"), {})
    if first and last:
        lines.append("- RL's proxy reward, first to last steps: " + "; ".join(
            f"seed {s} {first[s]['value']:+.3f} -> {last[s]['value']:+.3f}"
            for s in sorted(set(first) & set(last))) + ".")
    if not lines:
        return "(no rows of notebooks 10 and 11 with intervals in the ledger yet)"
    return "\n".join(lines)


def fill_readme(text: str, rows: list[dict], profile: str = "quick") -> str:
    """`text` (the README) with the alignment summary rewritten between its markers;
    unchanged when the markers are absent."""
    if SUMMARY_START not in text or SUMMARY_END not in text:
        return text
    head, rest = text.split(SUMMARY_START, 1)
    _, tail = rest.split(SUMMARY_END, 1)
    return f"{head}{SUMMARY_START}\n{summary(rows, profile)}\n{SUMMARY_END}{tail}"
