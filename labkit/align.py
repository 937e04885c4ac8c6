"""Learning from preferences: supervised fine-tuning, a reward model and DPO, written out.

    >>> from labkit import align
    >>> rows = align.sft_rows(tokenizer, prompts, completions)        # demonstrations
    >>> train.fit(lm, rows, loss_fn=align.sft_loss, collate_fn=align.collate(tok.pad_token_id))
    >>> texts = align.sample(lm, tokenizer, prompts, n=4, seed=0)       # the model's own continuations
    >>> pairs = align.preference_pairs(prompts, texts, labeller_scores)
    >>> train.fit(lm, align.pair_rows(tokenizer, pairs), loss_fn=align.DPOLoss(reference, beta=0.1),
    ...           collate_fn=align.pair_collate(tok.pad_token_id))

After pre-training, a chat model is taught to behave in three steps (Ouyang et al. 2022,
InstructGPT): **supervised fine-tuning** (SFT) on demonstrations of the behaviour, a
**reward model** trained on people's rankings of the model's own outputs, then
reinforcement learning against that reward with a KL penalty that keeps the policy close to
the SFT model (Christiano et al. 2017; Stiennon et al. 2020). **DPO** (Rafailov et al.
2023) skips the reward model and the RL: the same objective has a closed-form optimum, and
its loss on a preference pair is a logistic loss on how much more the policy (relative to
the reference) prefers the chosen continuation than the rejected one.

The pieces, in the order a notebook uses them:

* `sft_rows` / `collate` / `sft_loss`: a prompt and its demonstration as one sequence, the
  loss on the demonstration's tokens only (the prompt is given, not learned).
* `sample`: continuations drawn from a causal LM (temperature 1 by default, so that the
  samples are from the model's own distribution, which the KL estimate needs).
* `preference_pairs`: a labeller (people in InstructGPT, a classifier here: AI feedback,
  Bai et al. 2022) ranks the continuations of each prompt; pairs are (chosen, rejected).
* `sequence_logps`: log pi(completion | prompt), summed over the completion's tokens: the
  one number DPO, the reward of DPO and the KL estimate are made of.
* `bradley_terry_loss`, `features` and `RewardHead`: a reward model trained on pairs: the
  probability that the chosen beats the rejected is sigmoid(r(chosen) - r(rejected)).
* `implicit_reward`, `dpo_loss` (the lesson) and `DPOLoss`: DPO's loss for `train.fit`,
  the reference model's log-probabilities computed once, up front (they never change).
* `best_of_n`: no training at all: sample n, keep the one the reward model likes best; its
  KL from the sampling model is at most log n - (n - 1) / n (`best_of_n_kl`, a bound).
* `kl_estimate`: KL(policy || reference) from the policy's own samples, the mean of
  log pi(y|x) - log pi_ref(y|x) (re-tokenised text; `rl.sequence_kl` is exact per token
  on the sampled ids and is what notebooks 10 and 11 report).
* `trl_loss_parity`: the same pairs through the `trl` library's DPOTrainer, to check
  `dpo_loss` against it.
* `save_stage` / `load_stage`: what notebook 10 builds (the labeller, the SFT model's LoRA
  weights, the reward model, the samples and their scores) saved under `runs/` as
  safetensors, keyed by profile and seed, so that notebook 11 starts from it instead of
  paying for it again; `tiny_causal_lm` is the random stand-in for SmolLM2 in `smoke`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from .batching import mean_over


# --------------------------------------------------------------------------- SFT data
def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def sft_rows(tokenizer, prompts: Sequence[str], completions: Sequence[str], *,
             max_completion_tokens: int = 32) -> list[dict]:
    """One row per (prompt, completion): the prompt's and the completion's tokens side
    by side, `completion_mask` 1 on the completion's tokens (the loss is taken there
    only), the completion cut at `max_completion_tokens`."""
    if len(prompts) != len(completions) or not prompts:
        raise ValueError(f"sft_rows needs one completion per prompt (got {len(prompts)} "
                         f"prompts and {len(completions)} completions)")
    rows = []
    for p, c in zip(prompts, completions):
        prompt, completion = _ids(tokenizer, p), _ids(tokenizer, c)[:max_completion_tokens]
        if not prompt or not completion:
            raise ValueError(f"empty prompt or completion: {p!r} -> {c!r}")
        rows.append({"input_ids": prompt + completion,
                     "completion_mask": [0] * len(prompt) + [1] * len(completion)})
    return rows


def _pad(seqs: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([list(s) + [value] * (width - len(s)) for s in seqs])


def collate(pad_id: int) -> Callable[[list[dict]], dict]:
    """Pad rows of `sft_rows` on the right: input_ids, attention_mask, completion_mask."""
    def fn(rows: list[dict]) -> dict:
        ids = [r["input_ids"] for r in rows]
        return {"input_ids": _pad(ids, pad_id),
                "attention_mask": _pad([[1] * len(s) for s in ids], 0),
                "completion_mask": _pad([r["completion_mask"] for r in rows], 0)}
    return fn


def first_scored(completion_mask: torch.Tensor) -> int:
    """The first position whose next-token distribution some row scores (position t
    predicts token t + 1, so it is scored where token t + 1 is a completion token); 0
    when no row scores any. The positions before it need no logits."""
    target = completion_mask[:, 1:]
    return int(target.any(0).float().argmax()) if bool(target.any()) else 0


def token_logps(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                completion_mask: torch.Tensor | None = None) -> torch.Tensor:
    """log p(token t | tokens before t) for t = 1..T-1: shape (batch, T - 1). Right
    padding only (positions are then 0, 1, 2, ... as the model expects).

    With `completion_mask` (1 on the tokens that will be scored), the distributions over
    the vocabulary are made only from the first position any row scores: the prompt
    before it is read, but its next-token logits, which nothing uses, are not computed
    (on SmolLM2 the output layer is a fifth of the model's work per position). Those
    positions hold 0. The numbers at the scored positions are the same either way, up to
    floating-point rounding."""
    first = 0 if completion_mask is None else first_scored(completion_mask)
    keep = {} if first == 0 else {"logits_to_keep": torch.arange(
        first, input_ids.shape[1] - 1, device=input_ids.device)}
    logits = model(input_ids=input_ids, attention_mask=attention_mask, **keep).logits
    logits = logits[:, :input_ids.shape[1] - 1 - first]      # without keep: drop the last
    logps = torch.gather(logits.float().log_softmax(-1), 2,
                         input_ids[:, first + 1:, None]).squeeze(-1)
    return torch.nn.functional.pad(logps, (first, 0)) if first else logps


def sequence_logps(model, batch: dict) -> torch.Tensor:
    """log pi(completion | prompt) of each row: the completion tokens' log-probabilities,
    summed. One number per sequence, shape (batch,); for a batch of `pair_collate`
    (tensors of shape (pairs, 2, T)) shape (pairs, 2): chosen, rejected."""
    ids = batch["input_ids"]
    flat = {k: batch[k].reshape(-1, ids.shape[-1])
            for k in ("input_ids", "attention_mask", "completion_mask")}
    logps = token_logps(model, flat["input_ids"], flat["attention_mask"], flat["completion_mask"])
    return (logps * flat["completion_mask"][:, 1:]).sum(-1).view(ids.shape[:-1])


def sft_loss(model, batch: dict) -> torch.Tensor:
    """Supervised fine-tuning: the mean next-token cross-entropy over the completion
    tokens of the batch (the prompt is context, never a target). The mean is marked
    with its denominator, the number of completion tokens, so `train.fit` weighs
    micro-batches by their tokens, not their rows."""
    logps = token_logps(model, batch["input_ids"], batch["attention_mask"],
                        batch["completion_mask"])
    mask = batch["completion_mask"][:, 1:].to(logps.dtype)
    return mean_over(-(logps * mask).sum(), mask.sum().long())


# --------------------------------------------------------------------------- sampling
@torch.no_grad()
def sample(model, tokenizer, prompts: Sequence[str], *, n: int = 1, max_new_tokens: int = 24,
           temperature: float = 1.0, batch_size: int = 32, seed: int = 0) -> list[list[str]]:
    """`n` continuations of each prompt, sampled at `temperature` (1: the model's own
    distribution, no top-k or top-p cut), each exactly `max_new_tokens` long (the end of
    text is not allowed earlier, so no continuation is empty and all are compared at
    the same length). Returns one list of n strings per prompt: `rl.generate`'s texts,
    for readers that need no token ids. Repeatable with `seed`; the global random stream
    is left as it was."""
    if not prompts:
        raise ValueError("sample() got no prompts")
    from .rl import generate     # the one sampler; rl builds on this module, hence here
    out = generate(model, tokenizer, prompts, n=n, max_new_tokens=max_new_tokens,
                   temperature=temperature, seed=seed, batch_size=batch_size)["texts"]
    return [out[i * n:(i + 1) * n] for i in range(len(prompts))]


# --------------------------------------------------------------------------- preferences
def preference_pairs(prompts: Sequence[str], completions: Sequence[Sequence[str]],
                     scores: Sequence[Sequence[float]], *, mode: str = "best_worst",
                     min_margin: float = 0.0) -> list[dict]:
    """Pairs (prompt, chosen, rejected) from a labeller's `scores` of each prompt's
    completions (higher is better). `mode="best_worst"`: one pair per prompt, its best
    and worst completion; `"all"`: every pair of completions of a prompt. Pairs whose
    scores differ by `min_margin` or less are dropped (a tie teaches nothing)."""
    if mode not in {"best_worst", "all"}:
        raise ValueError(f"unknown mode {mode!r}; use 'best_worst' or 'all'")
    if not (len(prompts) == len(completions) == len(scores)):
        raise ValueError("preference_pairs needs completions and scores for every prompt")
    pairs = []
    for p, cs, ss in zip(prompts, completions, scores):
        if len(cs) != len(ss) or len(cs) < 2:
            raise ValueError(f"prompt {p!r}: needs at least two completions, one score each")
        order = sorted(range(len(cs)), key=lambda i: -ss[i])
        if mode == "best_worst":
            candidates = [(order[0], order[-1])]
        else:
            candidates = [(a, b) for k, a in enumerate(order) for b in order[k + 1:]]
        for a, b in candidates:
            if ss[a] - ss[b] > min_margin:
                pairs.append({"prompt": p, "chosen": cs[a], "rejected": cs[b],
                              "margin": float(ss[a] - ss[b])})
    return pairs


def pair_rows(tokenizer, pairs: Sequence[dict], *, max_completion_tokens: int = 32) -> list[dict]:
    """Tokenise preference pairs: per pair, the chosen and the rejected sequence as in
    `sft_rows`."""
    if not pairs:
        raise ValueError("pair_rows got no pairs: check the labeller's margins")
    prompts = [p["prompt"] for p in pairs]
    chosen = sft_rows(tokenizer, prompts, [p["chosen"] for p in pairs],
                      max_completion_tokens=max_completion_tokens)
    rejected = sft_rows(tokenizer, prompts, [p["rejected"] for p in pairs],
                        max_completion_tokens=max_completion_tokens)
    return [{"chosen": c, "rejected": r} for c, r in zip(chosen, rejected)]


def pair_collate(pad_id: int) -> Callable[[list[dict]], dict]:
    """A batch of pairs, one pair per example: `input_ids`, `attention_mask` and
    `completion_mask` of shape (pairs, 2, T), the chosen sequence at [:, 0] and the
    rejected at [:, 1], so that dim 0 is the pair however `train.fit` cuts the batch
    (micro-batches, processes). Plus any precomputed reference log-probabilities, and
    `labels` (all 1: the chosen is the right answer) so that `train.evaluate` reports
    the share of pairs a model ranks right."""
    pad = collate(pad_id)

    def fn(rows: list[dict]) -> dict:
        flat = pad([seq for r in rows for seq in (r["chosen"], r["rejected"])])
        batch = {k: v.view(len(rows), 2, -1) for k, v in flat.items()}
        batch["labels"] = torch.ones(len(rows), dtype=torch.long)   # "chosen" (index 1) wins
        if "ref_chosen_logps" in rows[0]:
            batch["ref_chosen_logps"] = torch.tensor([r["ref_chosen_logps"] for r in rows])
            batch["ref_rejected_logps"] = torch.tensor([r["ref_rejected_logps"] for r in rows])
        return batch
    return fn


# --------------------------------------------------------------------------- reward model
def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """The reward model's pairwise loss: -log sigmoid(r(chosen) - r(rejected)), the
    negative log-likelihood of the ranking under the Bradley-Terry model."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


@torch.no_grad()
def features(model, tokenizer, prompts: Sequence[str], completions: Sequence[str], *,
             layer: int | None = None, batch_size: int = 32,
             max_completion_tokens: int = 32) -> torch.Tensor:
    """One vector per text (what `RewardHead` reads): the hidden states after block
    `layer`, averaged over the tokens of prompt + completion. The default is the middle
    block: a causal LM's last blocks specialise in predicting the next token, and what a
    text *says* (its sentiment, say) is read off its middle layers more easily by a
    linear probe. The LM stays frozen."""
    rows = sft_rows(tokenizer, prompts, completions, max_completion_tokens=max_completion_tokens)
    pad = collate(tokenizer.pad_token_id)
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    blocks = getattr(getattr(model, "model", None), "layers", None)   # a Llama-style decoder
    n_states = len(blocks) + 1 if blocks is not None else None         # embeddings + each block
    index = (n_states // 2 if layer is None else layer) if n_states else layer
    out = []
    for start in range(0, len(rows), batch_size):
        b = pad(rows[start:start + batch_size])
        mask = b["attention_mask"].to(dev)
        kw = dict(input_ids=b["input_ids"].to(dev), attention_mask=mask)
        if blocks is not None and 0 < index < len(blocks):
            hidden = _stop_after(model, blocks[index - 1], kw)   # the blocks above are not run
        else:
            states = model(**kw, output_hidden_states=True).hidden_states
            hidden = states[len(states) // 2 if index is None else index]
        hidden = hidden.float()
        out.append(((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).cpu())
    model.train(was_training)
    return torch.cat(out)


class _Stop(Exception):
    pass


def _stop_after(model, block, kw) -> torch.Tensor:
    """The output of `block` in a forward pass of `model` that stops there (what
    `hidden_states` would hold after that block, without paying for the rest)."""
    got = {}

    def hook(module, args, output):
        got["h"] = output[0] if isinstance(output, tuple) else output
        raise _Stop

    handle = block.register_forward_hook(hook)
    try:
        model(**kw)
    except _Stop:
        pass
    finally:
        handle.remove()
    return got["h"]


class RewardHead(nn.Module):
    """A scalar reward read from frozen LM features: r(x, y) = w . h(x, y) + b. Called on
    a batch {"chosen": (B, H), "rejected": (B, H)} it returns the Bradley-Terry loss
    (`loss`, `bradley_terry_loss` unless you pass your own)."""

    def __init__(self, hidden_size: int, seed: int = 0, loss: Callable = bradley_terry_loss):
        super().__init__()
        self.loss = loss
        self.score = nn.Linear(hidden_size, 1)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.score.weight.copy_(torch.randn(self.score.weight.shape, generator=g) * 0.01)
            self.score.bias.zero_()

    def reward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.score(feats).squeeze(-1)

    def forward(self, chosen: torch.Tensor, rejected: torch.Tensor) -> dict:
        return {"loss": self.loss(self.reward(chosen), self.reward(rejected))}


def pair_accuracy(head: RewardHead, chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    """Share of pairs where the reward model ranks the chosen above the rejected."""
    with torch.no_grad():
        return float((head.reward(chosen) > head.reward(rejected)).float().mean())


# --------------------------------------------------------------------------- DPO
def implicit_reward(policy_logps: torch.Tensor, ref_logps: torch.Tensor,
                    beta: float = 0.1) -> torch.Tensor:
    """DPO's implicit reward of a completion: beta * log(pi(y|x) / pi_ref(y|x)), how much
    more likely the policy makes it than the reference does."""
    return beta * (policy_logps - ref_logps)


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float = 0.1) -> torch.Tensor:
    """DPO's loss (Rafailov et al. 2023, eq. 7), one number per pair.

    The Bradley-Terry loss on the implicit rewards, -log sigmoid(r(chosen) - r(rejected)):
    raise the chosen, lower the rejected, relative to the reference. beta sets how far
    the policy may move: with a small beta, the same reward margin needs a larger change
    of log-probabilities, so the policy moves further from the reference."""
    margin = (implicit_reward(policy_chosen_logps, ref_chosen_logps, beta)
              - implicit_reward(policy_rejected_logps, ref_rejected_logps, beta))
    return -F.logsigmoid(margin)


@torch.no_grad()
def add_reference_logps(reference, rows: list[dict], pad_id: int, batch_size: int = 16) -> list[dict]:
    """Add `ref_chosen_logps` / `ref_rejected_logps` to each pair row: the reference
    model is frozen, so its log-probabilities are computed once, before training."""
    dev = next(reference.parameters()).device
    was_training = reference.training
    reference.eval()
    pad = collate(pad_id)
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        for kind in ("chosen", "rejected"):
            b = {k: v.to(dev) for k, v in pad([r[kind] for r in chunk]).items()}
            for r, lp in zip(chunk, sequence_logps(reference, b).tolist()):
                r.setdefault("_ref", {})[kind] = lp
        for r in chunk:
            ref = r.pop("_ref")
            out.append({**r, "ref_chosen_logps": ref["chosen"], "ref_rejected_logps": ref["rejected"]})
    reference.train(was_training)
    return out


class DPOLoss:
    """`loss_fn` for `train.fit` on batches of `pair_collate` with reference
    log-probabilities (`add_reference_logps`): the mean of `loss` (default `dpo_loss`)
    over the pairs, marked with its denominator (the number of pairs). Logits
    (rejected, chosen) are the implicit rewards, so `train.evaluate`'s accuracy is the
    share of pairs ranked right."""

    def __init__(self, beta: float = 0.1, loss: Callable = dpo_loss):
        if beta <= 0:
            raise ValueError(f"beta must be positive, got {beta}")
        self.beta, self.loss = beta, loss

    def __call__(self, model, batch: dict):
        chosen, rejected = sequence_logps(model, batch).unbind(1)
        ref_chosen, ref_rejected = batch["ref_chosen_logps"], batch["ref_rejected_logps"]
        per_pair = self.loss(chosen, rejected, ref_chosen, ref_rejected, self.beta)
        loss = mean_over(per_pair.sum(), len(per_pair))
        with torch.no_grad():
            logits = torch.stack([implicit_reward(rejected, ref_rejected, self.beta),
                                  implicit_reward(chosen, ref_chosen, self.beta)], -1)
        return loss, SimpleNamespace(loss=loss, logits=logits)


# --------------------------------------------------------------------------- best-of-n, KL
def best_of_n(completions: Sequence[Sequence[str]], rewards: Sequence[Sequence[float]]) -> list[str]:
    """Per prompt, the completion with the highest reward."""
    return [cs[max(range(len(cs)), key=lambda i: rs[i])] for cs, rs in zip(completions, rewards)]


def best_of_n_kl(n: int) -> float:
    """An UPPER bound on KL(best-of-n || the sampling model): log n - (n - 1) / n. The
    formula long quoted as exact (Stiennon et al. 2020) is a bound, tight only when the
    best-of-n is almost surely a sample nobody else could have drawn; with repeated or
    near-identical samples the true KL is smaller (Beirami et al. 2024, arXiv 2401.01879)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return math.log(n) - (n - 1) / n


@torch.no_grad()
def kl_estimate(policy, reference, tokenizer, prompts: Sequence[str], completions: Sequence[str],
                *, batch_size: int = 32, max_completion_tokens: int = 32) -> float:
    """KL(policy || reference) per completion, estimated from completions sampled from
    the policy at temperature 1: the mean of log pi(y|x) - log pi_ref(y|x). The
    completions must be cut no shorter than when they were sampled."""
    rows = sft_rows(tokenizer, prompts, completions, max_completion_tokens=max_completion_tokens)
    pad = collate(tokenizer.pad_token_id)
    dev = next(policy.parameters()).device
    total = 0.0
    states = policy.training, reference.training
    policy.eval()
    reference.eval()
    for start in range(0, len(rows), batch_size):
        b = {k: v.to(dev) for k, v in pad(rows[start:start + batch_size]).items()}
        total += float((sequence_logps(policy, b) - sequence_logps(reference, b)).sum())
    policy.train(states[0])
    reference.train(states[1])
    return total / len(rows)


# --------------------------------------------------------------------------- trl parity
def trl_loss_parity(policy, reference, tokenizer, pairs: Sequence[dict], *, beta: float = 0.1,
                    batch_size: int = 4, loss: Callable = dpo_loss) -> float:
    """The largest |our DPO loss - trl's| over batches of `pairs`, both computed on the
    very token ids trl's DPOTrainer makes (it appends an end-of-text token to each
    completion). `loss` is ours (default `dpo_loss`; a notebook passes the learner's).
    Works on copies: trl patches the models it is given."""
    import tempfile
    import warnings

    import datasets
    import trl

    with tempfile.TemporaryDirectory(prefix="trl-parity-") as tmp, warnings.catch_warnings():
        # trl's config still sets transformers' renamed gradient-checkpointing options
        warnings.filterwarnings("ignore", r".*deprecated and will be removed in v6", FutureWarning)
        policy, reference = copy.deepcopy(policy).eval(), copy.deepcopy(reference).eval()
        for m in (policy, reference):   # a GGUF file is dequantised to fp32 on load, but the
            if getattr(m, "is_quantized", False):   # model keeps its "quantized" flag, which
                m.is_quantized, m.hf_quantizer = False, None   # the Trainer refuses to train
        args = trl.DPOConfig(output_dir=tmp, beta=beta, loss_type=["sigmoid"],
                             per_device_train_batch_size=batch_size, report_to=[], use_cpu=
                             next(policy.parameters()).device.type == "cpu", save_strategy="no",
                             logging_strategy="no")
        data = datasets.Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")}
                                           for p in pairs])
        trainer = trl.DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=data,
                                 processing_class=tokenizer)
        rows = list(trainer.train_dataset)
        worst = 0.0
        dev = next(trainer.model.parameters()).device
        for start in range(0, len(rows), batch_size):
            inputs = trainer.data_collator(rows[start:start + batch_size])
            inputs = {k: v.to(dev) if torch.is_tensor(v) else v for k, v in inputs.items()}
            with torch.no_grad():
                theirs = float(trainer.compute_loss(trainer.model, inputs))
                batch = {k: inputs[k] for k in ("input_ids", "attention_mask", "completion_mask")}
                # trl's collator stacks the chosen rows first, then the rejected: (2 * pairs, T)
                chosen, rejected = sequence_logps(trainer.model, batch).chunk(2)
                ref_chosen, ref_rejected = sequence_logps(trainer.ref_model, batch).chunk(2)
                ours = float(loss(chosen, rejected, ref_chosen, ref_rejected, beta).mean())
            worst = max(worst, abs(ours - theirs))
    return worst


# --------------------------------------------------------------------------- the stage 10 leaves for 11
def tiny_causal_lm(tokenizer):
    """A tiny random Llama on `tokenizer`'s vocabulary (its [SEP] as end of text): the
    stand-in for SmolLM2 in `smoke`, where a real load is too slow. The same weights on
    every call (its own seed), so notebook 11 rebuilds the model notebook 10 trained on."""
    import transformers

    tok = copy.deepcopy(tokenizer)
    tok.eos_token = tok.sep_token
    config = transformers.LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.LlamaForCausalLM(config)
    return model, tok


def stage_dir(profile: str, seed: int) -> Path:
    """Where notebook 10 saves its stage for `profile` and `seed` (under `runs/`)."""
    from .ledger import runs_dir

    return runs_dir() / "10_alignment" / "stage" / f"{profile}-seed{seed}"


def save_stage(folder, *, sft, reward_model, labeller, labeller_tokenizer, arrays: dict,
               info: dict) -> Path:
    """Save notebook 10's stage in `folder`: the SFT model's LoRA weights, the reward
    head and the labeller (safetensors; the labeller with its tokenizer, as
    `save_pretrained` writes them), `arrays` (name -> numbers, e.g. per-prompt scores)
    and `info` (JSON: the settings and the texts). Written to a temporary folder beside it
    and renamed into place, so an interrupted save leaves the old stage or none, never
    half of one."""
    import numpy as np
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        lora = {k: v.detach().cpu().contiguous() for k, v in sft.state_dict().items()
                if "lora_" in k}
        if not lora:
            raise ValueError("save_stage: the SFT model has no LoRA weights (peft.apply_lora)")
        save_file(lora, str(tmp / "lora.safetensors"))
        save_file({k: v.detach().cpu().contiguous() for k, v in reward_model.state_dict().items()},
                  str(tmp / "reward_head.safetensors"))
        labeller.save_pretrained(tmp / "labeller", safe_serialization=True)
        labeller_tokenizer.save_pretrained(tmp / "labeller")
        save_file({k: torch.as_tensor(np.asarray(v)).contiguous() for k, v in arrays.items()},
                  str(tmp / "arrays.safetensors"))
        (tmp / "stage.json").write_text(json.dumps(info), encoding="utf-8")
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return folder


def load_stage(folder, base, *, profile: str, seed: int, device="cpu") -> SimpleNamespace:
    """Notebook 10's stage from `folder` (`save_stage`): `sft` (a copy of `base` with the
    saved LoRA weights), `reward_model`, `labeller` and `labeller_tokenizer`, `arrays`
    (numpy) and `info`. A missing or foreign stage is refused with the command that
    makes it."""
    import numpy as np
    import transformers
    from safetensors.torch import load_file

    from . import peft

    folder = Path(folder)
    fix = f"run notebook 10 first: `labkit run 10 --profile {profile} --seed {seed}`"
    if not (folder / "stage.json").exists():
        raise FileNotFoundError(f"no stage of notebook 10 for profile {profile}, seed {seed} "
                                f"in {folder}: {fix} (or `labkit run 10 11`)")
    info = json.loads((folder / "stage.json").read_text(encoding="utf-8"))
    if (info.get("profile"), info.get("seed")) != (profile, seed):
        raise ValueError(f"{folder} holds notebook 10's stage for profile {info.get('profile')}, "
                         f"seed {info.get('seed')}, not {profile}, {seed}: {fix}")
    sft = copy.deepcopy(base)
    lora = info["lora"]
    peft.apply_lora(sft, r=lora["r"], alpha=lora["alpha"],
                    target_modules=tuple(lora["target_modules"]), modules_to_save=(), seed=seed)
    weights = load_file(str(folder / "lora.safetensors"))
    missing, unexpected = sft.load_state_dict(weights, strict=False)
    missing = [k for k in missing if "lora_" in k]
    if missing or unexpected:
        raise ValueError(f"{folder}: the saved LoRA weights do not fit this model (missing "
                         f"{missing[:3]}, unexpected {unexpected[:3]}): {fix}")
    head = load_file(str(folder / "reward_head.safetensors"))
    reward_model = RewardHead(head["score.weight"].shape[1])
    reward_model.load_state_dict(head)
    labeller = transformers.AutoModelForSequenceClassification.from_pretrained(
        folder / "labeller", use_safetensors=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder / "labeller")
    arrays = {k: v.numpy() for k, v in load_file(str(folder / "arrays.safetensors")).items()}
    for m in (sft, labeller):
        m.to(device).eval()
        for p in m.parameters():
            p.requires_grad_(False)
    return SimpleNamespace(sft=sft, reward_model=reward_model.eval(), labeller=labeller,
                           labeller_tokenizer=tokenizer, arrays=arrays, info=info)
