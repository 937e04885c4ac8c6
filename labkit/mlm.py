"""Masked-language-model pre-training, BERT style, in small reusable pieces.

    >>> from labkit import mlm
    >>> tok = mlm.train_wordpiece(texts, vocab_size=8000)          # a BertTokenizerFast
    >>> blocks = mlm.tokenize_blocks(tok, texts, block_size=64)    # [{"input_ids": [...]}, ...]
    >>> model = BertForMaskedLM(mlm.small_bert_config(tok))
    >>> train.fit(model, blocks, collate_fn=mlm.MLMCollator(tok), loss_fn=mlm.mlm_loss, ...)
    >>> mlm.fill_mask(model, tok, ["Paris is the capital of [MASK]."])

The pieces, in the order a pre-training run uses them:

* `train_wordpiece`: a WordPiece vocabulary learned from the corpus (`tokenizers`),
  wrapped as a transformers `BertTokenizerFast`, so `save_pretrained` / `AutoTokenizer`
  work on it like on any hub tokenizer.
* `tokenize_blocks`: texts -> fixed-length blocks `[CLS] ... [SEP]`. Packing texts end to
  end (separated by [SEP]) wastes no compute on padding.
* `mask_tokens` and `MLMCollator`: BERT's 80/10/10 rule. 15% of the real tokens are
  chosen to be predicted; of those, 80% become [MASK], 10% a random token, 10% stay as
  they are. Special tokens and padding are never chosen. Random choices use torch's
  global generator, so `fit` (seeded) controls them.
* `eval_masks`: held-out text masked once, for scoring. The 80/10/10 rule is for
  training; scored with it, a tenth of the graded positions show their answer in the
  input, which flatters perplexity and top-1 accuracy. `eval_masks` replaces *every*
  chosen position by [MASK], from a generator of its own seeded with `seed`, so a score
  is the same in every call, whatever the batch size or the global random state.
  `MLMCollator` pads such pre-masked examples as they are.
* `small_bert_config`: a `BertConfig` sized for a CPU; `warmup_cosine`: the learning-rate
  schedule of pre-training, one step at a time.
* `mlm_loss`: the masked-LM loss for `fit`. While training it runs the output layer
  (hidden -> vocabulary, the most expensive layer of a small BERT) only at the ~15% of
  positions that have a label (`logits_at`); in eval mode it is the plain
  `model(**batch)`, so `evaluate` also reports masked-token accuracy.
* `fill_mask`: the top-k words a model puts in a [MASK], for probe sentences.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence

import torch

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
IGNORE = -100   # the label of a position the loss skips (PyTorch's and HF's convention)


# --------------------------------------------------------------------------- tokenizer
def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, *, min_frequency: int = 2,
                    lowercase: bool = True, model_max_length: int = 128):
    """Learn a WordPiece vocabulary of at most `vocab_size` tokens from `texts`.

    BERT's recipe: Unicode clean-up (and lower-casing), split on whitespace and
    punctuation, then words as pieces (`play`, `##ing`). Returns a `BertTokenizerFast`
    with the special tokens [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers
    from transformers import BertTokenizerFast

    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("train_wordpiece() got no text: pass a non-empty list of strings "
                         "(e.g. dataset['train']['text'])")
    if vocab_size < 100:
        raise ValueError(f"vocab_size={vocab_size} is too small to hold the special tokens "
                         "and the alphabet; use a few thousand (e.g. 8000)")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIAL_TOKENS),
                                        show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    # The trainer numbers some pieces in hash-map order, so ids differ from run to run
    # (tokenizers issue #1794). Renumber: special tokens first, then the rest sorted.
    vocab = tok.get_vocab()
    rest = sorted(t for t in vocab if t not in SPECIAL_TOKENS)
    tok.model = models.WordPiece({t: i for i, t in enumerate([*SPECIAL_TOKENS, *rest])},
                                 unk_token="[UNK]", continuing_subword_prefix="##")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.decoder = decoders.WordPiece(prefix="##")
    return BertTokenizerFast(tokenizer_object=tok, do_lower_case=lowercase,
                             unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]",
                             model_max_length=model_max_length)


def tokenize_blocks(tokenizer, texts: Iterable[str], block_size: int = 64, *,
                    pack: bool = True) -> list[dict]:
    """Texts -> examples `{"input_ids": [CLS] ... [SEP]}` of at most `block_size` tokens.

    `pack=True`: the texts are joined end to end with [SEP] between them and cut into
    full blocks (the last one may be shorter), so no compute goes to padding. `pack=False`:
    one example per text, truncated (for sentences a downstream task sees one at a time).
    """
    if block_size < 3:
        raise ValueError(f"block_size={block_size}: a block needs room for [CLS], a token "
                         "and [SEP]; use e.g. 64")
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("tokenize_blocks() got no text: pass a non-empty list of strings")
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls is None or sep is None:
        raise ValueError("the tokenizer has no [CLS]/[SEP] token: use a BERT-style tokenizer "
                         "(e.g. one from mlm.train_wordpiece)")
    pieces = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    room = block_size - 2
    if not pack:
        return [{"input_ids": [cls, *ids[:room], sep]} for ids in pieces if ids]
    stream: list[int] = []
    for ids in pieces:
        if ids:
            stream += ids + [sep]
    blocks = []
    for start in range(0, len(stream), room):
        chunk = stream[start:start + room]
        if chunk and chunk[0] == sep:      # [CLS] opens the block, its own [SEP] closes it
            chunk = chunk[1:]
        if chunk and chunk[-1] == sep:
            chunk = chunk[:-1]
        if chunk:
            blocks.append({"input_ids": [cls, *chunk, sep]})
    return blocks


# --------------------------------------------------------------------------- masking
def mask_tokens(input_ids: torch.Tensor, *, mask_token_id: int, vocab_size: int,
                special_ids: Iterable[int] = (), probability: float = 0.15,
                mask_rate: float = 0.8, random_rate: float = 0.1,
                generator: torch.Generator | None = None):
    """BERT's masking rule. Returns `(inputs, labels)`, both shaped like `input_ids`.

    Each position whose id is not in `special_ids` (put the padding id there too) is
    chosen with `probability`. `labels` holds the original id at chosen positions and
    -100 elsewhere (the loss skips those). At chosen positions the input becomes [MASK]
    (`mask_rate`), a random non-special token (`random_rate`), or stays unchanged (the
    rest), so the model cannot rely on seeing [MASK], which never occurs downstream.
    """
    if not torch.is_tensor(input_ids) or input_ids.dtype != torch.long:
        raise TypeError("input_ids must be a LongTensor of token ids (batch, length); "
                        "pad the lists first, e.g. with MLMCollator")
    if not 0 < probability < 1:
        raise ValueError(f"probability={probability}: it is the share of tokens to predict, "
                         "strictly between 0 and 1 (BERT used 0.15)")
    if mask_rate < 0 or random_rate < 0 or mask_rate + random_rate > 1:
        raise ValueError(f"mask_rate={mask_rate} and random_rate={random_rate} must be "
                         "non-negative and add up to at most 1 (BERT: 0.8 and 0.1)")
    if mask_token_id is None:
        raise ValueError("no [MASK] token id: the tokenizer needs a mask token "
                         "(tokenizer.add_special_tokens({'mask_token': '[MASK]'}))")
    special = torch.tensor(sorted(set(int(i) for i in special_ids)), dtype=torch.long)
    is_special = torch.isin(input_ids, special)
    uniform = lambda: torch.rand(input_ids.shape, generator=generator)  # noqa: E731
    chosen = (uniform() < probability) & ~is_special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE))
    draw = uniform()   # one draw splits the chosen positions 80/10/10
    to_mask = chosen & (draw < mask_rate)
    to_random = chosen & (draw >= mask_rate) & (draw < mask_rate + random_rate)
    keep = torch.ones(vocab_size, dtype=torch.bool)
    keep[special[special < vocab_size]] = False
    candidates = keep.nonzero().squeeze(1)
    random_ids = candidates[torch.randint(len(candidates), input_ids.shape, generator=generator)]
    inputs = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    inputs = torch.where(to_random, random_ids, inputs)
    return inputs, labels


def eval_masks(tokenizer, examples: Sequence[dict], *, probability: float = 0.15,
               seed: int = 0, mask_fn=None) -> list[dict]:
    """Held-out examples masked once, for scoring: `{"input_ids", "labels"}` each.

    Each real token is chosen with `probability` (special tokens never) and **every**
    chosen position becomes [MASK] (`mask_rate=1`, `random_rate=0`): no graded answer is
    visible in the input, unlike BERT's 80/10/10 training rule. The choices come from a
    `torch.Generator` seeded with `seed`, example by example, so the same examples give
    the same masks in every call, whatever the batch size or torch's global random
    state. `mask_fn` is the masking rule (default `mask_tokens`; any function with its
    signature). Score with `train.evaluate(model, masked, collate_fn=MLMCollator(tok))`
    (the collator pads pre-masked examples without masking them again) or
    `adapt.perplexity`.
    """
    if tokenizer.mask_token_id is None:
        raise ValueError("eval_masks needs a tokenizer with a [MASK] token")
    if not examples:
        raise ValueError("eval_masks() got no examples: pass tokenised blocks, e.g. from "
                         "mlm.tokenize_blocks")
    mask_fn = mask_fn or mask_tokens
    generator = torch.Generator().manual_seed(seed)
    special = set(tokenizer.all_special_ids)
    out = []
    for e in examples:
        if "input_ids" not in e:
            raise KeyError(f"examples need an 'input_ids' field; got {sorted(e)}. Tokenize "
                           "first, e.g. with mlm.tokenize_blocks")
        ids = torch.tensor([list(e["input_ids"])], dtype=torch.long)
        inputs, labels = mask_fn(ids, mask_token_id=tokenizer.mask_token_id,
                                 vocab_size=len(tokenizer), special_ids=special,
                                 probability=probability, mask_rate=1.0, random_rate=0.0,
                                 generator=generator)
        out.append({"input_ids": inputs[0].tolist(), "labels": labels[0].tolist()})
    return out


class MLMCollator:
    """Pad a list of `{"input_ids": [...]}` examples and mask them (80/10/10).

    Returns `{"input_ids", "attention_mask", "labels"}` tensors, ready for
    `BertForMaskedLM(**batch)`. Other keys of the examples are ignored. `mask_fn` is the
    masking rule, a function with `mask_tokens`' signature (default `mask_tokens`).
    Examples that already carry `labels` (masked once for scoring by `eval_masks`) are
    padded as they are, not masked again.
    """

    def __init__(self, tokenizer, probability: float = 0.15, *, mask_rate: float = 0.8,
                 random_rate: float = 0.1, mask_fn=None):
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("MLMCollator needs a tokenizer with a [MASK] and a [PAD] token")
        self.tokenizer = tokenizer
        self.probability, self.mask_rate, self.random_rate = probability, mask_rate, random_rate
        self.special_ids = set(tokenizer.all_special_ids)
        self.vocab_size = len(tokenizer)
        self.mask_fn = mask_fn or mask_tokens     # the masking rule (`mask_tokens`'s contract)

    def __call__(self, examples: Sequence[dict]) -> dict:
        if not examples:
            raise ValueError("MLMCollator got an empty batch")
        if "input_ids" not in examples[0]:
            raise KeyError(f"examples need an 'input_ids' field; got {sorted(examples[0])}. "
                           "Tokenize first, e.g. with mlm.tokenize_blocks")
        ids = [list(e["input_ids"]) for e in examples]
        width = max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in ids], dtype=torch.long)
        attention = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
        if "labels" in examples[0]:        # masked already (eval_masks): pad, do not re-mask
            labels = torch.tensor([list(e["labels"]) + [IGNORE] * (width - len(e["labels"]))
                                   for e in examples], dtype=torch.long)
            return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
        inputs, labels = self.mask_fn(
            input_ids, mask_token_id=self.tokenizer.mask_token_id, vocab_size=self.vocab_size,
            special_ids=self.special_ids, probability=self.probability,
            mask_rate=self.mask_rate, random_rate=self.random_rate)
        return {"input_ids": inputs, "attention_mask": attention, "labels": labels}


# --------------------------------------------------------------------------- schedule
def warmup_cosine(step: int, total_steps: int, warmup_steps: int,
                  min_lr_ratio: float = 0.0) -> float:
    """The learning-rate multiplier of BERT-style pre-training at optimizer step `step`
    (counted from 0): a linear warmup over `warmup_steps` steps, then a cosine from 1
    down to `min_lr_ratio` at `total_steps`. It is the schedule `fit(schedule="cosine")`
    follows (`labkit.train.lr_lambda`), asked for one step."""
    from .train import lr_lambda

    return lr_lambda(total_steps, warmup_steps, "cosine", min_lr_ratio)(step)


# --------------------------------------------------------------------------- model
def small_bert_config(tokenizer, *, hidden_size: int = 128, num_layers: int = 2,
                      num_heads: int = 2, intermediate_size: int | None = None,
                      max_length: int | None = None, dropout: float = 0.1):
    """A `BertConfig` for a small BERT that trains on a CPU, sized from `tokenizer`.

    Defaults: 2 layers, hidden 128, 2 heads, feed-forward 4 x hidden (the shape of
    Google's BERT-tiny), positions up to the tokenizer's `model_max_length`.
    """
    from transformers import BertConfig

    if hidden_size % num_heads:
        raise ValueError(f"hidden_size={hidden_size} must be divisible by num_heads={num_heads}")
    max_length = max_length or tokenizer.model_max_length
    if max_length > 4096:
        raise ValueError(f"max_length={max_length}: the tokenizer sets no sensible "
                         "model_max_length; pass max_length (e.g. 128)")
    return BertConfig(vocab_size=len(tokenizer), hidden_size=hidden_size,
                      num_hidden_layers=num_layers, num_attention_heads=num_heads,
                      intermediate_size=intermediate_size or 4 * hidden_size,
                      max_position_embeddings=max_length,
                      hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                      pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)


def mlm_loss(model, batch):
    """The masked-LM loss (mean cross-entropy over labelled positions), for `fit`.

    While training, the output layer runs only where `labels != -100` (see
    `logits_at`): the same loss as `model(**batch).loss`, several times faster on a CPU.
    In eval mode it is `model(**batch)`, whose full logits give `evaluate` its
    masked-token accuracy.
    """
    if not model.training:
        out = model(**batch)
        return out.loss, out
    labels = batch["labels"]
    where = labels != IGNORE
    logits = logits_at(model, {k: v for k, v in batch.items() if k != "labels"}, where)
    return torch.nn.functional.cross_entropy(logits, labels[where])


def logits_at(model, inputs: dict, where: torch.Tensor) -> torch.Tensor:
    """Masked-LM logits at the positions where `where` is True: (n_positions, vocab).

    For a BERT-style masked LM (one with `.bert` and `.cls`, e.g. BertForMaskedLM) the
    encoder runs on every position and the output layer (hidden -> vocabulary, the
    biggest matrix product of a small BERT) only at those positions; other models
    compute all logits and select.
    """
    encoder, head = getattr(model, "bert", None), getattr(model, "cls", None)
    if encoder is None or head is None:
        return model(**inputs).logits[where]
    return head(encoder(**inputs).last_hidden_state[where])


# --------------------------------------------------------------------------- probing
@torch.no_grad()
def fill_mask(model, tokenizer, texts: Sequence[str], top_k: int = 5,
              batch_size: int = 64) -> list[list[tuple[str, float]]]:
    """The `top_k` (token, probability) a masked LM puts in the one [MASK] of each text.

    Write probes with the literal "[MASK]"; it is replaced by the tokenizer's own mask
    token. Works for any `AutoModelForMaskedLM` and its tokenizer.
    """
    if isinstance(texts, str):
        texts = [texts]
    mask = tokenizer.mask_token
    if mask is None:
        raise ValueError("the tokenizer has no mask token: fill_mask needs a masked LM's tokenizer")
    texts = [t.replace("[MASK]", mask) for t in texts]
    for t in texts:
        if t.count(mask) != 1:
            raise ValueError(f"each probe needs exactly one [MASK]; got {t.count(mask)} in {t!r}")
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        enc = dict(tokenizer(chunk, padding=True, truncation=True, return_tensors="pt"))
        if "token_type_ids" not in inspect.signature(model.forward).parameters:
            enc.pop("token_type_ids", None)
        enc = {k: v.to(dev) for k, v in enc.items()}
        rows, cols = (enc["input_ids"] == tokenizer.mask_token_id).nonzero(as_tuple=True)
        if len(rows) != len(chunk):
            raise ValueError("a [MASK] was cut off by truncation: shorten the probe so the "
                             f"mask falls within {tokenizer.model_max_length} tokens")
        where = torch.zeros_like(enc["input_ids"], dtype=torch.bool)
        where[rows, cols] = True
        probs = logits_at(model, enc, where).float().softmax(-1)
        p, ids = probs.topk(top_k, dim=-1)
        for pi, ii in zip(p.tolist(), ids.tolist()):
            out.append([(tokenizer.convert_ids_to_tokens(i), pr) for i, pr in zip(ii, pi)])
    model.train(was_training)
    return out

