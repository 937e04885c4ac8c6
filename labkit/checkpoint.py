"""Checkpoints (to resume a run) and snapshots (to roll one back), for `train.fit`.

A **checkpoint** is a file: the model, optimizer, schedule and gradient-scaler state,
where the run stands, its history, and every rank's random generators. Rank 0 alone
writes it, to a temporary file then renamed, so a crash never leaves half a file.

A **snapshot** is what a rollback returns to, kept in memory. It holds what training can
change and nothing else: the trainable parameters, the buffers (running statistics) and
the optimizer's state for the trainable parameters, copied to the CPU. Under data
parallelism only rank 0 keeps one (the ranks hold the same weights), and a rollback
sends it to the others. Its cost is therefore one copy per run, not one per process:
about 3x the trainable parameters' bytes with AdamW (weights + two moments): some 12 GB
for 1B trainable fp32 parameters, a few MB for LoRA adapters. The best weights that
`restore_best` keeps are the trainable parameters and buffers alone, on rank 0 too. On a
GPU the copies go to pinned memory without waiting for them, so a snapshot does not stall
the steps after it.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch

from . import distributed as dist
from . import rng


def cpu_copy(obj):
    """A deep copy on the CPU (pinned and asynchronous from a GPU)."""
    if torch.is_tensor(obj):
        t = obj.detach()
        if t.device.type == "cuda":
            out = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
            return out.copy_(t, non_blocking=True)
        return t.to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


def trainable_state(model: torch.nn.Module) -> dict:
    """The tensors training changes: the parameters that require grad, and the buffers
    (a CPU copy)."""
    every = model.state_dict(keep_vars=True)      # persistent buffers only
    return cpu_copy({k: v for k, v in every.items()
                     if not isinstance(v, torch.nn.Parameter) or v.requires_grad})


def load_trainable_state(model: torch.nn.Module, saved: dict) -> None:
    """Put `trainable_state`'s tensors back (the frozen parameters never moved)."""
    result = model.load_state_dict(saved, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"saved state does not fit the model: {result.unexpected_keys[:3]}")


def take_snapshot(parts, state) -> dict:
    """What a rollback returns to. Rank 0 keeps the tensors, every rank the progress."""
    h = state.history
    snap = {"step": state.step, "recent": list(state.recent), "bad_evals": state.bad_evals,
            "best_state": state.best_state, "best": (h.best_step, h.best_score),
            "rows": (len(h.train), len(h.evals)), "examples": h.examples,
            "tokens": h.tokens}
    if dist.is_main():
        snap["tensors"] = {"model": trainable_state(parts.model),
                           "optimizer": cpu_copy(parts.optimizer.state_dict()),
                           "scheduler": parts.scheduler.state_dict(),
                           "scaler": parts.scaler.state_dict()}
    return snap


def restore_snapshot(parts, snapshot: dict) -> None:
    """Return the parts to `snapshot` on every rank (rank 0 sends its copy)."""
    tensors = dist.from_main(snapshot.get("tensors"))
    load_trainable_state(parts.model, tensors["model"])
    parts.optimizer.load_state_dict(tensors["optimizer"])
    parts.scheduler.load_state_dict(tensors["scheduler"])
    parts.scaler.load_state_dict(tensors["scaler"])
    parts.optimizer.zero_grad(set_to_none=True)


def save_atomic(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(path: Path, parts, state) -> None:
    """Write `path` (rank 0 alone, atomically) with the parts, the state and every
    rank's random generators."""
    generators = dist.gather(rng.state())
    if dist.is_main():
        fields = {k: v for k, v in state.__dict__.items() if k != "history"}
        save_atomic({"parts": parts.state_dict(), "state": fields,
                     "history": state.history.to_dict(), "rng": generators}, path)
    dist.barrier()


def exists(path: Path | None) -> bool:
    """Is there a checkpoint to resume from? Rank 0 looks and tells the others, so all
    ranks decide alike even when their file systems differ."""
    found = bool(path) and dist.is_main() and Path(path).exists()
    return dist.from_main(found)


def load_checkpoint(path: Path, parts, state) -> dict:
    """Restore what `save_checkpoint` wrote (each rank its own random generators);
    returns the saved history as a dict."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if len(saved["rng"]) != dist.world_size():
        raise ValueError(f"{path} was written by {len(saved['rng'])} processes and this "
                         f"run has {dist.world_size()}: resume with as many processes")
    parts.load_state_dict(saved["parts"])
    for k, v in saved["state"].items():
        setattr(state, k, v)
    rng.set_state(saved["rng"][dist.rank()])
    return saved["history"]
