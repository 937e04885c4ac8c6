"""The one training loop of the course: `fit()` and `evaluate()`.

Every notebook trains through `fit`. It is plain PyTorch, and it owns the chores that
each hand-written loop gets subtly wrong:

* device placement and mixed precision on CUDA (bf16 on compute capability 8.0 and
  newer, fp16 + GradScaler on older GPUs such as the T4 and V100; fp32 on the CPU),
* gradient accumulation (`batch_size` examples per optimizer step, fed through the model
  in micro-batches of `micro_batch_size`), exact for any loss (see "the loss" below),
* gradient clipping; warmup then linear or cosine decay of the learning rate,
* evaluation every N steps, the best weights kept, early stopping,
* checkpoint + resume (an interrupted run resumed ends with the same weights as an
  uninterrupted one on the CPU, random collators such as the MLM masker included),
* rollback to the last good snapshot when the loss is NaN/inf or spikes, skipping the
  batches that caused it and keeping the step budget (the recipe large language models
  use for stability); a run that keeps diverging ends with an error,
* CUDA out-of-memory: halve the micro-batch, keep the effective batch, say so once,
* data-parallel training when `torch.distributed` is initialised (torchrun, accelerate
  launch; see `labkit.distributed`),
* a progress bar and a live loss curve when someone is watching, silence when headless.

The loss. A batch is whatever `collate_fn` returns (default: torch's `default_collate`).
Its loss is `loss_fn(model, batch)`, by default `model(**batch).loss` (the Hugging Face
convention); `loss_fn` may return the loss or `(loss, outputs)`. The loss is a *mean*,
and `fit` must know over how many items, to weigh micro-batches (and ranks) exactly:
that is `loss_weight(batch)`, the number of `labels` that are not -100 when the batch has
a `labels` tensor (masked tokens for a masked LM, target words for a translator, one per
example for a classifier), else the number of examples. The gradient of a step is then
the gradient of the mean over the whole batch, however the batch is cut.

Randomness. `fit(seed=...)` alone makes a run repeatable: the loop runs with torch's,
Python's and NumPy's generators seeded from `seed` (plus the rank), and gives the caller's
generator states back when it returns. No function here reseeds a global generator.

The loop in `fit` reads top to bottom; the pieces it calls are named after what they do:
`TrainState` (where a run stands), `batch_stream` (which batch comes next),
`train_step` (one optimizer step), `evaluate_and_keep_best`, `take_snapshot` /
`roll_back`, and `save_checkpoint` / `load_checkpoint`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
import os
import random
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import default_collate

from . import device as device_lib
from . import distributed as dist
from .progress import LiveCurve, bar, in_notebook, is_headless

OutOfMemoryError = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
IGNORE_INDEX = -100   # the label the losses skip (padding, unmasked tokens)
MONITORS = {"loss": False, "accuracy": True}   # what evaluate() reports: higher is better?


# --------------------------------------------------------------------------- history
@dataclass
class History:
    """What happened during `fit`: losses, evaluations, events. `plot()` draws it."""

    train: list[dict] = field(default_factory=list)   # {"step", "loss", "lr"}
    evals: list[dict] = field(default_factory=list)   # {"step", "loss", "accuracy", ...}
    events: list[str] = field(default_factory=list)   # rollbacks, OOM backoffs, early stop
    monitor: str = "loss"
    best_step: int | None = None
    best_score: float | None = None
    steps: int = 0
    examples: int = 0
    seconds: float = 0.0

    def best(self, key: str | None = None) -> float | None:
        """The value of `key` (default: the monitored metric) at the best evaluation."""
        key = key or self.monitor
        for row in self.evals:
            if row["step"] == self.best_step:
                return row.get(key)
        return None

    def final_loss(self, window: int = 20) -> float:
        """Mean training loss over the last `window` logged steps."""
        tail = [r["loss"] for r in self.train[-window:]]
        return float(np.mean(tail)) if tail else float("nan")

    def to_dict(self) -> dict:
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items()}

    def plot(self, ax=None, smooth: int = 10):
        """Training loss (raw and smoothed), evaluation loss and the monitored metric."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.2))
        steps = [r["step"] for r in self.train]
        losses = [r["loss"] for r in self.train]
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, label="train loss")
        if len(losses) >= smooth:
            kernel = np.ones(smooth) / smooth
            ax.plot(steps[smooth - 1:], np.convolve(losses, kernel, mode="valid"),
                    color="tab:blue", label=f"train loss ({smooth}-step mean)")
        if self.evals and "loss" in self.evals[0]:
            ax.plot([r["step"] for r in self.evals], [r["loss"] for r in self.evals],
                    "o-", color="tab:orange", label="validation loss")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        if self.monitor != "loss" and self.evals and self.monitor in self.evals[0]:
            ax2 = ax.twinx()
            ax2.plot([r["step"] for r in self.evals], [r[self.monitor] for r in self.evals],
                     "s--", color="tab:green", label=f"validation {self.monitor}")
            ax2.set_ylabel(self.monitor)
            ax2.legend(loc="center right")
        ax.legend(loc="upper right")
        return ax


# --------------------------------------------------------------------------- batches
def to_device(batch: Any, dev: torch.device) -> Any:
    """Move every tensor in a (nested) batch to `dev`."""
    if torch.is_tensor(batch):
        return batch.to(dev, non_blocking=True)
    if isinstance(batch, Mapping):    # dict, or transformers' BatchEncoding
        return {k: to_device(v, dev) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, dev) for v in batch)
    return batch


def _batch_len(batch: Any) -> int:
    """How many examples a batch holds: the first dimension of its first tensor (a list
    of strings, say of raw texts, counts by its length)."""
    if torch.is_tensor(batch):
        return int(batch.shape[0]) if batch.ndim else 1
    fields = list(batch.values()) if isinstance(batch, Mapping) else batch
    if isinstance(fields, (list, tuple)):
        for v in fields:
            if torch.is_tensor(v) or isinstance(v, Mapping):
                return _batch_len(v)
        lists = [v for v in fields if isinstance(v, (list, tuple))]
        if isinstance(batch, Mapping) and lists:
            return len(lists[0])
        if not isinstance(batch, Mapping) and fields:
            return len(fields)
    raise TypeError(f"cannot tell how many examples this batch holds ({type(batch).__name__}"
                    " with no tensor in it): make collate_fn return tensors, e.g. a dict "
                    "of tensors")


def _slice(batch: Any, start, stop, step=None) -> Any:
    """Examples start:stop:step of a batch (tensors and per-example lists are cut)."""
    if torch.is_tensor(batch):
        return batch[start:stop:step]
    if isinstance(batch, Mapping):
        return {k: _slice(v, start, stop, step) if isinstance(v, Mapping) or torch.is_tensor(v)
                else v[start:stop:step] if isinstance(v, (list, tuple)) else v
                for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_slice(v, start, stop, step) for v in batch)
    return batch


def loss_weight(batch: Any) -> int:
    """How many items a batch's mean loss averages over: the `labels` that are not -100
    when the batch has an integer `labels` tensor, else the number of examples."""
    labels = batch.get("labels") if isinstance(batch, Mapping) else None
    if torch.is_tensor(labels) and labels.ndim and not labels.is_floating_point():
        return int((labels != IGNORE_INDEX).sum())
    return _batch_len(batch)


def default_loss(model, batch):
    """The Hugging Face convention: the model computes its own loss from `labels`."""
    out = model(**batch) if isinstance(batch, Mapping) else model(*batch)
    loss = out.get("loss") if isinstance(out, Mapping) else getattr(out, "loss", None)
    if loss is None:
        raise ValueError("the model returned no loss: pass `labels` in the batch or give "
                         "fit/evaluate a loss_fn(model, batch) that returns the loss")
    return loss, out


def _loss_and_outputs(loss_fn, model, batch):
    result = loss_fn(model, batch)
    return result if isinstance(result, tuple) else (result, None)


def _indexable(data) -> bool:
    return hasattr(data, "__getitem__") and hasattr(data, "__len__")


def _order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of epoch `epoch`: depends only on (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def batches(dataset, batch_size: int, *, collate_fn=None, shuffle=False, seed=0, epoch=0):
    """Yield collated batches. Shuffled order depends only on (seed, epoch): repeatable.

    `dataset` is anything indexable with a length (a list, a torch Dataset, a datasets
    Dataset), or an iterable of ready-made batches (e.g. a DataLoader), passed through.
    """
    if not _indexable(dataset):
        yield from dataset
        return
    collate_fn = collate_fn or default_collate
    order = _order(len(dataset), seed, epoch) if shuffle else range(len(dataset))
    for start in range(0, len(dataset), batch_size):
        yield collate_fn([dataset[i] for i in order[start:start + batch_size]])


def _global_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The example indices of each optimizer step of an epoch. Under data parallelism a
    last batch too small to give every rank an example is dropped."""
    order = _order(n, seed, epoch)
    chunks = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    return [c for c in chunks if len(c) >= dist.world_size()]


def steps_per_epoch(data, batch_size: int) -> int | None:
    """Optimizer steps in one pass over `data`; None when it has no length."""
    if _indexable(data):
        n = len(data)
        full, rest = divmod(n, batch_size)
        return full + (1 if rest >= dist.world_size() else 0) if rest else full
    if hasattr(data, "__len__"):      # ready-made batches, e.g. a DataLoader
        return len(data)
    return None


def batch_stream(data, batch_size: int, collate_fn, seed: int, epoch: int, index: int):
    """Yield `(epoch, index, batch)` from position (epoch, index) on, epoch after epoch,
    for as long as the loop asks (a rollback consumes batches without taking steps).

    Indexable data is shuffled per epoch; this rank collates only its share of each
    batch, and the batches before `index` (already trained on before a resume) are
    skipped by index, never collated, so a random collator draws exactly the random
    numbers it would have drawn without the interruption. Ready-made batches (a
    DataLoader) are cut to this rank's share; skipping them means iterating them.
    """
    collate_fn = collate_fn or default_collate
    while True:
        produced = 0
        if _indexable(data):
            chunks = _global_batches(len(data), batch_size, seed, epoch)
            for i in range(index, len(chunks)):
                produced += 1
                yield epoch, i, collate_fn([data[j] for j in dist.shard(chunks[i])])
        else:
            for i, batch in enumerate(data):
                if i >= index:
                    produced += 1
                    share = _slice(batch, dist.rank(), None, dist.world_size())
                    yield epoch, i, share if dist.active() else batch
        if produced == 0 and index == 0:
            raise ValueError(
                f"train_data gave no batches in epoch {epoch}: a one-shot iterator (a "
                "generator) is used up after one pass. Pass a list, a Dataset or a "
                "DataLoader, which can be iterated again, or lower max_steps")
        epoch, index = epoch + 1, 0


# --------------------------------------------------------------------------- schedule
def lr_lambda(total_steps: int, warmup_steps: int, schedule: str = "linear",
              min_ratio: float = 0.0) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warmup, then linear/cosine decay (or constant)."""
    if schedule not in {"linear", "cosine", "constant"}:
        raise ValueError(f"unknown schedule {schedule!r}; use 'linear', 'cosine' or 'constant'")

    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        decay = 1 - progress if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
        return min_ratio + (1 - min_ratio) * decay

    return f


def warmup_steps(warmup: float | int, max_steps: int) -> int:
    """`warmup` in optimizer steps. The type says the unit: a float is a fraction of the
    run (0.06 = the first 6% of the steps, 1.0 = all of them), an int is a number of
    steps (1 = one step)."""
    if isinstance(warmup, bool) or not isinstance(warmup, numbers.Real):
        raise TypeError(f"warmup must be a float fraction or an int number of steps, "
                        f"not {warmup!r}")
    if isinstance(warmup, numbers.Integral):
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0 steps, got {warmup}")
        return int(warmup)
    if not 0.0 <= warmup <= 1.0:
        raise ValueError(f"warmup={warmup}: a float is a fraction of the run, between 0.0 "
                         f"and 1.0; for a number of steps pass an int (warmup={int(warmup)})")
    return int(warmup * max_steps)


# --------------------------------------------------------------------------- random state
def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                      *np_state[2:]),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def own_random_streams(seed: int):
    """Run the body with torch's (every device), Python's and NumPy's generators seeded
    from `seed`; give the caller's generator states back afterwards."""
    saved = _rng_state()
    try:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        yield
    finally:
        _set_rng_state(saved)


# --------------------------------------------------------------------------- evaluate
@torch.no_grad()
def evaluate(model, data, *, loss_fn=None, collate_fn=None, batch_size: int = 64,
             device=None, precision: str = "auto", seed: int = 0) -> dict:
    """Mean loss over `data` (over its labelled items, as `fit` weighs them) and, when
    the outputs have logits and the batch has labels, accuracy (positions labelled -100
    are ignored, so it is masked-token accuracy for a masked LM).

    Random choices in `collate_fn` (e.g. masking) draw from torch's CPU generator seeded
    with `seed` inside a fork of it, so every evaluation sees the same masks and the
    caller's random streams are untouched. Under data parallelism each rank scores its
    share of `data` and the sums are added up, so call it on every rank.
    """
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    prec = device_lib.precision(dev) if precision == "auto" else precision
    dtype = device_lib.autocast_dtype(prec)
    loss_fn = loss_fn or default_loss
    if dist.active() and _indexable(data):
        data = [data[i] for i in dist.shard(range(len(data)))]
    was_training = model.training
    model.eval()
    loss_sum, weight, n, correct, counted = 0.0, 0, 0, 0, 0
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        for batch in batches(data, batch_size, collate_fn=collate_fn):
            w, n = loss_weight(batch), n + _batch_len(batch)
            batch = to_device(batch, dev)
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                loss, out = _loss_and_outputs(loss_fn, model, batch)
            if w:
                loss_sum, weight = loss_sum + float(loss) * w, weight + w
            logits = getattr(out, "logits", None) if out is not None else None
            labels = batch.get("labels") if isinstance(batch, Mapping) else None
            if logits is not None and labels is not None and logits.shape[:-1] == labels.shape:
                mask = labels != IGNORE_INDEX
                correct += int((logits.argmax(-1) == labels)[mask].sum())
                counted += int(mask.sum())
    model.train(was_training)
    loss_sum, weight, n, correct, counted = dist.total([loss_sum, weight, n, correct, counted], dev)
    if n == 0:
        raise ValueError("evaluate() got no data: the evaluation split is empty")
    result = {"loss": loss_sum / weight if weight else float("nan"), "n": int(n)}
    if counted:
        result["accuracy"] = correct / counted
    return result


# --------------------------------------------------------------------------- the pieces
@dataclass
class Parts:
    """What a training step works with."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    loss_fn: Callable
    dev: torch.device
    dtype: torch.dtype | None
    clip: float | None

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        self.model.load_state_dict(s["model"])
        self.optimizer.load_state_dict(s["optimizer"])
        self.scheduler.load_state_dict(s["scheduler"])
        self.scaler.load_state_dict(s["scaler"])


@dataclass
class TrainState:
    """Where a run stands: everything a checkpoint holds besides the `Parts`."""

    history: History
    step: int = 0                  # optimizer steps taken
    epoch: int = 0                 # the next batch is batch `index` of epoch `epoch`
    index: int = 0
    micro: int | None = None       # micro-batch size (None: whole batches)
    recent: list[float] = field(default_factory=list)   # last 32 losses, for spikes
    bad_evals: int = 0             # evaluations since the best one
    rollbacks: int = 0
    stopped: bool = False          # stopped early: a resumed run does not go on
    best_state: dict | None = None   # the best weights so far (CPU copy)

    def say(self, msg: str) -> None:
        """Record an event; rank 0 also prints it."""
        self.history.events.append(msg)
        if dist.is_main():
            print(msg)


def _cpu_copy(state):
    """A deep copy of a state dict on the CPU (for snapshots and the best weights)."""
    if torch.is_tensor(state):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: _cpu_copy(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_cpu_copy(v) for v in state)
    return copy.deepcopy(state)


def accumulate_gradients(parts: Parts, batch, micro: int | None, total_weight: float):
    """Forward and backward over the micro-batches of this rank's `batch`. Each
    micro-batch's mean loss is scaled by its share of the items of the global batch
    (`loss_weight` / `total_weight`), so the summed gradient is that of the mean over
    the global batch however it is cut. Returns (sum of loss x items, all finite)."""
    parts.optimizer.zero_grad(set_to_none=True)
    size = _batch_len(batch)
    chunk = micro or size
    loss_sum = 0.0
    for start in range(0, size, chunk):
        piece = _slice(batch, start, start + chunk)
        w = loss_weight(piece)
        if w == 0:
            continue
        piece = to_device(piece, parts.dev)
        with torch.autocast(parts.dev.type, dtype=parts.dtype, enabled=parts.dtype is not None):
            loss, _ = _loss_and_outputs(parts.loss_fn, parts.model, piece)
        parts.scaler.scale(loss * (w / total_weight)).backward()
        loss = float(loss.detach())
        if not math.isfinite(loss):
            return loss, False
        loss_sum += loss * w
    return loss_sum, True


def train_step(parts: Parts, batch, state: TrainState) -> float | None:
    """One optimizer step on `batch`: gradients accumulated over micro-batches (the
    micro-batch halved on out-of-memory), summed over ranks, clipped, applied. Returns
    the loss of the global batch, or NaN (no update) if it was not finite on any rank,
    or None when the batch has no labelled item at all. Every rank takes the same
    decisions, from the same all-reduced numbers."""
    (total_weight,) = dist.total([loss_weight(batch)], parts.dev)
    if total_weight == 0:
        state.say(f"step {state.step}: a batch with no labelled item skipped")
        return None
    while True:
        try:
            loss_sum, finite = accumulate_gradients(parts, batch, state.micro, total_weight)
            oom = False
        except OutOfMemoryError:
            loss_sum, finite, oom = 0.0, True, True
        loss_sum, bad, oom = dist.total([loss_sum, float(not finite), float(oom)], parts.dev)
        if not oom:
            break
        chunk = state.micro or _batch_len(batch)
        if chunk == 1:
            raise OutOfMemoryError("out of memory with micro-batches of one example: use a "
                                   "smaller model, shorter sequences or a bigger GPU")
        state.micro = max(1, chunk // 2)
        parts.optimizer.zero_grad(set_to_none=True)
        if parts.dev.type == "cuda":
            torch.cuda.empty_cache()
        state.say(f"out of memory at step {state.step}: micro-batch halved to "
                  f"{state.micro}, effective batch kept at {_batch_len(batch)} by accumulation")
    if bad:
        parts.optimizer.zero_grad(set_to_none=True)
        return float("nan")
    params = [p for p in parts.model.parameters() if p.requires_grad]
    dist.sum_gradients(params)
    if parts.clip:
        parts.scaler.unscale_(parts.optimizer)
        torch.nn.utils.clip_grad_norm_(params, parts.clip)
    parts.scaler.step(parts.optimizer)
    parts.scaler.update()
    parts.scheduler.step()
    return loss_sum / total_weight


def judge(loss: float, recent: list[float], spike_factor: float | None,
          spike_min_delta: float) -> str | None:
    """What is wrong with this step's loss ('NaN/inf loss', 'loss spike 12.3'), if
    anything. A spike is `spike_factor` times the median of the recent losses and at
    least `spike_min_delta` above it (needs 10 recent losses)."""
    if not math.isfinite(loss):
        return "NaN/inf loss"
    if spike_factor is None or len(recent) < 10:
        return None
    median = statistics.median(recent)
    if loss > spike_factor * median and loss - median > spike_min_delta:
        return f"loss spike {loss:.3g}"
    return None


def take_snapshot(parts: Parts, state: TrainState) -> dict:
    """What a rollback returns to: a CPU copy of the parts and the state's progress."""
    h = state.history
    return {"parts": _cpu_copy(parts.state_dict()), "step": state.step,
            "recent": list(state.recent), "bad_evals": state.bad_evals,
            "best_state": state.best_state, "best": (h.best_step, h.best_score),
            "rows": (len(h.train), len(h.evals)), "examples": h.examples}


def roll_back(parts: Parts, state: TrainState, snapshot: dict, what: str) -> None:
    """Return to `snapshot`: weights, optimizer, schedule and the history after it are
    undone; the data position is not (the batches that caused trouble are skipped), so
    the run still takes its full number of steps."""
    parts.load_state_dict(snapshot["parts"])
    parts.optimizer.zero_grad(set_to_none=True)
    msg = (f"{what} at step {state.step}: rolled back to step {snapshot['step']}, "
           "going on with the next batches")
    state.step, state.recent = snapshot["step"], list(snapshot["recent"])
    state.bad_evals, state.best_state = snapshot["bad_evals"], snapshot["best_state"]
    h = state.history
    h.best_step, h.best_score = snapshot["best"]
    del h.train[snapshot["rows"][0]:], h.evals[snapshot["rows"][1]:]
    h.examples = snapshot["examples"]
    state.say(msg)


def evaluate_and_keep_best(parts: Parts, state: TrainState, eval_data, *, monitor: str,
                           patience: int | None, restore_best: bool, **eval_kwargs) -> dict:
    """Evaluate, log the row, keep the weights if `monitor` improved (a NaN never does),
    and stop the run after `patience` evaluations without improvement."""
    h = state.history
    row = {"step": state.step, **evaluate(parts.model, eval_data, loss_fn=parts.loss_fn,
                                          device=parts.dev, **eval_kwargs)}
    h.evals.append(row)
    if monitor not in row:
        raise ValueError(f"monitor={monitor!r}, but this evaluation reports only "
                         f"{sorted(row)}: the model's outputs need logits and the batches "
                         "labels for accuracy, or use monitor='loss'")
    score = row[monitor]
    better = MONITORS[monitor]
    if math.isfinite(score) and (h.best_score is None or
                                 (score > h.best_score if better else score < h.best_score)):
        h.best_score, h.best_step, state.bad_evals = score, state.step, 0
        if restore_best:
            state.best_state = _cpu_copy(parts.model.state_dict())
    else:
        state.bad_evals += 1
    if patience is not None and state.bad_evals >= patience:
        state.stopped = True
        h.events.append(f"early stop at step {state.step}: no better {monitor} "
                        f"for {patience} evaluations")
    return row


def _save_atomic(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(path: Path, parts: Parts, state: TrainState) -> None:
    """Write `path` (rank 0 alone, atomically) with the parts, the state and every
    rank's random generators."""
    rng = dist.gather(_rng_state())
    if dist.is_main():
        fields = {k: v for k, v in state.__dict__.items() if k != "history"}
        _save_atomic({"parts": parts.state_dict(), "state": fields,
                      "history": state.history.to_dict(), "rng": rng}, path)
    dist.barrier()


def load_checkpoint(path: Path, parts: Parts, state: TrainState) -> None:
    """Restore what `save_checkpoint` wrote (each rank its own random generators)."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if len(saved["rng"]) != dist.world_size():
        raise ValueError(f"{path} was written by {len(saved['rng'])} processes and this "
                         f"run has {dist.world_size()}: resume with as many processes")
    parts.load_state_dict(saved["parts"])
    for k, v in saved["state"].items():
        setattr(state, k, v)
    state.history = History(**saved["history"])
    _set_rng_state(saved["rng"][dist.rank()])


class Watch:
    """The progress bar and live loss curve, shown by rank 0 only."""

    def __init__(self, desc: str, total: int, initial: int):
        self.on = dist.is_main()
        self.bar = bar(total=total, initial=initial, desc=desc) if self.on else None
        self.curve = LiveCurve(desc) if self.on else None

    def train_loss(self, step: int, loss: float) -> None:
        if self.on:
            self.curve.add("train loss", step, loss)
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}")

    def validation(self, monitor: str, step: int, value: float) -> None:
        if self.on:
            self.curve.add(f"validation {monitor}", step, value)

    def rewind(self, step: int) -> None:
        if self.on:
            self.bar.n = step

    def close(self) -> None:
        if self.on:
            self.bar.close()
            self.curve.close()


def _default_optimizer(model, lr, weight_decay, betas):
    """AdamW, with no weight decay on biases and normalisation weights (ndim < 2)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2],
                               "weight_decay": weight_decay},
                              {"params": [p for p in params if p.ndim < 2],
                               "weight_decay": 0.0}], lr=lr, betas=betas)


# --------------------------------------------------------------------------- fit
def fit(model, train_data, *, eval_data=None, loss_fn=None, collate_fn=None,
        epochs: int = 1, max_steps: int | None = None,
        batch_size: int = 32, micro_batch_size: int | None = None,
        lr: float = 5e-5, weight_decay: float = 0.01, betas=(0.9, 0.999), optimizer=None,
        warmup: float | int = 0.06, schedule: str = "linear", min_lr_ratio: float = 0.0,
        clip: float | None = 1.0,
        eval_every: int | None = None, eval_batch_size: int = 64, monitor: str = "loss",
        patience: int | None = None, restore_best: bool = True,
        checkpoint_dir: str | Path | None = None, checkpoint_every: int = 100,
        resume: bool = False,
        rollback: bool = True, spike_factor: float | None = 4.0, spike_min_delta: float = 1.0,
        snapshot_every: int = 25, max_rollbacks: int = 5,
        precision: str = "auto", device=None, seed: int = 0,
        desc: str = "fit", log_every: int = 1) -> History:
    """Train `model` on `train_data`; return a `History`.

    The essentials: `epochs` (or `max_steps` optimizer steps), `batch_size` examples per
    optimizer step, `lr` for AdamW (or your own `optimizer`), `warmup` (a float is a
    fraction of the steps, an int a number of steps) then `schedule` decay. With
    `eval_data`, evaluate every `eval_every` steps (default: once per epoch) and at the
    end, keep the best weights by `monitor` ('loss' or 'accuracy') and stop after
    `patience` evaluations without improvement. With `checkpoint_dir`, save every
    `checkpoint_every` steps and, with `resume=True`, carry on from the last checkpoint
    there. A rollback skips the bad batches but not the steps: the run takes `max_steps`
    steps, reading into the next epoch if it must; after `max_rollbacks` it gives up
    with a FloatingPointError.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if hasattr(train_data, "__len__") and len(train_data) == 0:
        raise ValueError("fit() got an empty training set: check the split and any filters")
    if monitor not in MONITORS:
        raise ValueError(f"monitor={monitor!r}: evaluate() reports "
                         f"{' or '.join(map(repr, MONITORS))}; choose one of them")
    started = time.perf_counter()
    dev = dist.device(torch.device(device) if device is not None else device_lib.pick())
    prec = device_lib.precision(dev) if precision == "auto" else precision
    per_epoch = steps_per_epoch(train_data, batch_size)
    if max_steps is None:
        if per_epoch is None:
            raise ValueError("train_data has no length (an iterator?): give fit() max_steps")
        max_steps = epochs * per_epoch
    eval_every = eval_every or per_epoch or max_steps
    model.to(dev)
    model.train()
    dist.broadcast_weights(model)
    optimizer = optimizer or _default_optimizer(model, lr, weight_decay, betas)
    schedule_fn = lr_lambda(max_steps, warmup_steps(warmup, max_steps), schedule, min_lr_ratio)
    parts = Parts(model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_fn),
                  torch.amp.GradScaler(dev.type, enabled=(prec == "fp16")),
                  loss_fn or default_loss, dev, device_lib.autocast_dtype(prec), clip)
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    if ckpt and dist.is_main():
        ckpt.parent.mkdir(parents=True, exist_ok=True)

    with own_random_streams(seed + dist.rank()):
        state = TrainState(history=History(monitor=monitor), micro=micro_batch_size)
        if resume and ckpt and ckpt.exists():
            load_checkpoint(ckpt, parts, state)
            started -= state.history.seconds
            state.history.events.append(f"resumed from step {state.step}")
        elif resume:
            state.history.events.append("resume=True but no checkpoint found: starting fresh")
        hist = state.history
        snapshot = take_snapshot(parts, state) if rollback else None
        stream = batch_stream(train_data, batch_size, collate_fn, seed, state.epoch, state.index)
        watch = Watch(desc, max_steps, state.step)

        while state.step < max_steps and not state.stopped:
            state.epoch, index, batch = next(stream)
            state.index = index + 1
            loss = train_step(parts, batch, state)
            if loss is None:                       # nothing labelled in this batch
                continue
            problem = judge(loss, state.recent, spike_factor, spike_min_delta)
            if problem and not rollback and not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at step {state.step} (rollback=False)")
            if problem and rollback:
                state.rollbacks += 1
                if state.rollbacks > max_rollbacks:
                    raise FloatingPointError(
                        f"training diverged: {problem} at step {state.step} after "
                        f"{max_rollbacks} rollbacks: lower the learning rate, check the data "
                        "for empty or broken rows, or use precision='fp32'")
                roll_back(parts, state, snapshot, problem)
                watch.rewind(state.step)
                continue

            state.step += 1
            hist.examples += _batch_len(batch) * dist.world_size()
            state.recent = (state.recent + [loss])[-32:]
            if state.step % log_every == 0:
                hist.train.append({"step": state.step, "loss": loss,
                                   "lr": optimizer.param_groups[0]["lr"]})
            watch.train_loss(state.step, loss)
            if eval_data is not None and (state.step % eval_every == 0
                                          or state.step == max_steps):
                row = evaluate_and_keep_best(
                    parts, state, eval_data, monitor=monitor, patience=patience,
                    restore_best=restore_best, collate_fn=collate_fn,
                    batch_size=eval_batch_size, precision=prec)
                watch.validation(monitor, state.step, row[monitor])
            if rollback and state.step % snapshot_every == 0:
                snapshot = take_snapshot(parts, state)
            hist.steps, hist.seconds = state.step, time.perf_counter() - started
            if ckpt and (state.step % checkpoint_every == 0 or state.stopped
                         or state.step == max_steps):
                save_checkpoint(ckpt, parts, state)
        watch.close()
    return _finish(parts, state, desc, started, restore_best)


def _finish(parts: Parts, state: TrainState, desc: str, started: float,
            restore_best: bool) -> History:
    """Put the best weights back, close the books, and say how it went."""
    hist = state.history
    if restore_best and state.best_state is not None:
        parts.model.load_state_dict(state.best_state)
        hist.events.append(f"restored best weights from step {hist.best_step} "
                           f"({hist.monitor}={hist.best_score:.4g})")
    hist.steps, hist.seconds = state.step, time.perf_counter() - started
    if dist.is_main() and (is_headless() or not in_notebook()):
        best = (f", best {hist.monitor} {hist.best_score:.4g} @ step {hist.best_step}"
                if hist.best_score is not None else "")
        print(f"{desc}: {state.step} steps, {hist.seconds:.1f}s, "
              f"final train loss {hist.final_loss():.4g}{best}")
    return hist
