"""Fine-tune a pre-trained encoder for classification on a label budget.

    >>> from labkit import data, finetune
    >>> model, tok = finetune.build_classifier("minilm", num_labels=2, seed=0)
    >>> task = finetune.target_task(tok, "quick")          # tokenised once, then reused
    >>> few = data.sample(task["train"], 128, seed=0)      # a balanced label budget
    >>> result = finetune.fit_classifier(model, few, validation=task["validation"],
    ...                                  test=task["test"], seed=0,
    ...                                  lr=finetune.learning_rate(model, "full_ft"),
    ...                                  **finetune.recipe("quick"))
    >>> result.accuracy, result.trainable, result.seconds

The pieces, in the order a notebook uses them:

* `tokenize` turns a split (or a DatasetDict) with `text` and `label` columns into token
  ids, once; label budgets are then drawn from the tokenised split with `data.sample`.
* `build_classifier` makes the model to train from a checkpoint name or an already
  loaded model, in one of three ways: `init="pretrained"` (the encoder's weights, a new
  random head), `init="scratch"` (the same architecture, every weight random) and, with
  `freeze=True`, a linear probe (only the head learns). `surgery` lists which weights
  came from the checkpoint and which are new. `replace_head` swaps a
  trained head for a new one (e.g. after training on another task).
* `features` computes the sentence vectors a head reads (the pooled `[CLS]` vector, or
  the `mean_pool` of the token vectors) once, without autograd; `fit_probe` trains a
  frozen model's head on such cached vectors (a linear probe that never runs the
  encoder again); `principal_direction` finds the direction along which they vary most.
* `fit_classifier` trains through `labkit.train.fit` (evaluates on the validation set,
  its rows `sorted_by_length` so a pass pads little, and keeps the weights with the best
  validation accuracy), optionally with layer-wise
  learning-rate decay, then scores the test set. It returns a `Result`: test accuracy,
  the `History`, trainable parameter count and wall time.
* `learning_curve` repeats that over label budgets x seeds and returns plain rows
  (strategy, n, seed, accuracy, correct, ...) for the ledger; `summarize` and
  `plot_curve` give their mean and spread. Two strategies' rows are compared with
  `labkit.compare.versus_runs` (a 95% interval paired over seeds and test rows, the one
  the showdown uses), so a sentence about which is better says whether the data resolve it.
* `target_task`, `recipe` and `learning_rate`: the shared target task of notebooks
  04-09 (movie-review sentiment; its test rows are `labkit.protocol`'s), training recipe
  and learning rates, so that their numbers compare.
"""

from __future__ import annotations

import copy
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from . import device as device_lib
from . import models as models_lib
from .metrics import mean_std
from .batching import by_length, pad_collate as collate  # noqa: F401  (re-exported)
from .batching import row_lengths
from .protocol import EVAL_ROWS, TARGET, score  # noqa: F401  (re-exported: the one protocol)
from .protocol import target_task as protocol_target_task
from .text import tokenize  # noqa: F401  (re-exported)
from .train import History, fit, own_random_streams

INITS = ("pretrained", "scratch")


# --------------------------------------------------------------------------- data
# --------------------------------------------------------------------------- the model
def head(model) -> torch.nn.Module:
    """The task head of a Hugging Face classifier (`classifier`, or `score` for decoder
    models): the part that `build_classifier` initialises anew."""
    for name in ("classifier", "score"):
        module = getattr(model, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    raise ValueError(f"{type(model).__name__} has no `classifier` or `score` head: load it "
                     "with task='sequence-classification' (build_classifier does)")


def replace_head(model, num_labels: int, *, seed: int | None = None):
    """Swap the model's head for a new, randomly initialised one with `num_labels`
    outputs (what head replacement means). Works in place and returns the model.

    The new weights are drawn as the architecture draws them (normal, std
    `config.initializer_range`, bias zero); with `seed`, from a generator of their own
    (`torch.Generator().manual_seed(seed)`), leaving the global random stream alone."""
    old = head(model)
    if not isinstance(old, torch.nn.Linear):
        raise ValueError(f"replace_head knows linear heads; this head is {type(old).__name__}")
    new = torch.nn.utils.skip_init(torch.nn.Linear, old.in_features, num_labels,
                                   bias=old.bias is not None, device=old.weight.device,
                                   dtype=old.weight.dtype)
    g = None if seed is None else torch.Generator(old.weight.device).manual_seed(seed)
    with torch.no_grad():
        new.weight.normal_(0.0, getattr(model.config, "initializer_range", 0.02), generator=g)
        if new.bias is not None:
            new.bias.zero_()
    name = "classifier" if getattr(model, "classifier", None) is old else "score"
    setattr(model, name, new)
    model.num_labels = model.config.num_labels = num_labels
    return model


def checkpoint_shapes(name: str, profile: str = "quick") -> dict[str, tuple]:
    """The tensors a named checkpoint holds on disk, {name: shape}, read from its
    safetensors file without loading the values."""
    from pathlib import Path

    from safetensors import safe_open

    where, how, _ = models_lib.resolve(name, profile)
    if how == "hub":
        from huggingface_hub import hf_hub_download
        path = hf_hub_download(where, "model.safetensors")   # cached by from_pretrained
    else:
        path = Path(where) / "model.safetensors"
    with safe_open(str(path), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def surgery(checkpoint: str, model, profile: str = "quick") -> list[dict]:
    """What head replacement did, part by part: which tensors of `model` were copied
    from the named `checkpoint` (same name and shape on disk), which are new (randomly
    initialised), and which tensors of the checkpoint were dropped (the old head).
    One row per part and fate: {"part", "parameters", "status"}."""
    prefix = model.base_model_prefix + "."

    def plain(name: str) -> str:
        return name[len(prefix):] if name.startswith(prefix) else name

    def part(name: str) -> str:
        pieces = name.split(".")
        numbered = [i for i, x in enumerate(pieces) if x.isdigit()]
        return ".".join(pieces[:numbered[0] + 1] if numbered else pieces[:1])

    def legacy(name: str) -> str:   # old checkpoints call LayerNorm's weights gamma, beta
        return re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))

    saved = {legacy(plain(k)): shape
             for k, shape in checkpoint_shapes(checkpoint, profile).items()}
    params = {plain(n): p for n, p in model.named_parameters()}
    counts: dict[tuple[str, str], int] = {}
    for name, p in params.items():
        status = "copied" if saved.get(name) == tuple(p.shape) else "new"
        counts[(part(name), status)] = counts.get((part(name), status), 0) + p.numel()
    for name, shape in saved.items():
        if name not in params and not name.endswith("position_ids"):
            counts[(part(name), "dropped")] = (counts.get((part(name), "dropped"), 0)
                                               + math.prod(shape))
    return [{"part": k[0], "parameters": v, "status": k[1]} for k, v in counts.items()]


def freeze_encoder(model):
    """Stop gradients to everything except the head (a linear probe). Returns the model."""
    keep = {id(p) for p in head(model).parameters()}
    for p in model.parameters():
        p.requires_grad = id(p) in keep
    return model


def build_classifier(source, *, num_labels: int = 2, init: str = "pretrained",
                     freeze: bool = False, new_head: bool = True, seed: int = 0,
                     profile: str = "quick"):
    """A classifier to fine-tune, and its tokenizer.

    `source` is a model name (`labkit.models.load(name, task="sequence-classification")`)
    or an already loaded model (deep-copied, so the original stays as it is; the
    tokenizer returned is then None). `init="pretrained"` keeps the encoder's weights and
    gives it a new random head (`new_head=False` keeps a loaded model's trained head
    instead); `init="scratch"` builds the same architecture with every weight random.
    `freeze=True` trains the head only. `seed` fixes the random weights.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; use one of {', '.join(INITS)}")
    with own_random_streams(seed):     # random weights from `seed`; the caller's streams untouched
        model, tokenizer = _new_classifier(source, num_labels, init, new_head, seed, profile)
    if freeze:
        freeze_encoder(model)
    return model, tokenizer


def _new_classifier(source, num_labels, init, new_head, seed, profile):
    if isinstance(source, str):
        model, tokenizer = models_lib.load(source, task="sequence-classification",
                                           profile=profile, num_labels=num_labels)
    elif isinstance(source, torch.nn.Module):
        model, tokenizer = copy.deepcopy(source), None
        if new_head:
            replace_head(model, num_labels, seed=seed)
        elif head(model).out_features != num_labels:
            raise ValueError(f"new_head=False keeps a head with {head(model).out_features} "
                             f"outputs, but num_labels={num_labels}: use new_head=True")
    else:
        raise TypeError(f"build_classifier takes a model name or a loaded model, not "
                        f"{type(source).__name__}")
    if init == "scratch":
        model.config.num_labels = num_labels
        model = type(model)(model.config)       # same architecture, random weights
    return model, tokenizer


def layer_depth(name: str, num_layers: int) -> int:
    """How deep a parameter sits: 0 for embeddings, i + 1 for transformer layer i,
    num_layers + 1 for everything above (pooler, head)."""
    if "embed" in name:
        return 0
    found = re.search(r"\.(?:layer|layers|h)\.(\d+)\.", name)
    return int(found.group(1)) + 1 if found else num_layers + 1


def layerwise_optimizer(model, lr: float, decay: float, *, weight_decay: float = 0.01):
    """AdamW with layer-wise learning-rate decay: the head trains at `lr`, each layer
    below at `decay` times the one above, the embeddings slowest. Low layers hold
    general features worth keeping; the top adapts most to the new task."""
    if not 0 < decay <= 1:
        raise ValueError(f"layer decay must be in (0, 1], got {decay}")
    num_layers = model.config.num_hidden_layers
    groups: dict[tuple[int, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (layer_depth(name, num_layers), p.ndim >= 2)
            groups.setdefault(key, []).append(p)
    top = num_layers + 1
    return torch.optim.AdamW([
        {"params": ps, "lr": lr * decay ** (top - depth),
         "weight_decay": weight_decay if decayed else 0.0}
        for (depth, decayed), ps in sorted(groups.items())])


# --------------------------------------------------------------------------- features
def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The sentence vector a sentence encoder (MiniLM) is trained to make: the average
    of the token vectors `hidden` (batch, length, hidden) over the real tokens
    (`attention_mask` 1), padding left out. Returns (batch, hidden)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


@torch.inference_mode()
def features(model, rows, *, pool="cls", pool_fn: Callable | None = None,
             batch_size: int = 64, device=None):
    """The sentence vectors a head would read, for every tokenised row, in order:
    (len(rows), hidden). `pool="cls"` gives what `BertForSequenceClassification`'s head
    reads (the pooler on the first token); `pool="mean"` the average of the token
    vectors (`pool_fn(hidden, attention_mask)`, default `mean_pool`). A tuple such as
    `("cls", "mean")` gives {pool: tensor} from one pass over the rows.

    A frozen encoder gives the same vectors every time, so a linear probe computes them
    once and trains its head on them (`fit_probe`). Runs without autograd on
    length-bucketed batches (rows sorted by length pad to their own longest)."""
    pools = (pool,) if isinstance(pool, str) else tuple(pool)
    if not pools or any(p not in ("cls", "mean") for p in pools):
        raise ValueError(f"pool must be 'cls', 'mean' or a tuple of them, got {pool!r}")
    if len(rows) == 0 or "input_ids" not in rows.column_names:
        raise ValueError("features() needs tokenised rows (input_ids): use "
                         "finetune.tokenize or finetune.target_task")
    pool_fn = pool_fn or mean_pool
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    pad_id = getattr(model.config, "pad_token_id", None) or 0
    encoder = model.base_model
    was = encoder.training
    encoder.eval()
    out = {p: torch.empty(len(rows), model.config.hidden_size) for p in pools}
    try:
        for idx, batch in by_length(rows, batch_size, pad_id, dev):
            enc = encoder(**batch)
            for p in pools:
                if p == "mean":
                    vec = pool_fn(enc.last_hidden_state, batch["attention_mask"])
                else:
                    pooled = getattr(enc, "pooler_output", None)
                    vec = pooled if pooled is not None else enc.last_hidden_state[:, 0]
                out[p][idx] = vec.float().cpu()
    finally:
        encoder.train(was)
    return out[pool] if isinstance(pool, str) else out


class _Probe(torch.nn.Module):
    """A classifier's head on cached sentence vectors: dropout, then the linear layer
    (what `BertForSequenceClassification` does above its pooler)."""

    def __init__(self, head: torch.nn.Module, dropout: float):
        super().__init__()
        self.head, self.dropout = head, torch.nn.Dropout(dropout)

    def forward(self, features, labels=None):
        from transformers.modeling_outputs import SequenceClassifierOutput

        logits = self.head(self.dropout(features))
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def fit_probe(model, train_features: torch.Tensor, train_labels, *, validation,
              lr: float = 1e-2, epochs: float = 3, min_steps: int = 0, batch_size: int = 16,
              evals: int = 4, seed: int = 0, desc: str = "probe", **fit_kwargs):
    """A linear probe trained on cached features: `model`'s head (e.g. the new head of
    `build_classifier(..., freeze=True)`) learns, through `labkit.train.fit`, on
    `train_features` (n, hidden) and their labels, keeping the weights best on
    `validation` = (features, labels). The same steps, batches and learning rate as
    `fit_classifier`; the encoder is never run again. Returns (head, History); the head
    is `model`'s own, trained in place."""
    def rows(x, y):
        y = torch.as_tensor(list(y) if not torch.is_tensor(y) else y, dtype=torch.long)
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"fit_probe: {len(x)} feature rows but {len(y)} labels")
        return [{"features": x[i], "labels": y[i]} for i in range(len(y))]

    train = rows(train_features, train_labels)
    valid = rows(*validation)
    probe = _Probe(head(model), getattr(model.config, "hidden_dropout_prob", 0.1) or 0.0)
    steps = max(min_steps, math.ceil(epochs * len(train) / batch_size))
    fit_kwargs.pop("group_by_length", None)   # features all have one size: nothing to pad
    hist = fit(probe, train, eval_data=valid, max_steps=steps, batch_size=batch_size, lr=lr,
               eval_every=max(1, math.ceil(steps / evals)), monitor="accuracy",
               restore_best=True, seed=seed, desc=desc, **fit_kwargs)
    return probe.head, hist


def principal_direction(x: torch.Tensor) -> torch.Tensor:
    """The unit vector along which the rows of `x` (n, d) vary most: the first principal
    direction of the centred rows (its sign is arbitrary)."""
    centred = x - x.mean(0, keepdim=True)
    return torch.linalg.svd(centred, full_matrices=False).Vh[0]


# --------------------------------------------------------------------------- training
@dataclass
class Result:
    """One fine-tuning run: test accuracy of the weights that were best on validation."""

    accuracy: float
    history: History
    trainable: int          # parameters that learned
    total: int              # all parameters
    seconds: float          # wall time: training, validation and the test evaluation
    n_train: int
    validation_accuracy: float | None = None
    model: Any = field(default=None, repr=False)
    correct: list[bool] | None = field(default=None, repr=False)   # per test row, in order


def fit_classifier(model, train, *, validation, test=None, lr: float = 5e-5,
                   epochs: float = 3, min_steps: int = 0, batch_size: int = 16,
                   evals: int = 4, layer_decay: float | None = None, seed: int = 0,
                   pad_id: int | None = None, desc: str = "fine-tune",
                   eval_batch_size: int | None = None, keep_model: bool = True,
                   **fit_kwargs) -> Result:
    """Train `model` on the tokenised `train` rows through `labkit.train.fit`, keep the
    weights with the best validation accuracy, and score `test` with them
    (`protocol.score`: one bool per test row in `Result.correct`, for paired comparisons).

    Steps: `epochs` passes over `train`, but at least `min_steps` optimizer steps (a small
    label budget needs more passes). Validation runs `evals` times, evenly spread.
    `layer_decay` (e.g. 0.8) gives lower layers smaller learning rates. Validation and
    test rows are scored `eval_batch_size` at a time (default: what suits the device,
    `device.scoring_batch_size`). Anything else goes to `fit` (warmup, schedule,
    weight_decay, group_by_length, patience, device, ...).
    """
    if len(train) == 0:
        raise ValueError("fit_classifier got no training rows: check the label budget")
    if "input_ids" not in train.column_names:
        raise ValueError("fit_classifier needs tokenised rows (input_ids): run "
                         "finetune.tokenize(ds, tokenizer) first")
    if pad_id is None:
        pad_id = getattr(model.config, "pad_token_id", None) or 0
    started = time.perf_counter()
    steps = max(min_steps, math.ceil(epochs * len(train) / batch_size))
    if layer_decay is not None:
        fit_kwargs["optimizer"] = layerwise_optimizer(
            model, lr, layer_decay, weight_decay=fit_kwargs.pop("weight_decay", 0.01))
    pad = collate(pad_id)
    if eval_batch_size is None:
        eval_batch_size = device_lib.scoring_batch_size(device_lib.pick(fit_kwargs.get("device")))
    hist = fit(model, train, eval_data=sorted_by_length(validation), collate_fn=pad,
               max_steps=steps,
               batch_size=batch_size, lr=lr, eval_every=max(1, math.ceil(steps / evals)),
               eval_batch_size=eval_batch_size, monitor="accuracy", restore_best=True,
               seed=seed, desc=desc, **fit_kwargs)
    accuracy, correct = float("nan"), None
    if test is not None:      # per row (for paired comparisons), without autograd
        correct = score(model, test, batch_size=eval_batch_size, pad_id=pad_id)
        accuracy = sum(correct) / len(correct)
    return Result(accuracy=accuracy, history=hist,
                  trainable=models_lib.count_parameters(model, trainable_only=True),
                  total=models_lib.count_parameters(model), n_train=len(train),
                  seconds=time.perf_counter() - started,
                  validation_accuracy=hist.best_score, model=model if keep_model else None,
                  correct=correct)


@torch.no_grad()
def class_p(model, tokenizer, texts: Sequence[str], *, label: int = 1, max_length: int = 64,
            batch_size: int = 64):
    """P(`label`) of each text by a trained sequence classifier, one number per text (a
    numpy array), read in batches of `batch_size`."""
    dev = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt").to(dev)
        out.append(model(**enc).logits.softmax(-1)[:, label].float().cpu())
    return torch.cat(out).double().numpy()


def sorted_by_length(rows):
    """The tokenised `rows` in order of length (shortest first). Accuracy over a set does
    not depend on its order, but the cost of scoring it does: consecutive rows of similar
    length pad to their own longest, so every validation pass of `fit_classifier` runs on
    fewer pad tokens (as `protocol.score` does for the test rows)."""
    if rows is None or len(rows) == 0:
        return rows
    try:
        lengths = row_lengths(rows)
    except ValueError:            # not tokenised rows: nothing to sort by
        return rows
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    if order == list(range(len(lengths))):
        return rows
    return rows.select(order) if hasattr(rows, "select") else [rows[i] for i in order]


# --------------------------------------------------------------------------- the target task
# Notebooks 04-09 compare strategies on one task, so they share its evaluation subsets,
# the training recipe and the learning rates: a difference between two notebooks'
# numbers is then a difference between strategies, not between set-ups.
LEARNING_RATES = {   # strategy -> (rate for encoders with hidden size >= 256, for smaller ones)
    "probe": (1e-2, 3e-2),     # only a fresh linear layer learns: large steps are safe
    "full_ft": (1e-4, 3e-4),   # every weight, small steps: bend the encoder, do not break it
    "scratch": (3e-4, 1e-3),   # random weights: a pre-training rate (notebook 03 trains the
                               # small shape at 1e-3), with its own recipe (`recipe`)
}


def target_task(tokenizer, profile: str = "quick", *, max_length: int = 64) -> dict:
    """The course's target task, tokenised: {"train", "validation", "test"}, exactly as
    `labkit.protocol.target_task` gives it (the test split is the protocol's fixed test
    set, the same rows for every notebook, strategy and seed)."""

    return protocol_target_task(tokenizer, profile, max_length=max_length)


def recipe(profile: str = "quick", strategy: str = "full_ft") -> dict:
    """The shared `fit_classifier` options for the target task: batch 8, three passes
    over the labels but at least 80 steps in `quick` (200 in `full`), since 128 labels
    are only 16 steps per pass; batches are grouped by length and the weights scored are
    chosen by the protocol's one rule (`protocol.fit_options`: the best of four
    validation checkpoints).

    `strategy="scratch"` gives the recipe of a model trained from random weights, which
    needs more than a fine-tuning run: 150 steps of 32 (1,000 in `full`) whatever the
    budget (2.4 passes over 2,000 labels), 10% warmup, with
    `learning_rate(model, "scratch")`. Give a pre-trained model the same recipe (at its
    own rate) to compare the two starts on equal steps."""
    from .profile import choose
    from .protocol import fit_options

    if strategy == "scratch":
        return dict(batch_size=32, epochs=0, warmup=0.1,
                    min_steps=choose(profile, smoke=2, quick=150, full=1000), **fit_options(profile))
    return dict(batch_size=8, epochs=3, min_steps=choose(profile, smoke=2, quick=80, full=200),
                **fit_options(profile))


def learning_rate(model, strategy: str) -> float:
    """The shared learning rate of `strategy` ("probe", "full_ft", "scratch") for
    `model`; small encoders (hidden size < 256) take larger steps."""
    if strategy not in LEARNING_RATES:
        raise KeyError(f"no learning rate for {strategy!r}; known: {', '.join(LEARNING_RATES)}")
    large, small = LEARNING_RATES[strategy]
    return small if model.config.hidden_size < 256 else large


# --------------------------------------------------------------------------- curves
def learning_curve(make_model: Callable[[int], Any], pool, budgets: Sequence[int],
                   seeds: Sequence[int], *, strategy: str, validation, test,
                   on_result: Callable[[dict], None] | None = None,
                   keep_history: bool = False, **train_kwargs):
    """Fine-tune a fresh model for every label budget x seed and return one row each:
    {strategy, n, seed, accuracy, validation_accuracy, seconds, steps, trainable, correct}
    (`correct`: one bool per test row, what `protocol.log_accuracy` takes).

    `make_model(seed)` returns a new model (e.g. `lambda s: build_classifier(base,
    seed=s)[0]`); the budget is `data.sample(pool, n, seed=seed)`, so every strategy run
    with the same seeds sees the same examples. A budget of `len(pool)` or more means
    "all labels". `on_result(row)` is called after each run (e.g. to log to the ledger).
    `keep_history=True` adds each run's `History` to its row (key "history").
    """
    from .data import sample

    if not budgets or not seeds:
        raise ValueError("learning_curve needs at least one budget and one seed")
    rows = []
    for n in budgets:
        for seed in seeds:
            rows_n = pool if n >= len(pool) else sample(pool, n, seed=seed)
            model = make_model(seed)
            res = fit_classifier(model, rows_n, validation=validation, test=test, seed=seed,
                                 desc=f"{strategy} n={len(rows_n)} seed={seed}",
                                 keep_model=False, **train_kwargs)
            row = {"strategy": strategy, "n": len(rows_n), "seed": seed,
                   "accuracy": res.accuracy, "validation_accuracy": res.validation_accuracy,
                   "seconds": round(res.seconds, 1), "steps": res.history.steps,
                   "trainable": res.trainable, "correct": res.correct}
            if keep_history:
                row["history"] = res.history
            rows.append(row)
            if on_result:
                on_result(row)
            del model, res
    return rows


def summarize(rows: list[dict], key: str = "accuracy") -> list[dict]:
    """Mean and sample standard deviation of `key` over seeds, per (strategy, n)."""
    groups: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        groups.setdefault((r["strategy"], r["n"]), []).append(r[key])
    out = []
    for (strategy, n), values in groups.items():
        mean, std = mean_std(values)
        out.append({"strategy": strategy, "n": n, "mean": mean, "std": std,
                    "runs": len(values)})
    return out


def plot_curve(rows: list[dict], ax=None, key: str = "accuracy", title: str | None = None):
    """Accuracy against label budget (log scale), one line per strategy: the mean over
    seeds, a band of +- one standard deviation, and each seed as a dot."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4))
    summary = summarize(rows, key)
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        s = sorted((r for r in summary if r["strategy"] == strategy), key=lambda r: r["n"])
        ns = [r["n"] for r in s]
        means = [r["mean"] for r in s]
        stds = [r["std"] for r in s]
        line, = ax.plot(ns, means, "o-", label=strategy)
        ax.fill_between(ns, [m - d for m, d in zip(means, stds)],
                        [m + d for m, d in zip(means, stds)], color=line.get_color(), alpha=0.15)
        dots = [r for r in rows if r["strategy"] == strategy]
        ax.scatter([r["n"] for r in dots], [r[key] for r in dots], s=10,
                   color=line.get_color(), alpha=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training examples")
    ax.set_ylabel(f"test {key}")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax
