"""Adaptive pre-training: keep training a masked LM on unlabelled text from the target
domain (or the task's own sentences) before fine-tuning it. Gururangan et al. (2020),
"Don't Stop Pretraining", call these domain-adaptive (DAPT) and task-adaptive (TAPT).

    >>> from labkit import adapt, finetune, models
    >>> lm, tok = models.load("tiny-mlm", task="masked-lm")
    >>> adapt.perplexity(lm, tok, held_out_texts)["perplexity"]          # before
    >>> hist = adapt.continue_pretraining(lm, tok, domain_texts, steps=200, seed=0)
    >>> adapt.perplexity(lm, tok, held_out_texts)["perplexity"]          # after
    >>> clf, _ = models.load("tiny-mlm", task="sequence-classification", num_labels=2)
    >>> adapted = adapt.transplant_encoder(lm, clf)      # then fine-tune as in notebook 04
    >>> model, _ = finetune.build_classifier(adapted, seed=0)

Three pieces, built on `labkit.mlm` and `labkit.train`:

* `continue_pretraining`: the texts packed into blocks (`mlm.tokenize_blocks`), masked by
  BERT's 80/10/10 rule (`mlm.MLMCollator`) and trained through `labkit.train.fit` with
  the masked-LM loss (`mlm.mlm_loss`). Nothing new: pre-training, started from trained
  weights instead of random ones, usually with a smaller learning rate.
* `perplexity`: masked-LM perplexity on held-out texts: exp of the mean loss over every
  masked token (`token_nll` per batch, summed and counted; `corpus_perplexity` weighs
  each batch by its tokens). Every scored position is a [MASK] (`mlm.eval_masks`), from
  a fixed seed, so the same texts get the same masks before and after adaptation: the
  numbers compare like with like.
* `transplant_encoder`: a copy of a classifier whose embeddings and transformer layers
  are replaced by the adapted masked LM's. Its pooler and head stay as they were, so a
  plain and an adapted classifier made from the same loaded classifier differ in the
  adapted weights and nothing else.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from . import mlm
from .train import History, batches, fit


def _check_masked_lm(model, tokenizer, what: str) -> None:
    if not hasattr(model, "cls") or not hasattr(model, "config"):
        raise ValueError(f"{what} needs a masked LM with its MLM head (e.g. BertForMaskedLM): "
                         "load it with models.load(name, task='masked-lm')")
    if tokenizer.mask_token_id is None:
        raise ValueError(f"{what}: the tokenizer has no [MASK] token; use the masked LM's "
                         "own tokenizer")
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(f"{what}: the tokenizer has {len(tokenizer):,} tokens but the model "
                         f"only {model.config.vocab_size:,}; use the tokenizer that was "
                         "loaded with the model")


def _spread(items: list, n: int | None) -> list:
    """`n` items evenly spread over `items` (all of them when n is None or too big)."""
    if n is None or n >= len(items):
        return items
    if n < 1:
        raise ValueError(f"max_blocks={n}: ask for at least one block (or None for all)")
    return [items[i] for i in np.linspace(0, len(items) - 1, n).astype(int)]


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The summed negative log-likelihood (nats) of the `labels` under `logits`
    (n, vocab) and how many tokens it covers: positions labelled -100 (not masked,
    padding) do not count. Sum and count, not a mean, so that batches with more scored
    tokens weigh more when a whole text's perplexity is put together."""
    scored = labels != mlm.IGNORE
    nll = torch.nn.functional.cross_entropy(logits[scored].float(), labels[scored],
                                            reduction="sum")
    return nll, int(scored.sum())


def corpus_perplexity(nll_sums, counts) -> float:
    """Perplexity of a whole text from per-batch (summed NLL, token count): exp of the
    token-weighted mean NLL, i.e. exp(sum of all NLL / number of all scored tokens).
    Not the mean of the batches' perplexities (exp is convex: that overstates it), nor
    the plain mean of their mean losses (a batch with 3 masked tokens would weigh as
    much as one with 300)."""
    total = float(sum(float(x) for x in nll_sums))
    n = int(sum(int(c) for c in counts))
    if n == 0:
        raise ValueError("corpus_perplexity: no scored tokens (every count is 0)")
    return float(np.exp(total / n))


def perplexity(model, tokenizer, texts, *, block_size: int = 64, max_blocks: int | None = None,
               batch_size: int = 32, seed: int = 0, device=None, nll_fn=None,
               combine=None) -> dict:
    """Masked-LM perplexity of `model` on `texts` (held-out, unlabelled).

    The texts are packed into blocks of `block_size` tokens (`mlm.tokenize_blocks`);
    `max_blocks` keeps that many, evenly spread (for speed). 15% of the tokens are chosen
    with a fixed `seed` and every one of them becomes [MASK] (`mlm.eval_masks`: no graded
    answer is visible, unlike the 80/10/10 training rule), so repeated calls on the same
    texts use the same masks. Each
    batch gives its summed NLL and token count at the masks (`nll_fn`, default
    `token_nll`; the output layer runs only there); `combine` (default
    `corpus_perplexity`) turns them into one number. Returns {"perplexity", "loss",
    "blocks", "tokens"}; "loss" is the token-weighted mean NLL (nats).
    """
    _check_masked_lm(model, tokenizer, "perplexity()")
    nll_fn, combine = nll_fn or token_nll, combine or corpus_perplexity
    blocks = _spread(mlm.tokenize_blocks(tokenizer, list(texts), block_size), max_blocks)
    if not blocks:
        raise ValueError("perplexity(): the texts gave no block of tokens; pass more text")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    masked = mlm.eval_masks(tokenizer, blocks, seed=seed)     # the same masks on every call
    collator = mlm.MLMCollator(tokenizer)                      # pads them, masks nothing more
    sums, counts = [], []
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in batches(masked, batch_size, collate_fn=collator):
                batch = {k: v.to(dev) for k, v in batch.items()}
                labels = batch.pop("labels")
                where = labels != mlm.IGNORE
                nll, n = nll_fn(mlm.logits_at(model, batch, where), labels[where])
                sums.append(float(nll))
                counts.append(int(n))
    finally:
        model.train(was)
    ppl = float(combine(sums, counts))
    return {"perplexity": ppl, "loss": sum(sums) / max(1, sum(counts)), "blocks": len(blocks),
            "tokens": sum(counts)}


def continue_pretraining(model, tokenizer, texts=None, *, steps: int, batch_size: int = 32,
                         block_size: int = 64, lr: float = 1e-4, warmup: float = 0.06,
                         probability: float = 0.15, seed: int = 0, blocks=None,
                         desc: str = "adaptive pre-training", **fit_kwargs) -> History:
    """Keep pre-training the masked LM `model` on `texts` for `steps` optimizer steps of
    `batch_size` blocks of `block_size` tokens, in place, through `labkit.train.fit`.
    `blocks` (instead of `texts`): the corpus already packed by `mlm.tokenize_blocks`,
    so a corpus used twice is tokenised once.

    `lr` 1e-4 suits a small BERT that is already trained (from scratch one uses ~1e-3;
    bert-base was adapted with ~1e-4 too). Masks and dropout are seeded by `seed`.
    Anything else goes to `fit` (eval_data, schedule, device, ...). Returns the `History`.
    """
    _check_masked_lm(model, tokenizer, "continue_pretraining()")
    if steps < 1:
        raise ValueError(f"steps={steps}: continue_pretraining needs at least one step "
                         "(e.g. steps=200)")
    if (texts is None) == (blocks is None):
        raise ValueError("continue_pretraining() takes the corpus once: texts=[...] or "
                         "blocks=mlm.tokenize_blocks(tokenizer, texts, block_size)")
    if blocks is None:
        blocks = mlm.tokenize_blocks(tokenizer, list(texts), block_size)
    return fit(model, blocks, collate_fn=mlm.MLMCollator(tokenizer, probability),
               loss_fn=mlm.mlm_loss, max_steps=steps, batch_size=batch_size, lr=lr,
               warmup=warmup, seed=seed, desc=desc, **fit_kwargs)


def transplant_encoder(masked_lm, classifier):
    """A copy of `classifier` with the embeddings and transformer layers of `masked_lm`.

    Both must be the same architecture (e.g. BertForMaskedLM and
    BertForSequenceClassification loaded from the same checkpoint). Weights the masked
    LM lacks (the classifier's pooler) and the classifier's head stay as they are; any
    other difference is an error. `masked_lm` and `classifier` are left unchanged.
    """
    prefix = getattr(classifier, "base_model_prefix", None)
    source = getattr(masked_lm, prefix, None) if prefix else None
    target = getattr(classifier, prefix, None) if prefix else None
    if source is None or target is None:
        raise ValueError(f"transplant_encoder: {type(masked_lm).__name__} and "
                         f"{type(classifier).__name__} do not share an encoder "
                         f"(`.{prefix}`); load both from the same checkpoint")
    if source.config.to_dict().get("model_type") != target.config.to_dict().get("model_type"):
        raise ValueError("transplant_encoder: the models are different architectures "
                         f"({source.config.model_type} vs {target.config.model_type})")
    state = source.state_dict()
    wanted = target.state_dict()
    bad = [k for k, v in state.items() if k in wanted and v.shape != wanted[k].shape]
    if bad:
        raise ValueError(f"transplant_encoder: shapes differ for {bad[:3]}: the masked LM and "
                         "the classifier come from different checkpoints; load both from "
                         "the same one")
    out = copy.deepcopy(classifier)
    result = getattr(out, prefix).load_state_dict(state, strict=False)
    kept = [k for k in result.missing_keys if not k.startswith("pooler.")]
    if result.unexpected_keys or kept:
        raise ValueError("transplant_encoder: the encoders do not match (unexpected "
                         f"{result.unexpected_keys[:3]}, missing {kept[:3]}); load both "
                         "from the same checkpoint")
    return out
