"""Classification as the pre-training task itself: patterns, verbalizers, cloze scoring.

    >>> from labkit import models, prompts
    >>> mlm, tok = models.load("tiny-mlm", task="masked-lm")
    >>> pattern, verbalizer = "{text} It was [MASK].", ("terrible", "great")   # label 0, 1
    >>> prompts.zero_shot(mlm, tok, ["A gem.", "Dull."], [1, 0], [pattern], verbalizer)

A **pattern** turns an input into a cloze question: `{text}` is where the review goes and
`[MASK]` is where the answer goes ("<review> It was [MASK]."). A **verbalizer** names one
word per label, in label order (`("terrible", "great")`: label 0 is "terrible"). The
model's score for a label is how likely it finds that label's word at the mask;
the prediction is the label whose word scores highest. No new weights: the classifier
is the pre-trained model answering its own pre-training question (Schick & Schütze 2021,
PET; Le Scao & Rush 2021).

The pieces, in the order a notebook uses them:

* `tokenize` fills the pattern for every row of a split and tokenises it, shortening the
  review (never the pattern) to fit `max_length`; rows keep `label`, so
  `data.sample` draws label budgets and `finetune.collate` pads them.
* `ClozeClassifier` wraps a masked LM so that it looks like any Hugging Face classifier:
  its logits are the masked LM's logits for the verbalizer words at the mask, its loss
  the cross-entropy over them (PET's loss). So `finetune.fit_classifier`,
  `finetune.learning_curve` and `train.evaluate` train and score it unchanged: **prompt
  fine-tuning** is fine-tuning whose "head" starts as the MLM's own output layer for the
  verbalizer words instead of a random matrix.
* `calibrate` subtracts the scores the model gives a content-free input ("N/A"): the
  model's prior for each word, whatever the review (Zhao et al. 2021).
* `causal_scores` is the same idea for a causal (left-to-right) LM: the score of a label
  is the log-likelihood of its word as the continuation, " great" after "<review> It was".
* `zero_shot` scores a list of texts with one or several patterns (their label
  probabilities are averaged, an ensemble needing no labels), optionally calibrated, for
  either kind of LM.
* `data_points_worth` measures how many labelled examples a prompt is worth: the
  horizontal gap between two accuracy curves, averaged over the accuracy range both
  reach (Le Scao & Rush, NAACL 2021); `worth_examples` gives that one number and
  `plot_worth` draws it.
* `mask_scores` is the cloze score in one line of tensor indexing: the logits at each
  row's mask, for the verbalizer tokens; `from_scores` turns label scores into
  zero-shot results, so raw and calibrated results share one scoring pass.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .mlm import logits_at

MASK = "[MASK]"
TEXT = "{text}"

# Patterns in the style of PET and LM-BFF for binary sentiment; label 0 = negative.
PATTERNS = ("{text} It was [MASK].",
            "{text} All in all, it was [MASK].",
            "{text} In summary, the film was [MASK].")
VERBALIZER = ("terrible", "great")
CONTENT_FREE = ("N/A",)


# --------------------------------------------------------------------------- patterns
def check_pattern(pattern: str, *, mask_last: bool = False) -> tuple[str, str]:
    """Split a pattern at `{text}` into (before, after); fail with one clear message if
    it lacks exactly one `{text}` and one `[MASK]`. `mask_last=True` (causal LMs, which
    read left to right) also asks for the mask to come after the text."""
    if not isinstance(pattern, str) or pattern.count(TEXT) != 1 or pattern.count(MASK) != 1:
        raise ValueError(f"pattern {pattern!r} needs exactly one {TEXT} (where the input "
                         f"goes) and one {MASK} (where the answer goes), e.g. "
                         f"'{{text}} It was [MASK].'")
    before, after = pattern.split(TEXT)
    if mask_last and MASK not in after:
        raise ValueError(f"pattern {pattern!r}: a causal LM reads left to right, so the "
                         f"answer must come after the input; put {MASK} after {TEXT}")
    return before, after


def fill(pattern: str, text: str, answer: str = MASK) -> str:
    """The pattern with `text` in place and `answer` (default: the mask) in the blank."""
    check_pattern(pattern)
    return pattern.replace(TEXT, text.strip()).replace(MASK, answer)


def verbalizer_ids(tokenizer, verbalizer: Sequence[str]) -> list[int]:
    """The token id of each verbalizer word (label order). Every word must be a single
    token of this tokenizer, or the mask could not hold it."""
    if isinstance(verbalizer, str) or len(verbalizer) < 2:
        raise ValueError(f"verbalizer {verbalizer!r}: give one word per label, in label "
                         "order, e.g. ('terrible', 'great') for labels 0 and 1")
    if len(set(verbalizer)) != len(verbalizer):
        raise ValueError(f"verbalizer {verbalizer!r} repeats a word: each label needs its own")
    ids = []
    for word in verbalizer:
        pieces = tokenizer.tokenize(word)
        if len(pieces) != 1 or tokenizer.convert_tokens_to_ids(pieces[0]) == tokenizer.unk_token_id:
            raise ValueError(f"verbalizer word {word!r} is {pieces} in this tokenizer, not one "
                             "known token: pick a word that tokenizer.tokenize(word) keeps whole")
        ids.append(tokenizer.convert_tokens_to_ids(pieces[0]))
    return ids


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text (BERT: [CLS] and [SEP])."""
    probe = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for s in range(len(full) - len(probe) + 1):
        if full[s:s + len(probe)] == probe:
            return full[:s], full[s + len(probe):]
    raise ValueError("cannot tell where this tokenizer puts its special tokens")


class PatternEncoder:
    """Fill a pattern and tokenise it, shortening the text (never the pattern) to fit
    `max_length`. Called on a list of texts it returns one row (a dict of lists) each."""

    def __init__(self, tokenizer, pattern: str, max_length: int = 64):
        if tokenizer.mask_token is None:
            raise ValueError("the tokenizer has no mask token: cloze patterns need a masked "
                             "LM's tokenizer (for a causal LM use causal_scores)")
        before, after = check_pattern(pattern)
        self.tokenizer = tokenizer
        self.head, self.tail = self._piece(before), self._piece(after)
        self.lead, self.trail = special_tokens(tokenizer)
        fixed = len(self.head) + len(self.tail) + len(self.lead) + len(self.trail)
        self.room = max_length - fixed
        if self.room < 1:
            raise ValueError(f"max_length={max_length} leaves no room for the text around "
                             f"pattern {pattern!r} ({fixed} tokens); raise max_length")
        self.with_types = "token_type_ids" in tokenizer.model_input_names

    def _piece(self, s: str) -> list[int]:
        s = s.replace(MASK, self.tokenizer.mask_token)
        return self.tokenizer(s, add_special_tokens=False)["input_ids"] if s.strip() else []

    def __call__(self, texts: Sequence[str]) -> list[dict]:
        rows = []
        for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
            full = self.lead + self.head + ids[:self.room] + self.tail + self.trail
            row = {"input_ids": full, "attention_mask": [1] * len(full)}
            if self.with_types:
                row["token_type_ids"] = [0] * len(full)
            rows.append(row)
        return rows


def tokenize(ds, tokenizer, pattern: str, *, max_length: int = 64, text_column: str = "text",
             label_column: str = "label"):
    """Fill `pattern` for every row of `ds` (a `datasets.Dataset` or `DatasetDict`) and
    tokenise it, with the tokenizer's mask token in the blank. A long review is
    shortened to fit `max_length`; the pattern, and so the mask, always survives.
    Returns rows with `input_ids`, `attention_mask` (, `token_type_ids`) and `label`.

    The three pieces (before the text, the text, after it) are tokenised separately,
    which is exact for BERT's WordPiece (it splits on spaces and punctuation first).
    """
    encoder = PatternEncoder(tokenizer, pattern, max_length)
    splits = ds.values() if hasattr(ds, "keys") else [ds]
    for split in splits:
        if text_column not in split.column_names:
            raise ValueError(f"prompts.tokenize: no column {text_column!r}; the data has "
                             f"{split.column_names}. Pass text_column=")
        if len(split) == 0:
            raise ValueError("prompts.tokenize: got an empty split; check the data and any filter")

    def encode(batch):
        rows = encoder(batch[text_column])
        return {k: [r[k] for r in rows] for k in rows[0]}

    any_split = next(iter(splits))
    drop = [c for c in any_split.column_names if c != label_column]
    out = ds.map(encode, batched=True, remove_columns=drop, desc="fill pattern")
    if label_column != "label" and label_column in any_split.column_names:
        out = out.rename_column(label_column, "label")
    return out


# --------------------------------------------------------------------------- the classifier
@dataclass
class ClozeOutput:
    """What `ClozeClassifier` returns: the loss (with labels) and one logit per label."""

    loss: torch.Tensor | None
    logits: torch.Tensor


def verbalizer_logits(mlm, inputs: dict, where: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The masked LM's logits (scores before the softmax over the vocabulary) for the
    tokens `ids` at the positions where `where` is True: (positions, len(ids)).

    For a BERT-style model (`.bert` and `.cls.predictions.transform`) only those rows
    of the output layer are computed: the output layer is the vocabulary's word
    embeddings (tied), so each label's logit is the dot product of the transformed
    hidden state at the mask with its word's embedding, plus a bias. Other masked LMs
    compute every logit at the mask (`mlm.logits_at`) and select.
    """
    encoder = getattr(mlm, "bert", None)
    transform = getattr(getattr(getattr(mlm, "cls", None), "predictions", None), "transform", None)
    out = mlm.get_output_embeddings()
    if encoder is None or transform is None or out is None:
        return logits_at(mlm, inputs, where)[:, ids]
    hidden = transform(encoder(**inputs).last_hidden_state[where])
    logits = hidden @ out.weight[ids].T
    return logits + out.bias[ids] if out.bias is not None else logits


def mask_positions(input_ids: torch.Tensor, mask_token_id: int) -> torch.Tensor:
    """Where the mask token is, as a boolean (rows, length) tensor; every row must hold
    exactly one mask (the blank of the pattern), or there is nothing, or too much, to
    score."""
    where = input_ids == mask_token_id
    per_row = where.sum(1)
    if not bool((per_row == 1).all()):
        raise ValueError(f"every row needs exactly one mask token; found {per_row.tolist()}"
                         ". Build the rows with prompts.tokenize(ds, tokenizer, pattern)")
    return where


def mask_scores(logits: torch.Tensor, input_ids: torch.Tensor, mask_token_id: int,
                label_ids) -> torch.Tensor:
    """The score of each label for each row: the masked LM's logits (rows, length,
    vocabulary) at the row's one mask position, for the verbalizer tokens `label_ids`
    (label order): (rows, labels). Each row's mask sits where that row puts it (rows
    have different lengths); a row without exactly one mask is an error. Multi-token
    words never get here: `verbalizer_ids` refuses them, since the blank holds one token."""
    where = mask_positions(input_ids, mask_token_id)
    ids = torch.as_tensor(label_ids, device=logits.device, dtype=torch.long)
    return logits[where][:, ids]


class ClozeClassifier(torch.nn.Module):
    """A masked LM used as a classifier through a pattern and a verbalizer.

    The logits of a row are the masked LM's logits for the verbalizer words at its one
    mask, minus `bias` (zero until `calibrate` sets it); a softmax over them gives the
    probability of each label. With `labels`, the loss is the cross-entropy over those
    logits, i.e. the softmax is taken over the verbalizer words only: PET's training
    objective. Every weight of the masked LM trains; nothing is new.

    (Logits and log-probabilities over the whole vocabulary differ by one constant per
    row, which cancels in a softmax over the labels: using logits gives the same
    predictions, probabilities and loss, and spares the vocabulary-wide softmax.)
    """

    def __init__(self, mlm, tokenizer, verbalizer: Sequence[str] = VERBALIZER):
        super().__init__()
        if tokenizer.mask_token_id is None:
            raise ValueError("ClozeClassifier needs a masked LM and its tokenizer (with a "
                             "mask token)")
        self.mlm = mlm
        self.config = mlm.config          # fit_classifier reads pad_token_id from here
        self.verbalizer = tuple(verbalizer)
        self.mask_token_id = tokenizer.mask_token_id
        self.register_buffer("ids", torch.tensor(verbalizer_ids(tokenizer, verbalizer)))
        self.register_buffer("bias", torch.zeros(len(verbalizer)))
        self.num_labels = len(verbalizer)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        where = mask_positions(input_ids, self.mask_token_id)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask,
                  "token_type_ids": token_type_ids}
        inputs = {k: v for k, v in inputs.items() if v is not None}
        logits = verbalizer_logits(self.mlm, inputs, where, self.ids).float() - self.bias
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return ClozeOutput(loss=loss, logits=logits)


@torch.no_grad()
def predict_scores(model, rows, *, batch_size: int = 128) -> np.ndarray:
    """(n, labels) scores of a classifier (e.g. a `ClozeClassifier`) on tokenised rows."""
    from .finetune import collate
    from .train import batches, to_device

    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    pad = collate(getattr(model.config, "pad_token_id", None) or 0)
    out = []
    for batch in batches(rows, batch_size, collate_fn=pad):
        batch = to_device({k: v for k, v in batch.items() if k != "labels"}, dev)
        out.append(model(**batch).logits.float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy()


@torch.no_grad()
def calibrate(clf: ClozeClassifier, tokenizer, pattern: str,
              content_free: Sequence[str] = CONTENT_FREE, *, max_length: int = 64) -> np.ndarray:
    """Set `clf.bias` to the mean score (logit) each verbalizer word gets when the text
    is content-free ("N/A"): the model's prior for the word, whatever the review.
    Subtracting it removes the tilt towards one label (Zhao et al. 2021 subtract
    log-probabilities; over the labels that is the same). Returns the bias; set
    `clf.bias.zero_()` to undo."""
    if not content_free:
        raise ValueError("calibrate needs at least one content-free text, e.g. ('N/A',)")
    clf.bias.zero_()
    scores = predict_scores(clf, PatternEncoder(tokenizer, pattern, max_length)(content_free))
    clf.bias.copy_(torch.as_tensor(scores.mean(0)))
    return scores.mean(0)


# --------------------------------------------------------------------------- causal LMs
def _left_pad(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad on the left, so that every row's last real token sits in the last column."""
    width = max(len(s) for s in seqs)
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    return ids, mask


def _read(lm, ids, mask, positions, cache=None, *, last_only=True):
    """Run the decoder on `ids` after whatever `cache` holds; return the next-token
    log-probabilities after the last new token (batch, vocab), or after every new token
    (batch, new, vocab) with `last_only=False`, and the grown cache."""
    base, out_layer = lm.base_model, lm.get_output_embeddings()
    # transformers 5 calls the cache `cache`; earlier versions `past_key_values`
    name = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
    out = base(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
               **{name: cache})
    hidden = out.last_hidden_state[:, -1] if last_only else out.last_hidden_state
    return out_layer(hidden).float().log_softmax(-1), getattr(out, name)


@torch.no_grad()
def causal_scores(lm, tokenizer, texts: Sequence[str], patterns: str | Sequence[str] = PATTERNS[0],
                  verbalizer: Sequence[str] = VERBALIZER, *, batch_size: int = 16,
                  max_text_tokens: int = 96) -> np.ndarray:
    """The log-likelihood a causal LM gives each verbalizer word in the blank.

    For "{text} It was [MASK]." the model reads "<text> It was" and the score of label
    k is log p(" <word k>" | what it read), summed over the word's tokens. Whatever
    follows the blank (".") is the same for every label and is not scored. One pattern
    gives an array (n, labels); a list of patterns gives (patterns, n, labels).

    Each text is read once per batch; the model's memory of it (the key/value cache) is
    then reused for every pattern and label, so more patterns cost little. Texts are
    cut to `max_text_tokens` tokens.
    """
    single = isinstance(patterns, str)
    patterns = [patterns] if single else list(patterns)
    if not patterns:
        raise ValueError("causal_scores needs at least one pattern")
    split = [check_pattern(p, mask_last=True) for p in patterns]
    if isinstance(verbalizer, str) or len(verbalizer) < 2:
        raise ValueError(f"verbalizer {verbalizer!r}: give one word per label, in label order")
    if isinstance(texts, str):
        texts = [texts]
    if len(texts) == 0:
        raise ValueError("causal_scores got no texts")
    lead, _ = special_tokens(tokenizer)        # e.g. a beginning-of-text token, if any

    def ids_of(s: str) -> list[int]:
        return tokenizer(s, add_special_tokens=False)["input_ids"] if s else []

    # per pattern: the words between the text and the blank ("It was"), then each label's
    # word with the space the pattern puts before it (" great")
    plans = []
    for before, after in split:
        middle = after.split(MASK)[0]
        stem = middle.rstrip()
        plans.append((before, ids_of(stem), [ids_of(middle[len(stem):] + w) for w in verbalizer]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = lm.training
    lm.eval()
    dev = next(lm.parameters()).device
    scores = np.zeros((len(patterns), len(texts), len(verbalizer)))
    for start in range(0, len(texts), batch_size):
        chunk = [t.strip() for t in texts[start:start + batch_size]]
        rows = slice(start, start + len(chunk))
        for before in dict.fromkeys(b for b, _, _ in plans):     # usually just ""
            seqs = [lead + ids_of(before + t)[:max_text_tokens + len(ids_of(before))]
                    for t in chunk]
            ids, mask = _left_pad(seqs, pad)
            ids, mask = ids.to(dev), mask.to(dev)
            lengths = mask.sum(1, keepdim=True)
            positions = (mask.cumsum(1) - 1).clamp(min=0)
            after_text, text_cache = _read(lm, ids, mask, positions)   # what may follow
            for p, (b, stem, words) in enumerate(plans):
                if b != before:
                    continue
                cache, seen, m = text_cache, lengths, mask
                nxt = after_text
                if stem:                                    # read "It was" on top of the text
                    cache = copy.deepcopy(text_cache)
                    new = torch.tensor([stem] * len(chunk), device=dev)
                    m = torch.cat([mask, torch.ones_like(new)], 1)
                    nxt, cache = _read(lm, new, m, seen + torch.arange(len(stem), device=dev),
                                       cache)
                    seen = seen + len(stem)
                for k, word in enumerate(words):
                    total = nxt[:, word[0]]
                    if len(word) > 1:                       # a word of several tokens
                        new = torch.tensor([word[:-1]] * len(chunk), device=dev)
                        lp, _ = _read(lm, new, torch.cat([m, torch.ones_like(new)], 1),
                                      seen + torch.arange(len(word) - 1, device=dev),
                                      copy.deepcopy(cache), last_only=False)
                        total = total + lp.gather(
                            2, torch.tensor(word[1:], device=dev).expand(len(chunk), -1)[..., None]
                        ).squeeze(-1).sum(1)
                    scores[p, rows, k] = total.cpu().numpy()
    lm.train(was_training)
    return scores[0] if single else scores


# --------------------------------------------------------------------------- zero-shot
def is_causal(model) -> bool:
    """True for a left-to-right LM (LlamaForCausalLM, GPT2LMHeadModel, ...)."""
    return type(model).__name__.endswith(("ForCausalLM", "LMHeadModel"))


@dataclass
class ZeroShot:
    """Zero-shot results: accuracy of the averaged scores, and of each pattern alone."""

    accuracy: float
    per_pattern: dict[str, float]
    scores: np.ndarray              # (n, labels), averaged over patterns
    predictions: np.ndarray
    bias: dict[str, np.ndarray]     # the content-free scores subtracted (empty: none)


def label_scores(model, tokenizer, texts: Sequence[str], patterns: Sequence[str] = PATTERNS,
                 verbalizer: Sequence[str] = VERBALIZER, *, calibrated: bool = False,
                 content_free: Sequence[str] = CONTENT_FREE, max_length: int = 64,
                 batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Scores (patterns, n, labels) of a masked LM (cloze) or a causal LM (the word's
    likelihood after the text), and the content-free scores (patterns, labels). With
    `calibrated`, those are already subtracted; without, they are zeros."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if is_causal(model):
        batch = max(1, batch_size // 4)
        scores = causal_scores(model, tokenizer, texts, patterns, verbalizer, batch_size=batch)
        bias = (causal_scores(model, tokenizer, list(content_free), patterns, verbalizer).mean(1)
                if calibrated else np.zeros((len(patterns), len(verbalizer))))
        return scores - bias[:, None, :], bias
    clf = ClozeClassifier(model, tokenizer, verbalizer)
    scores, bias = [], []
    for pattern in patterns:
        bias.append(calibrate(clf, tokenizer, pattern, content_free, max_length=max_length)
                    if calibrated else np.zeros(len(verbalizer)))
        rows = PatternEncoder(tokenizer, pattern, max_length)(texts)
        scores.append(predict_scores(clf, rows, batch_size=batch_size))
    return np.stack(scores), np.stack(bias)


def zero_shot(model, tokenizer, texts: Sequence[str], labels: Sequence[int],
              patterns: Sequence[str] = PATTERNS, verbalizer: Sequence[str] = VERBALIZER, *,
              calibrated: bool = False, content_free: Sequence[str] = CONTENT_FREE,
              max_length: int = 64, batch_size: int = 64) -> ZeroShot:
    """Zero-shot accuracy of a masked LM (cloze) or a causal LM (continuation likelihood)
    with no labelled training data. Each pattern's scores are turned into probabilities
    over the labels, and those are averaged over the patterns (the ensemble).
    `labels` are only used to score the predictions."""
    if isinstance(patterns, str):
        patterns = [patterns]
    labels = np.asarray(labels)
    if len(texts) == 0 or len(texts) != len(labels):
        raise ValueError(f"zero_shot needs one label per text (got {len(texts)} texts and "
                         f"{len(labels)} labels)")
    scores, bias = label_scores(model, tokenizer, list(texts), patterns, verbalizer,
                                calibrated=calibrated, content_free=content_free,
                                max_length=max_length, batch_size=batch_size)
    return from_scores(scores, labels, patterns, bias if calibrated else None)


def from_scores(scores: np.ndarray, labels: Sequence[int], patterns: Sequence[str],
                bias: np.ndarray | None = None) -> ZeroShot:
    """Zero-shot results from label scores (patterns, n, labels), e.g. those of
    `label_scores`: each pattern alone, and the ensemble (label probabilities averaged
    over the patterns). `bias` (patterns, labels) only records what calibration
    subtracted. Scoring once and reading the scores twice gives the raw and the
    calibrated results for the price of one pass (raw = calibrated scores + bias)."""
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if scores.ndim != 3 or scores.shape[0] != len(patterns) or scores.shape[1] != len(labels):
        raise ValueError(f"scores of shape {scores.shape} do not fit {len(patterns)} patterns "
                         f"and {len(labels)} labels: expected (patterns, n, labels)")
    per_pattern = {p: float((s.argmax(1) == labels).mean()) for p, s in zip(patterns, scores)}
    probs = torch.as_tensor(scores).softmax(-1).mean(0)       # the ensemble
    predictions = probs.argmax(1).numpy()
    return ZeroShot(accuracy=float((predictions == labels).mean()), per_pattern=per_pattern,
                    scores=probs.log().numpy(), predictions=predictions,
                    bias={} if bias is None else dict(zip(patterns, bias)))


def ensemble_p(model, tokenizer, texts: Sequence[str], *, label: int = 1,
               patterns: Sequence[str] = PATTERNS,
               verbalizer: Sequence[str] = VERBALIZER) -> np.ndarray:
    """P(`label`) of each text by the calibrated zero-shot ensemble (`label_scores` with
    calibration, label probabilities averaged over the patterns): a judge that is never
    trained, one number per text."""
    scores, _ = label_scores(model, tokenizer, list(texts), patterns, verbalizer, calibrated=True)
    return torch.as_tensor(scores).softmax(-1).mean(0)[:, label].numpy()


def majority_accuracy(labels: Sequence[int]) -> float:
    """Accuracy of always predicting the most common label of `labels`."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("majority_accuracy got no labels")
    return float(np.bincount(labels).max() / labels.size)


# --------------------------------------------------------------------------- data-point worth
Curve = Mapping[int, float] | tuple[Sequence[float], Sequence[float]]


def as_curve(curve: Curve) -> tuple[np.ndarray, np.ndarray]:
    """(label budgets, accuracies) sorted by budget, from a {n: accuracy} mapping or a
    pair of sequences. Fails clearly on fewer than two points or a repeated budget."""
    if isinstance(curve, Mapping):
        ns, accs = list(curve.keys()), list(curve.values())
    else:
        try:
            ns, accs = curve
        except (TypeError, ValueError):
            raise TypeError("a curve is a {n: accuracy} dict or a pair (ns, accuracies)") from None
    ns, accs = np.asarray(ns, dtype=float), np.asarray(accs, dtype=float)
    if ns.shape != accs.shape or ns.ndim != 1 or ns.size < 2:
        raise ValueError(f"a curve needs at least two (n, accuracy) points of equal count; "
                         f"got {ns.size} budgets and {accs.size} accuracies")
    if len(set(ns.tolist())) != ns.size or not np.isfinite(accs).all():
        raise ValueError("a curve needs distinct budgets and finite accuracies: average the "
                         "seeds per budget first (finetune.summarize)")
    order = np.argsort(ns)
    return ns[order], accs[order]


def curve_from_rows(summary: Sequence[dict], strategy: str) -> dict[int, float]:
    """{n: mean accuracy} of one strategy, from `finetune.summarize(rows)`."""
    curve = {r["n"]: r["mean"] for r in summary if r["strategy"] == strategy}
    if not curve:
        known = sorted({r["strategy"] for r in summary})
        raise KeyError(f"no rows for strategy {strategy!r}; known: {known}")
    return curve


def labels_needed(curve: Curve, levels) -> np.ndarray:
    """The number of labels at which the piecewise-linear curve first reaches each
    accuracy in `levels` (NaN where it never does). A dip in the curve does not undo a
    level already reached: the curve is replaced by its running maximum first."""
    ns, accs = as_curve(curve)
    env = np.maximum.accumulate(accs)
    levels = np.atleast_1d(np.asarray(levels, dtype=float))
    out = np.full(levels.shape, np.nan)
    for i, a in enumerate(levels):
        if a <= env[0]:                        # reached at the first budget already
            out[i] = ns[0]
            continue
        j = int(np.argmax(env >= a))          # first point at or above a
        if env[j] < a:
            continue                           # never reached
        a0, a1 = env[j - 1], env[j]
        out[i] = ns[j - 1] + (ns[j] - ns[j - 1]) * (a - a0) / (a1 - a0)
    return out


@dataclass
class Worth:
    """How many labelled examples a prompt is worth (Le Scao & Rush 2021)."""

    examples: float              # mean horizontal gap over the shared accuracy range
    low: float                   # the shared accuracy range
    high: float
    levels: np.ndarray           # accuracy grid over [low, high]
    n_prompt: np.ndarray         # labels each curve needs to reach each level
    n_head: np.ndarray

    def __str__(self) -> str:
        return (f"a prompt is worth {self.examples:,.0f} labelled examples (mean horizontal "
                f"gap over accuracies {self.low:.1%}-{self.high:.1%})")


def data_points_worth(prompt: Curve, head: Curve, *, points: int = 2001) -> Worth:
    """Le Scao & Rush's measure: for every accuracy both curves reach, how many more
    labels the head needs than the prompt to get there; the mean of that gap over the
    shared accuracy range (the area between the curves, measured horizontally, divided
    by the height of the range). Curves are mean accuracies per label budget,
    interpolated linearly in the number of labels. Positive: the prompt saves labels."""
    p_ns, p_acc = as_curve(prompt)
    h_ns, h_acc = as_curve(head)
    p_env, h_env = np.maximum.accumulate(p_acc), np.maximum.accumulate(h_acc)
    low, high = max(p_env[0], h_env[0]), min(p_env[-1], h_env[-1])
    if not high > low:
        raise ValueError(f"the curves share no accuracy range (prompt {p_env[0]:.3f}-"
                         f"{p_env[-1]:.3f}, head {h_env[0]:.3f}-{h_env[-1]:.3f}): one is "
                         "above the other everywhere, so the gap is not defined; add "
                         "budgets where they overlap")
    levels = np.linspace(low, high, points)
    n_p, n_h = labels_needed(prompt, levels), labels_needed(head, levels)
    gap = n_h - n_p
    # the trapezoid rule over the grid: the area between the curves / the range height
    area = float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(levels)))
    examples = area / (high - low)
    return Worth(examples=examples, low=float(low), high=float(high), levels=levels,
                 n_prompt=n_p, n_head=n_h)


def worth_examples(prompt: Curve, head: Curve) -> float:
    """How many labelled examples the prompt is worth, as one number:
    `data_points_worth(prompt, head).examples` (raises ValueError when the curves share
    no accuracy range)."""
    return data_points_worth(prompt, head).examples


def plot_worth(prompt: Curve, head: Curve, worth: Worth | None = None, ax=None,
               labels: tuple[str, str] = ("prompt fine-tuning", "head fine-tuning")):
    """The two mean curves and the horizontal gap between them, shaded over the shared
    accuracy range (log-scaled label axis)."""
    import matplotlib.pyplot as plt

    worth = worth or data_points_worth(prompt, head)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    for curve, name, color in ((prompt, labels[0], "tab:blue"), (head, labels[1], "tab:orange")):
        ns, accs = as_curve(curve)
        ax.plot(ns, accs, "o-", color=color, label=name)
    ax.fill_betweenx(worth.levels, worth.n_prompt, worth.n_head, color="tab:green",
                     alpha=0.25, label=f"gap: {worth.examples:,.0f} examples on average")
    for frac in (0.25, 0.5, 0.75):
        i = int(frac * (len(worth.levels) - 1))
        ax.annotate("", xy=(worth.n_head[i], worth.levels[i]),
                    xytext=(worth.n_prompt[i], worth.levels[i]),
                    arrowprops={"arrowstyle": "->", "color": "tab:green"})
    ax.set_xscale("log")
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
