"""The one training loop of the course: `fit()` and `evaluate()`.

Every notebook trains through `fit`. It is plain PyTorch, and it owns the chores that
each hand-written loop gets subtly wrong:

* device placement and mixed precision on CUDA (bf16 where supported, fp16 + GradScaler
  otherwise; fp32 on CPU),
* gradient accumulation (`batch_size` examples per optimizer step, fed through the model
  in micro-batches of `micro_batch_size`), gradient clipping,
* warmup then linear or cosine decay of the learning rate,
* evaluation every N steps, the best weights kept, early stopping,
* checkpoint + resume (an interrupted run resumed with the same seed ends with the same
  weights as an uninterrupted one on the CPU),
* rollback to the last good snapshot when the loss is NaN/inf or spikes, skipping the
  batches that caused it (the recipe large language models use for stability),
* CUDA out-of-memory: halve the micro-batch, keep the effective batch, say so once,
* a progress bar and a live loss curve when someone is watching, silence when headless.

A batch is whatever `collate_fn` returns (default: torch's `default_collate`). The loss of
a batch is `loss_fn(model, batch)`; by default it is `model(**batch).loss`, the Hugging
Face convention. `loss_fn` may return the loss or `(loss, outputs)`.
"""

from __future__ import annotations

import copy
import math
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
from .progress import LiveCurve, bar, in_notebook, is_headless

OutOfMemoryError = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


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


# --------------------------------------------------------------------------- helpers
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
    if torch.is_tensor(batch):
        return batch.shape[0]
    if isinstance(batch, Mapping):
        return _batch_len(next(iter(batch.values())))
    return _batch_len(batch[0])


def _slice(batch: Any, start: int, stop: int) -> Any:
    if torch.is_tensor(batch):
        return batch[start:stop]
    if isinstance(batch, Mapping):
        return {k: _slice(v, start, stop) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_slice(v, start, stop) for v in batch)
    return batch


def default_loss(model, batch):
    """The Hugging Face convention: the model computes its own loss from `labels`."""
    out = model(**batch) if isinstance(batch, Mapping) else model(*batch)
    loss = out["loss"] if isinstance(out, dict) else getattr(out, "loss", None)
    if loss is None:
        raise ValueError("the model returned no loss: pass `labels` in the batch or give "
                         "fit/evaluate a loss_fn(model, batch) that returns the loss")
    return loss, out


def _loss_and_outputs(loss_fn, model, batch):
    result = loss_fn(model, batch)
    return result if isinstance(result, tuple) else (result, None)


def batches(dataset, batch_size: int, *, collate_fn=None, shuffle=False, seed=0, epoch=0):
    """Yield collated batches. Shuffled order depends only on (seed, epoch): repeatable.

    `dataset` is anything indexable with a length (a list, a torch Dataset, a datasets
    Dataset), or an iterable of ready-made batches (e.g. a DataLoader), passed through.
    """
    if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
        yield from dataset
        return
    collate_fn = collate_fn or default_collate
    n = len(dataset)
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        order = order.tolist()
    else:
        order = range(n)
    for start in range(0, n, batch_size):
        yield collate_fn([dataset[i] for i in order[start:start + batch_size]])


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


def _cpu_copy(state):
    """A deep copy of a state dict on the CPU (for snapshots and the best weights)."""
    if torch.is_tensor(state):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {k: _cpu_copy(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_cpu_copy(v) for v in state)
    return copy.deepcopy(state)


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


def _save_atomic(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _higher_is_better(monitor: str) -> bool:
    return not any(word in monitor for word in ("loss", "ppl", "perplexity", "error"))


# --------------------------------------------------------------------------- evaluate
@torch.no_grad()
def evaluate(model, data, *, loss_fn=None, collate_fn=None, batch_size: int = 64,
             device=None, precision: str = "auto", seed: int = 0) -> dict:
    """Mean loss over `data` and, when the outputs have logits and the batch has labels,
    accuracy (positions labelled -100 are ignored, so it is masked-token accuracy for
    a masked LM). Random choices in `collate_fn` (e.g. masking) use a fixed `seed`, so
    every evaluation sees the same masks and training's random stream is untouched.
    """
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    prec = device_lib.precision(dev) if precision == "auto" else precision
    dtype = device_lib.autocast_dtype(prec)
    loss_fn = loss_fn or default_loss
    was_training = model.training
    model.eval()
    total_loss, n, correct, counted = 0.0, 0, 0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for batch in batches(data, batch_size, collate_fn=collate_fn):
            batch = to_device(batch, dev)
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                loss, out = _loss_and_outputs(loss_fn, model, batch)
            size = _batch_len(batch)
            total_loss += float(loss) * size
            n += size
            logits = getattr(out, "logits", None) if out is not None else None
            labels = batch.get("labels") if isinstance(batch, Mapping) else None
            if logits is not None and labels is not None and logits.shape[:-1] == labels.shape:
                mask = labels != -100
                correct += int((logits.argmax(-1) == labels)[mask].sum())
                counted += int(mask.sum())
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluate() got no data: the evaluation split is empty")
    result = {"loss": total_loss / n, "n": n}
    if counted:
        result["accuracy"] = correct / counted
    return result


# --------------------------------------------------------------------------- fit
def fit(model, train_data, *, eval_data=None, loss_fn=None, collate_fn=None,
        epochs: int = 1, max_steps: int | None = None,
        batch_size: int = 32, micro_batch_size: int | None = None,
        lr: float = 5e-5, weight_decay: float = 0.01, betas=(0.9, 0.999), optimizer=None,
        warmup: float = 0.06, schedule: str = "linear", min_lr_ratio: float = 0.0,
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
    optimizer step, `lr` for AdamW (or your own `optimizer`), `warmup` (a fraction of
    the steps, or a number of steps) then `schedule` decay. With `eval_data`, evaluate
    every `eval_every` steps (default: once per epoch), keep the best weights by
    `monitor` ('loss', 'accuracy', ...) and stop after `patience` evaluations without
    improvement. With `checkpoint_dir`, save every `checkpoint_every` steps and, with
    `resume=True`, carry on from the last checkpoint there.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if hasattr(train_data, "__len__") and len(train_data) == 0:
        raise ValueError("fit() got an empty training set: check the split and any filters")
    started = time.perf_counter()
    dev = torch.device(device) if device is not None else device_lib.pick()
    prec = device_lib.precision(dev) if precision == "auto" else precision
    dtype = device_lib.autocast_dtype(prec)
    loss_fn = loss_fn or default_loss
    micro = micro_batch_size    # None: each batch goes through the model whole
    model.to(dev)
    model.train()

    sized = hasattr(train_data, "__len__") and hasattr(train_data, "__getitem__")
    steps_per_epoch = math.ceil(len(train_data) / batch_size) if sized else None
    if max_steps is None:
        if steps_per_epoch is None:
            raise ValueError("train_data has no length: give fit() max_steps")
        max_steps = epochs * steps_per_epoch
    else:
        epochs = math.ceil(max_steps / steps_per_epoch) if steps_per_epoch else 10**9
    eval_every = eval_every or steps_per_epoch or max_steps
    warmup_steps = int(warmup * max_steps) if warmup < 1 else int(warmup)

    if optimizer is None:
        decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}],
                                      lr=lr, betas=betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(max_steps, warmup_steps, schedule, min_lr_ratio))
    scaler = torch.amp.GradScaler(dev.type, enabled=(prec == "fp16"))

    hist = History(monitor=monitor)
    better = _higher_is_better(monitor)
    best_state = None
    recent: list[float] = []   # the last 32 losses, for spike detection
    step, epoch, skip_batches, bad_evals, rollbacks = 0, 0, 0, 0, 0
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir else None
    if ckpt_dir:
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    def state() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict()}

    def load(s: dict) -> None:
        model.load_state_dict(s["model"])
        optimizer.load_state_dict(s["optimizer"])
        scheduler.load_state_dict(s["scheduler"])
        scaler.load_state_dict(s["scaler"])

    if resume and ckpt_dir and (ckpt_dir / "last.pt").exists():
        saved = torch.load(ckpt_dir / "last.pt", map_location="cpu", weights_only=True)
        load(saved["state"])
        step, epoch, skip_batches = saved["step"], saved["epoch"], saved["batch_in_epoch"]
        bad_evals, rollbacks, recent = saved["bad_evals"], saved["rollbacks"], saved["recent"]
        hist = History(**saved["history"])
        best_state = saved["best_state"]
        _set_rng_state(saved["rng"])
        started -= hist.seconds
        hist.events.append(f"resumed from step {step}")
    elif resume:
        hist.events.append("resume=True but no checkpoint found: starting fresh")

    def save_checkpoint(at_epoch: int, batch_in_epoch: int) -> None:
        _save_atomic({"state": state(), "step": step, "epoch": at_epoch,
                      "batch_in_epoch": batch_in_epoch, "bad_evals": bad_evals,
                      "rollbacks": rollbacks, "recent": recent, "history": hist.to_dict(),
                      "best_state": best_state, "rng": _rng_state()}, ckpt_dir / "last.pt")

    def one_step(batch) -> float:
        """Forward/backward over micro-batches of `batch`, then one optimizer step."""
        nonlocal micro
        size = _batch_len(batch)
        while True:
            optimizer.zero_grad(set_to_none=True)
            chunk = micro or size
            try:
                total = 0.0
                for start in range(0, size, chunk):
                    part = to_device(_slice(batch, start, start + chunk), dev)
                    frac = _batch_len(part) / size
                    with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                        loss, _ = _loss_and_outputs(loss_fn, model, part)
                    if not torch.isfinite(loss):
                        return float("nan")
                    scaler.scale(loss * frac).backward()
                    total += float(loss.detach()) * frac
                return total
            except OutOfMemoryError:
                if chunk == 1:
                    raise
                micro = max(1, chunk // 2)
                optimizer.zero_grad(set_to_none=True)
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                msg = (f"out of memory at step {step}: micro-batch halved to {micro}, "
                       f"effective batch kept at {size} by accumulation")
                hist.events.append(msg)
                print(msg)

    curve = LiveCurve(desc)
    snapshot = (step, _cpu_copy(state())) if rollback else None
    pbar = bar(total=max_steps, initial=step, desc=desc)
    stop = step >= max_steps
    while not stop and epoch < epochs:
        for i, batch in enumerate(batches(train_data, batch_size, collate_fn=collate_fn,
                                          shuffle=True, seed=seed, epoch=epoch)):
            if i < skip_batches:
                continue
            loss = one_step(batch)
            median = statistics.median(recent) if len(recent) >= 10 else None
            spike = (spike_factor is not None and median is not None
                     and loss > spike_factor * median and loss - median > spike_min_delta)
            if rollback and (not math.isfinite(loss) or spike):
                rollbacks += 1
                what = "NaN/inf loss" if not math.isfinite(loss) else f"loss spike {loss:.3g}"
                if rollbacks > max_rollbacks:
                    if not math.isfinite(loss):
                        raise FloatingPointError(
                            f"{what} at step {step} after {max_rollbacks} rollbacks: lower "
                            "the learning rate, check the data for empty or broken rows, or "
                            "use precision='fp32'")
                else:
                    load(snapshot[1])
                    msg = (f"{what} at step {step}: rolled back to step {snapshot[0]}, "
                           "going on with the next batches")
                    step = snapshot[0]
                    pbar.n = step
                    hist.events.append(msg)
                    print(msg)
                    optimizer.zero_grad(set_to_none=True)
                    continue
            elif not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at step {step} (rollback=False)")
            if clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            hist.examples += _batch_len(batch)
            recent = (recent + [loss])[-32:]
            if step % log_every == 0:
                hist.train.append({"step": step, "loss": loss,
                                   "lr": optimizer.param_groups[0]["lr"]})
                curve.add("train loss", step, loss)
            pbar.update(1)
            pbar.set_postfix(loss=f"{loss:.4f}")

            last_of_epoch = sized and i + 1 == steps_per_epoch
            if eval_data is not None and (step % eval_every == 0 or step == max_steps):
                row = {"step": step, **evaluate(model, eval_data, loss_fn=loss_fn,
                                                collate_fn=collate_fn, device=dev,
                                                batch_size=eval_batch_size, precision=prec)}
                hist.evals.append(row)
                curve.add(f"validation {monitor}", step, row[monitor])
                score = row[monitor]
                if hist.best_score is None or (score > hist.best_score if better
                                               else score < hist.best_score):
                    hist.best_score, hist.best_step, bad_evals = score, step, 0
                    if restore_best:
                        best_state = _cpu_copy(model.state_dict())
                else:
                    bad_evals += 1
                if patience is not None and bad_evals >= patience:
                    hist.events.append(f"early stop at step {step}: no better {monitor} "
                                       f"for {patience} evaluations")
                    stop = True
            if rollback and step % snapshot_every == 0:
                snapshot = (step, _cpu_copy(state()))
            hist.steps, hist.seconds = step, time.perf_counter() - started
            if ckpt_dir and (step % checkpoint_every == 0 or stop or step >= max_steps):
                save_checkpoint(*((epoch + 1, 0) if last_of_epoch else (epoch, i + 1)))
            if stop or step >= max_steps:
                stop = True
                break
        else:
            epoch += 1
            skip_batches = 0
            continue
        if stop:
            break
    pbar.close()
    curve.close()
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
        hist.events.append(f"restored best weights from step {hist.best_step} "
                           f"({monitor}={hist.best_score:.4g})")
    hist.steps, hist.seconds = step, time.perf_counter() - started
    if is_headless() or not in_notebook():
        best = (f", best {monitor} {hist.best_score:.4g} @ step {hist.best_step}"
                if hist.best_score is not None else "")
        print(f"{desc}: {step} steps, {hist.seconds:.1f}s, "
              f"final train loss {hist.final_loss():.4g}{best}")
    return hist
