"""Data-parallel training: the few collective pieces `fit` uses under torchrun.

Launch one process per GPU (or per group of CPU cores) with

    torchrun --nproc_per_node 2 script.py        # or: accelerate launch script.py

and call `distributed.setup()` at the top of the script. Both launchers set RANK,
WORLD_SIZE and LOCAL_RANK in the environment; `setup` opens the process group from them
(NCCL on CUDA, gloo on the CPU). Once it is open, `labkit.train.fit` trains
data-parallel by itself:

* every rank starts from rank 0's weights (`broadcast_weights`),
* each global batch of `batch_size` examples is split over the ranks (`shard`),
* gradients are summed over the ranks once per optimizer step, in buckets sent while the
  last micro-batch's backward pass still runs (`GradientSync`); then the ranks add up
  their loss sums, item counts and flags in one small all-reduce (`total`), so a NaN, a
  loss spike or an out-of-memory on one rank is seen by all and they decide alike,
* rank 0 decides whether to resume and keeps the rollback snapshot (`from_main`),
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


class GradientSync:
    """Sum the gradients of `params` over all ranks while the backward pass still runs.

    The parameters are cut into buckets of about `bucket_mb` MB, in reverse order (the
    order backward reaches them). `arm()` before the last micro-batch's backward: as each
    parameter's gradient is complete (`register_post_accumulate_grad_hook`), its bucket
    counts down, and a full bucket starts an asynchronous all-reduce, always in bucket
    order so that every rank issues the same collectives in the same order. `finish()`
    sends the buckets still waiting (a parameter with no gradient on this rank sends
    zeros: nothing hangs), waits, and writes the sums back. It returns, per parameter,
    whether this rank produced a gradient, for `fit` to agree over ranks which parameters
    took part (those used on no rank keep no gradient, as in one process).

    One process: no hooks, and `finish` only reports which parameters have a gradient.
    """

    def __init__(self, params, bucket_mb: float = 25.0):
        self.params = [p for p in params if p.requires_grad]
        self.on = active()
        self.armed = False
        self.hooks = []
        self.buckets: list[list[torch.Tensor]] = []
        if not self.on:
            return
        cap, size, current = bucket_mb * 2**20, 0, []
        for p in reversed(self.params):
            if current and (size >= cap or p.dtype != current[0].dtype
                            or p.device != current[0].device):
                self.buckets.append(current)
                size, current = 0, []
            current.append(p)
            size += p.numel() * p.element_size()
        if current:
            self.buckets.append(current)
        self.bucket_of = {id(p): i for i, b in enumerate(self.buckets) for p in b}
        self.hooks = [p.register_post_accumulate_grad_hook(self._ready) for p in self.params]

    def arm(self) -> None:
        """The next backward is the step's last: start exchanging as gradients finish."""
        if self.on:
            self.armed, self.next, self.works = True, 0, []
            self.waiting = [len(b) for b in self.buckets]

    def _ready(self, p) -> None:
        if not self.armed:
            return
        self.waiting[self.bucket_of[id(p)]] -= 1
        while self.next < len(self.buckets) and self.waiting[self.next] <= 0:
            self._launch(self.next)

    def _launch(self, i: int) -> None:
        bucket = self.buckets[i]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in bucket])
        if dist.get_backend() != "nccl":
            flat = flat.cpu()
        self.works.append((bucket, flat, dist.all_reduce(flat, async_op=True)))
        self.next = i + 1

    def finish(self) -> list[bool]:
        """Wait for every bucket and write the summed gradients back; returns whether
        each parameter had a gradient on this rank."""
        used = [p.grad is not None for p in self.params]
        if not self.on:
            return used
        if not self.armed:
            self.arm()
        while self.next < len(self.buckets):
            self._launch(self.next)
        for bucket, flat, work in self.works:
            work.wait()
            offset = 0
            for p in bucket:
                g = flat[offset:offset + p.numel()].view_as(p).to(p.device, p.dtype)
                if p.grad is None:
                    p.grad = g.clone()
                else:
                    p.grad.copy_(g)
                offset += p.numel()
        self.armed, self.works = False, []
        return used

    def close(self) -> None:
        for h in self.hooks:
            h.remove()
        self.hooks = []


def from_main(obj):
    """Rank 0's `obj`, on every rank (a pickled broadcast; the identity in one process)."""
    if not active():
        return obj
    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


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
