"""The one training loop of the course: `fit()` and `evaluate()`.

Every notebook trains through `fit`. It is plain PyTorch, and it owns the chores that
each hand-written loop gets subtly wrong:

* device placement and mixed precision on CUDA (bf16 on compute capability 8.0 and
  newer, fp16 + GradScaler on older GPUs such as the T4 and V100; fp32 on the CPU),
* gradient accumulation (`batch_size` examples per optimizer step, fed through the model
  in micro-batches of `micro_batch_size`), exact for any loss that says its denominator
  (the batch-and-loss contract, `labkit.batching`),
* gradient clipping; warmup then linear or cosine decay of the learning rate; AdamW's
  fused implementation where the device has one,
* evaluation every N steps, the best weights kept, early stopping,
* checkpoint + resume (`labkit.checkpoint`; an interrupted run resumed ends with the same
  weights as an uninterrupted one on the CPU, random collators such as the MLM masker
  included),
* a step whose loss or gradient norm is not finite is skipped and counted; several bad
  steps in a row, or a loss spike, roll back to the last snapshot, skipping the batches
  that caused it and keeping the step budget (the recipe large language models use for
  stability); a run that keeps diverging ends with an error,
* CUDA out-of-memory: halve the micro-batch, keep the effective batch, say so once,
* data-parallel training when `torch.distributed` is initialised (torchrun, accelerate
  launch; see `labkit.distributed`),
* a progress bar and a live loss curve when someone is watching, silence when headless.

Randomness: `fit(seed=...)` alone makes a run repeatable (`labkit.rng`).

The loop in `fit` reads top to bottom; `train_step` is one optimizer step (zero_grad,
forward, backward, clip, step), and the robustness around it is named after what it does:
`judge`, `take_snapshot` / `restore_snapshot`, `evaluate_and_keep_best`,
`save_checkpoint` / `load_checkpoint`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import default_collate  # noqa: F401  (re-exported)

from . import device as device_lib
from . import distributed as dist
from .batching import (IGNORE_INDEX, LossSum, batch_len, batch_stream, batches,  # noqa: F401
                       check_examples,
                       default_loss, indexable, is_causal_lm, loss_terms, loss_weight,
                       mean_over, row_lengths, shard_loader, slice_batch, steps_per_epoch,
                       to_device)
from .checkpoint import (exists as checkpoint_exists, load_checkpoint, restore_snapshot,
                         save_checkpoint, take_snapshot, trainable_state, load_trainable_state)
from .progress import LiveCurve, bar, in_notebook, is_headless
from .rng import own_random_streams  # noqa: F401  (re-exported: train.own_random_streams)

OutOfMemoryError = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
MONITORS = {"loss": False, "accuracy": True}   # what evaluate() reports: higher is better?


# --------------------------------------------------------------------------- history
@dataclass
class History:
    """What happened during `fit`: losses, evaluations, events, throughput. `plot()`
    draws it."""

    train: list[dict] = field(default_factory=list)   # {"step", "loss", "lr", "grad_norm"}
    evals: list[dict] = field(default_factory=list)   # {"step", "loss", "accuracy", ...}
    events: list[str] = field(default_factory=list)   # rollbacks, OOM backoffs, early stop
    monitor: str = "loss"
    best_step: int | None = None
    best_score: float | None = None
    steps: int = 0
    examples: int = 0
    tokens: int = 0          # non-padding tokens trained on (when batches have input_ids)
    skipped: int = 0         # steps skipped for a non-finite loss or gradient norm
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        """Training throughput in tokens per second (0 when the batches have no tokens)."""
        return self.tokens / self.seconds if self.seconds else 0.0

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


# --------------------------------------------------------------------------- evaluate
@contextlib.contextmanager
def scoring(model, device=None, precision: str = "auto"):
    """The one way the course scores a model: evaluation mode, no autograd, and the
    autocast of `precision` ('auto': what `fit` trains with on that device), so the
    validation that picks the best weights and the test that reports them compute
    alike. Yields the device; the model's training mode is given back afterwards."""
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    prec = device_lib.precision(dev) if precision == "auto" else precision
    dtype = device_lib.autocast_dtype(prec)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), torch.autocast(dev.type, dtype=dtype,
                                                    enabled=dtype is not None):
            yield dev
    finally:
        model.train(was_training)


def _matches(logits, labels, causal: bool):
    """(correct, counted) of argmax predictions, -100 labels ignored; shifted by one for
    a causal LM (the logits at t predict the label at t + 1)."""
    if causal and labels.ndim >= 2 and logits.shape[:-1] == labels.shape:
        logits, labels = logits[:, :-1], labels[:, 1:]
    if logits.shape[:-1] != labels.shape:
        return 0, 0
    mask = labels != IGNORE_INDEX
    return int((logits.argmax(-1) == labels)[mask].sum()), int(mask.sum())


def evaluate(model, data, *, loss_fn=None, collate_fn=None, batch_size: int = 64,
             device=None, precision: str = "auto", seed: int = 0) -> dict:
    """Mean loss over `data` (over its items, as `fit` weighs them) and, when the outputs
    have logits and the batch has labels, accuracy (positions labelled -100 are ignored,
    so it is masked-token accuracy for a masked LM, next-token accuracy for a causal LM).

    Random choices in `collate_fn` (e.g. masking) draw from torch's CPU generator seeded
    with `seed` inside a fork of it, so every evaluation sees the same masks and the
    caller's random streams are untouched. Under data parallelism each rank scores its
    share of `data` and the sums are added up, so call it on every rank.
    """
    loss_fn = loss_fn or default_loss
    if dist.active() and indexable(data):
        data = [data[i] for i in dist.shard(range(len(data)))]
    causal = is_causal_lm(model)
    loss_sum, weight, n, correct, counted = 0.0, 0.0, 0, 0, 0
    with torch.random.fork_rng(devices=[]), scoring(model, device, precision) as dev:
        torch.default_generator.manual_seed(seed)
        for batch in batches(data, batch_size, collate_fn=collate_fn):
            n += batch_len(batch)
            batch = to_device(batch, dev)
            total, items, out = loss_terms(loss_fn, model, batch)
            if float(items):
                loss_sum, weight = loss_sum + float(total), weight + float(items)
            logits = getattr(out, "logits", None) if out is not None else None
            labels = batch.get("labels") if isinstance(batch, Mapping) else None
            if logits is not None and labels is not None:
                c, k = _matches(logits, labels, causal)
                correct, counted = correct + c, counted + k
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
    sync: dist.GradientSync

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
    bad_in_row: int = 0            # skipped (non-finite) steps since the last good one
    rollbacks: int = 0
    stopped: bool = False          # stopped early: a resumed run does not go on
    best_state: dict | None = None   # the best weights so far (rank 0, CPU copy)

    def say(self, msg: str) -> None:
        """Record an event; rank 0 also prints it."""
        self.history.events.append(msg)
        if dist.is_main():
            print(msg)


def _tokens(batch) -> int:
    """Non-padding tokens in a batch (attention_mask, else input_ids), 0 if none."""
    if isinstance(batch, Mapping):
        for key in ("attention_mask", "input_ids"):
            t = batch.get(key)
            if torch.is_tensor(t):
                return int(t.sum()) if key == "attention_mask" else t.numel()
    return 0


def forward_backward(parts: Parts, batch, micro: int | None):
    """Forward and backward over the micro-batches of this rank's `batch`. Each
    micro-batch's loss enters as its *sum* over its items (`loss_terms`), so the
    gradients add up to the gradient of the sum over the global batch; `train_step`
    divides once by the number of items. The gradient exchange over ranks starts during
    the last backward. Returns (loss sum, items), on the device."""
    size = batch_len(batch)
    chunk = micro or size
    if chunk < size:
        check_examples(batch)                   # cutting is only right on whole examples
    loss_sum = torch.zeros((), device=parts.dev)
    items = torch.zeros((), device=parts.dev)
    for start in range(0, size, chunk):
        piece = to_device(slice_batch(batch, start, start + chunk), parts.dev)
        with torch.autocast(parts.dev.type, dtype=parts.dtype, enabled=parts.dtype is not None):
            total, n, _ = loss_terms(parts.loss_fn, parts.model, piece)
        if start + chunk >= size:
            parts.sync.arm()                               # the last micro-batch
        parts.scaler.scale(total).backward()
        loss_sum, items = loss_sum + total.detach().float(), items + n
    return loss_sum, items


def _grad_norm(params) -> torch.Tensor:
    """The total 2-norm of the parameters' gradients, sparse ones (from an
    nn.Embedding(sparse=True), coalesced by `train_step`) included."""
    if not params:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(
        [p.grad.values() if p.grad.is_sparse else p.grad for p in params])


def train_step(parts: Parts, batch, state: TrainState):
    """One optimizer step on `batch`: gradients accumulated over micro-batches (halved on
    out-of-memory), summed over ranks, divided once by the global number of items,
    clipped, and applied only when the loss and the gradient norm are finite.

    Returns (loss, gradient norm) of the global batch, with no update when either is not
    finite, or None when the batch has no item at all. Every rank takes the same
    decisions from the same all-reduced numbers. The loss stays on the device through
    the micro-batches; a GPU is waited for twice per step, to read those numbers and the
    gradient norm (no `float(loss)` per micro-batch)."""
    params = parts.sync.params
    while True:
        parts.optimizer.zero_grad(set_to_none=True)
        try:
            loss_sum, items = forward_backward(parts, batch, state.micro)
            oom = 0.0
        except OutOfMemoryError:
            loss_sum, items, oom = torch.zeros(()), torch.zeros(()), 1.0
        used = parts.sync.finish()
        stats = torch.stack([loss_sum.cpu(), items.cpu(), torch.tensor(oom)]).tolist()
        loss_sum, items, oom, *used = dist.total(stats + [float(u) for u in used], parts.dev)
        if not oom:
            break
        chunk = state.micro or batch_len(batch)
        if chunk == 1:
            raise OutOfMemoryError("out of memory with micro-batches of one example: use a "
                                   "smaller model, shorter sequences or a bigger GPU")
        state.micro = max(1, chunk // 2)
        if parts.dev.type == "cuda":
            torch.cuda.empty_cache()
        state.say(f"out of memory at step {state.step}: micro-batch halved to "
                  f"{state.micro}, effective batch kept at {batch_len(batch)} by accumulation")
    if items == 0:
        parts.optimizer.zero_grad(set_to_none=True)
        return None
    for p, u in zip(params, used):
        if not u:
            p.grad = None              # used on no rank: no update, as in one process
        elif p.grad is not None:
            if p.grad.is_sparse:       # once, in place: a row seen k times is summed here,
                p.grad = p.grad.coalesce()   # not again by the norm or the optimizer
            p.grad.div_(items)         # the one division: sum over items -> mean
    parts.scaler.unscale_(parts.optimizer)
    with_grad = [p for p in params if p.grad is not None]
    norm = (torch.nn.utils.clip_grad_norm_(with_grad, parts.clip) if parts.clip
            else _grad_norm(with_grad))
    loss, norm = float(loss_sum / items), float(norm)
    if math.isfinite(loss) and (math.isfinite(norm) or parts.scaler.is_enabled()):
        parts.scaler.step(parts.optimizer)     # fp16: the scaler skips an overflowed step
        parts.scaler.update()
        parts.scheduler.step()
    else:
        parts.optimizer.zero_grad(set_to_none=True)
        if parts.scaler.is_enabled():
            parts.scaler.update()              # the scaler's bookkeeping of this step
    return loss, norm


def judge(loss: float, norm: float, recent: list[float], spike_factor: float | None,
          spike_min_delta: float) -> str | None:
    """What is wrong with this step ('NaN/inf loss', 'NaN/inf gradient norm', 'loss
    spike 12.3'), if anything. A spike is `spike_factor` times the median of the recent
    losses and at least `spike_min_delta` above it (needs 10 recent losses)."""
    if not math.isfinite(loss):
        return "NaN/inf loss"
    if not math.isfinite(norm):
        return "NaN/inf gradient norm"
    if spike_factor is None or len(recent) < 10:
        return None
    median = statistics.median(recent)
    if loss > spike_factor * median and loss - median > spike_min_delta:
        return f"loss spike {loss:.3g}"
    return None


def roll_back(parts: Parts, state: TrainState, snapshot: dict, what: str) -> None:
    """Return to `snapshot`: weights, optimizer, schedule and the history after it are
    undone; the data position is not (the batches that caused trouble are skipped), so
    the run still takes its full number of steps."""
    restore_snapshot(parts, snapshot)
    msg = (f"{what} at step {state.step}: rolled back to step {snapshot['step']}, "
           "going on with the next batches")
    state.step, state.recent = snapshot["step"], list(snapshot["recent"])
    state.bad_evals, state.best_state = snapshot["bad_evals"], snapshot["best_state"]
    state.bad_in_row = 0
    h = state.history
    h.best_step, h.best_score = snapshot["best"]
    del h.train[snapshot["rows"][0]:], h.evals[snapshot["rows"][1]:]
    h.examples, h.tokens = snapshot["examples"], snapshot["tokens"]
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
        if restore_best and dist.is_main():
            state.best_state = trainable_state(parts.model)
    else:
        state.bad_evals += 1
    if patience is not None and state.bad_evals >= patience:
        state.stopped = True
        h.events.append(f"early stop at step {state.step}: no better {monitor} "
                        f"for {patience} evaluations")
    return row


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


def default_optimizer(model, lr, weight_decay, betas):
    """AdamW, with no weight decay on biases and normalisation weights (ndim < 2); the
    fused implementation (one kernel for all parameters, several times faster per step
    than the default on CPU and GPU) where the parameters' device supports it."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=True)
    except (RuntimeError, ValueError):      # a device or dtype without a fused kernel
        return torch.optim.AdamW(groups, lr=lr, betas=betas)



# --------------------------------------------------------------------------- fit
def fit(model, train_data, *, eval_data=None, loss_fn=None, collate_fn=None,
        epochs: int = 1, max_steps: int | None = None,
        batch_size: int = 32, micro_batch_size: int | None = None,
        group_by_length: bool = False, lr: float = 5e-5, weight_decay: float = 0.01, betas=(0.9, 0.999), optimizer=None,
        warmup: float | int = 0.06, schedule: str = "linear", min_lr_ratio: float = 0.0,
        clip: float | None = 1.0,
        eval_every: int | None = None, eval_batch_size: int = 64, monitor: str = "loss",
        patience: int | None = None, restore_best: bool = True,
        checkpoint_dir: str | Path | None = None, checkpoint_every: int = 100,
        resume: bool = False,
        rollback: bool = True, spike_factor: float | None = 4.0, spike_min_delta: float = 1.0,
        snapshot_every: int = 25, max_rollbacks: int = 5, bad_steps_to_roll_back: int = 3,
        precision: str = "auto", device=None, seed: int = 0,
        desc: str = "fit", log_every: int = 1) -> History:
    """Train `model` on `train_data`; return a `History`.

    The essentials: `epochs` (or `max_steps` optimizer steps), `batch_size` examples per
    optimizer step (`group_by_length=True`: rows of similar length batched together, so
    less padding is computed), `lr` for AdamW (or your own `optimizer`), `warmup` (a float is a
    fraction of the steps, an int a number of steps) then `schedule` decay. With
    `eval_data`, evaluate every `eval_every` steps (default: once per epoch) and at the
    end, keep the best weights by `monitor` ('loss' or 'accuracy') and stop after
    `patience` evaluations without improvement. With `checkpoint_dir`, save every
    `checkpoint_every` steps and, with `resume=True`, carry on from the last checkpoint
    there. A step with a non-finite loss or gradient norm is skipped (`History.skipped`);
    `bad_steps_to_roll_back` of them in a row, or a loss spike, roll back to the last
    snapshot (taken every `snapshot_every` steps; its memory cost is in
    `labkit.checkpoint`). A rollback skips the bad batches but not the steps: the run
    takes `max_steps` steps, reading into the next epoch if it must; after
    `max_rollbacks` it gives up with a FloatingPointError.
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
    if isinstance(train_data, torch.utils.data.DataLoader):
        train_data = shard_loader(train_data, seed)
    per_epoch = steps_per_epoch(train_data, batch_size)
    if max_steps is None:
        if per_epoch is None:
            raise ValueError("train_data has no length (an iterator?): give fit() max_steps")
        max_steps = epochs * per_epoch
    eval_every = eval_every or per_epoch or max_steps
    model.to(dev)
    model.train()
    dist.broadcast_weights(model)
    optimizer = optimizer or default_optimizer(model, lr, weight_decay, betas)
    schedule_fn = lr_lambda(max_steps, warmup_steps(warmup, max_steps), schedule, min_lr_ratio)
    parts = Parts(model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_fn),
                  torch.amp.GradScaler(dev.type, enabled=(prec == "fp16")),
                  loss_fn or default_loss, dev, device_lib.autocast_dtype(prec), clip,
                  dist.GradientSync(model.parameters()))
    ckpt = Path(checkpoint_dir) / "last.pt" if checkpoint_dir else None
    if ckpt and dist.is_main():
        ckpt.parent.mkdir(parents=True, exist_ok=True)

    with own_random_streams(seed + dist.rank()), contextlib.closing(parts.sync):
        state = TrainState(history=History(monitor=monitor), micro=micro_batch_size)
        if resume and checkpoint_exists(ckpt):
            state.history = History(**load_checkpoint(ckpt, parts, state))
            started -= state.history.seconds
            state.history.events.append(f"resumed from step {state.step}")
        elif resume:
            state.history.events.append("resume=True but no checkpoint found: starting fresh")
        hist = state.history
        snapshot = take_snapshot(parts, state) if rollback else None
        stream = batch_stream(train_data, batch_size, collate_fn, seed, state.epoch, state.index,
                              row_lengths(train_data) if group_by_length else None)
        watch = Watch(desc, max_steps, state.step)

        while state.step < max_steps and not state.stopped:
            state.epoch, index, batch = next(stream)
            state.index = index + 1
            result = train_step(parts, batch, state)
            if result is None:                     # nothing labelled in this batch
                state.say(f"step {state.step}: a batch with no labelled item skipped")
                continue
            loss, norm = result
            problem = judge(loss, 0.0 if parts.scaler.is_enabled() else norm, state.recent,
                            spike_factor, spike_min_delta)
            if problem and problem.startswith("NaN"):         # no update was made
                hist.skipped += 1
                state.bad_in_row += 1
                if not rollback:
                    raise FloatingPointError(f"{problem} at step {state.step} (rollback=False)")
                state.say(f"{problem} at step {state.step}: step skipped")
            if problem and rollback and (problem.startswith("loss spike")
                                         or state.bad_in_row >= bad_steps_to_roll_back):
                state.rollbacks += 1
                if state.rollbacks > max_rollbacks:
                    raise FloatingPointError(
                        f"training diverged: {problem} at step {state.step} after "
                        f"{max_rollbacks} rollbacks: lower the learning rate, check the data "
                        "for empty or broken rows, or use precision='fp32'")
                roll_back(parts, state, snapshot, problem)
                watch.rewind(state.step)
                continue
            if problem:
                continue

            state.step, state.bad_in_row = state.step + 1, 0
            hist.examples += batch_len(batch) * dist.world_size()
            hist.tokens += _tokens(batch) * dist.world_size()
            state.recent = (state.recent + [loss])[-32:]
            if state.step % log_every == 0:
                hist.train.append({"step": state.step, "loss": loss, "grad_norm": norm,
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
    """Put the best weights back (rank 0 keeps them and sends them), close the books,
    and say how it went."""
    hist = state.history
    if restore_best and hist.best_step is not None and dist.from_main(
            state.best_state is not None):
        if dist.is_main():
            load_trainable_state(parts.model, state.best_state)
        dist.broadcast_weights(parts.model)
        hist.events.append(f"restored best weights from step {hist.best_step} "
                           f"({hist.monitor}={hist.best_score:.4g})")
    hist.steps, hist.seconds = state.step, time.perf_counter() - started
    if dist.is_main() and (is_headless() or not in_notebook()):
        best = (f", best {hist.monitor} {hist.best_score:.4g} @ step {hist.best_step}"
                if hist.best_score is not None else "")
        print(f"{desc}: {state.step} steps, {hist.seconds:.1f}s, "
              f"final train loss {hist.final_loss():.4g}{best}")
    return hist
