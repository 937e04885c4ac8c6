"""Data-parallel training: the few collective pieces `fit` uses under torchrun.

Launch one process per GPU (or per group of CPU cores) with

    torchrun --nproc_per_node 2 script.py        # or: accelerate launch script.py

and call `distributed.setup()` at the top of the script. Both launchers set RANK,
WORLD_SIZE and LOCAL_RANK in the environment; `setup` opens the process group from them
(NCCL on CUDA, gloo on the CPU). Once it is open, `labkit.train.fit` trains
data-parallel by itself:

* every rank starts from rank 0's weights (`broadcast_weights`),
* each global batch of `batch_size` examples is split over the ranks (`shard`),
* gradients are summed over the ranks once per optimizer step (`sum_gradients`), after
  the ranks have agreed that the step is good (`total` of their flags): a NaN, a loss spike
  or an out-of-memory on one rank is seen by all, so no rank waits for another forever,
* rank 0 alone writes checkpoints, the ledger and progress bars (`is_main`).

Without a process group every function here is the single-process identity (rank 0 of
1), so `fit` calls them unconditionally.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def active() -> bool:
    """True when a process group with more than one process is open."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0, the one process that writes files and prints progress."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def setup(backend: str | None = None) -> bool:
    """Open the process group that torchrun / accelerate launch describe in the
    environment. Returns True when training is data-parallel. A no-op when the script
    was started as one plain process (no WORLD_SIZE) or the group is already open."""
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return False
    if not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend)
    return active()


def teardown() -> None:
    """Close the process group (call at the end of a torchrun script)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device(dev: torch.device) -> torch.device:
    """This rank's GPU under data parallelism (cuda:LOCAL_RANK); `dev` otherwise."""
    if active() and dev.type == "cuda" and dev.index is None:
        return torch.device("cuda", local_rank())
    return dev


def _comm_device(dev: torch.device) -> torch.device:
    return dev if dist.get_backend() == "nccl" else torch.device("cpu")


def shard(items):
    """This rank's share of a global batch: items rank, rank + world, rank + 2 world..."""
    return items[rank()::world_size()] if active() else items


def total(values: list[float], dev: torch.device) -> list[float]:
    """Each of `values` summed over all ranks, in one all-reduce (float64). Ranks that
    add up flags (1.0 for "I saw a NaN") all learn whether any rank saw one."""
    if not active():
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device(dev))
    dist.all_reduce(t)
    return t.tolist()


def broadcast_weights(model: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not active():
        return
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)


def sum_gradients(params) -> None:
    """Sum the gradients of `params` over all ranks, in one flat all-reduce. A parameter
    with no gradient on this rank counts as zeros, so every rank sends the same shape."""
    if not active():
        return
    params = [p for p in params if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(g).to(g.dtype)
        offset += n


def gather(obj) -> list:
    """A Python object from every rank, as a list indexed by rank."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if active():
        dist.barrier()
