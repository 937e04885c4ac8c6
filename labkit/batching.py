"""The batch-and-loss contract of `train.fit`, and the batches it reads.

A batch is whatever a `collate_fn` returns (default: torch's `default_collate`): a dict,
a tuple or a tensor. **Dim 0 of every tensor in a batch is the example.** A preference
pair is one example (`align.pair_collate` stacks its chosen and rejected sequences on
dim 1), so a batch can be cut anywhere along dim 0, into micro-batches or over
processes, and every piece still holds whole examples.

**A loss says its denominator.** `loss_fn(model, batch)` returns the loss, or
`(loss, outputs)`. The loss is a mean over some items (tokens, examples, pairs), and to
weigh micro-batches and processes exactly `fit` needs their number. It is, in order:

* `LossSum(total, items, outputs)` returned by the loss function: the *sum* over the
  items and their number (what transformers calls `num_items_in_batch`); a plain tuple
  `(total, items)` whose second element is an integer says the same;
* a mean marked with its denominator by `mean_over(total, items)` (a tensor that still
  works as an ordinary loss in a hand-written loop);
* otherwise `loss_weight(batch, model)`: the `labels` that are not -100 when the batch has
  an integer `labels` tensor (counted after the shift by one for a causal LM, which
  predicts token t + 1 from tokens up to t), else the number of examples.

`fit` adds up the sums and the items over micro-batches and processes, and divides once:
the gradient of a step is the gradient of the mean over every item of the global batch,
however the batch was cut. `loss_terms` is that rule in code.

**The batches it reads.** Each epoch is a shuffle that depends only on (seed, epoch), so a
resumed run reads the batches it would have read; `group_by_length` sorts runs of that
shuffle by length first, so a batch pads less.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader, default_collate

from . import distributed as dist

IGNORE_INDEX = -100   # the label the losses skip (padding, unmasked tokens)


# --------------------------------------------------------------------------- the loss
class LossSum(NamedTuple):
    """A loss as its sum over `items` things (tokens, examples, pairs); `fit` divides."""

    total: torch.Tensor
    items: Any               # an int or an integer tensor
    outputs: Any = None


def mean_over(total: torch.Tensor, items) -> torch.Tensor:
    """`total / items`, marked with its denominator (`loss.num_items`) so that `fit`
    weighs it exactly; used as a plain tensor it is just the mean."""
    loss = total / items
    loss.num_items = items
    return loss


def is_causal_lm(model) -> bool:
    """Does `model` shift its `labels` inside (a Hugging Face causal LM, or a PEFT
    wrapper of one)?"""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    name = type(model).__name__
    if name.endswith("ForCausalLM") or name.endswith("LMHeadModel"):
        return True
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    except ImportError:       # pragma: no cover - transformers is a dependency
        return False
    return name in set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())


def loss_weight(batch: Any, model=None) -> int:
    """How many items a batch's mean loss averages over when the loss does not say: the
    `labels` that are not -100 when the batch has an integer `labels` tensor (the last
    position of each row dropped for a causal LM, which shifts them), else the number
    of examples."""
    labels = batch.get("labels") if isinstance(batch, Mapping) else None
    if torch.is_tensor(labels) and labels.ndim and not labels.is_floating_point():
        if model is not None and labels.ndim >= 2 and is_causal_lm(model):
            labels = labels[..., 1:]
        return int((labels != IGNORE_INDEX).sum())
    return batch_len(batch)


def default_loss(model, batch):
    """The Hugging Face convention: the model computes its own loss from `labels`."""
    out = model(**batch) if isinstance(batch, Mapping) else model(*batch)
    loss = out.get("loss") if isinstance(out, Mapping) else getattr(out, "loss", None)
    if loss is None:
        raise ValueError("the model returned no loss: pass `labels` in the batch or give "
                         "fit/evaluate a loss_fn(model, batch) that returns the loss")
    return loss, out


def _is_count(x) -> bool:
    if torch.is_tensor(x):
        return x.ndim == 0 and not x.is_floating_point() and not x.is_complex()
    return isinstance(x, int) and not isinstance(x, bool)


def loss_terms(loss_fn, model, batch):
    """Run `loss_fn` and return `(sum over the items, number of items, outputs)`, the
    items as a tensor on the loss's device (no synchronisation with a GPU)."""
    result = loss_fn(model, batch)
    if isinstance(result, LossSum) or (isinstance(result, tuple) and len(result) == 2
                                       and _is_count(result[1])):
        total, items, out = (*result, None)[:3]
    else:
        loss, out = result if isinstance(result, tuple) else (result, None)
        items = getattr(loss, "num_items", None)
        if items is None:
            items = loss_weight(batch, model)
        total = loss * items
    items = torch.as_tensor(items, device=total.device).detach().float()
    return total, items, out


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


def batch_len(batch: Any) -> int:
    """How many examples a batch holds: dim 0 of its first tensor (a list of strings,
    say of raw texts, counts by its length)."""
    if torch.is_tensor(batch):
        return int(batch.shape[0]) if batch.ndim else 1
    fields = list(batch.values()) if isinstance(batch, Mapping) else batch
    if isinstance(fields, (list, tuple)):
        for v in fields:
            if torch.is_tensor(v) or isinstance(v, Mapping):
                return batch_len(v)
        lists = [v for v in fields if isinstance(v, (list, tuple))]
        if isinstance(batch, Mapping) and lists:
            return len(lists[0])
        if not isinstance(batch, Mapping) and fields:
            return len(fields)
    raise TypeError(f"cannot tell how many examples this batch holds ({type(batch).__name__}"
                    " with no tensor in it): make collate_fn return tensors, e.g. a dict "
                    "of tensors")


def check_examples(batch: Any) -> None:
    """Every tensor's dim 0 is the example: a clear error when one disagrees."""
    n = batch_len(batch)
    fields = batch.items() if isinstance(batch, Mapping) else enumerate(
        batch if isinstance(batch, (list, tuple)) else [batch])
    for k, v in fields:
        if torch.is_tensor(v) and v.ndim and v.shape[0] != n:
            raise ValueError(f"batch field {k!r} has {v.shape[0]} rows but the batch holds "
                             f"{n} examples: dim 0 of every tensor must be the example (stack "
                             "the parts of one example, e.g. a pair, on dim 1)")


def slice_batch(batch: Any, start, stop, step=None) -> Any:
    """Examples start:stop:step of a batch (tensors and per-example lists are cut)."""
    if torch.is_tensor(batch):
        return batch[start:stop:step] if batch.ndim else batch
    if isinstance(batch, Mapping):
        return {k: slice_batch(v, start, stop, step) if isinstance(v, Mapping) or torch.is_tensor(v)
                else v[start:stop:step] if isinstance(v, (list, tuple)) else v
                for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(slice_batch(v, start, stop, step) for v in batch)
    return batch


def rows_at(data, idx: list[int]) -> list:
    """The rows `idx` of an indexable dataset, fetched in one call where the dataset can
    (`__getitems__`, as a `datasets.Dataset` or a torch Dataset may offer, and as torch's
    DataLoader and the Trainer use): for a datasets.Dataset several times faster than one
    row at a time."""
    getitems = getattr(data, "__getitems__", None)
    return list(getitems(list(idx))) if getitems is not None else [data[i] for i in idx]


def indexable(data) -> bool:
    return hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(
        data, DataLoader)


def order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of epoch `epoch`: depends only on (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def batches(dataset, batch_size: int, *, collate_fn=None, shuffle=False, seed=0, epoch=0):
    """Yield collated batches. Shuffled order depends only on (seed, epoch): repeatable.

    `dataset` is anything indexable with a length (a list, a torch Dataset, a datasets
    Dataset), or an iterable of ready-made batches (e.g. a DataLoader), passed through.
    """
    if not indexable(dataset):
        yield from dataset
        return
    collate_fn = collate_fn or default_collate
    idx = order(len(dataset), seed, epoch) if shuffle else range(len(dataset))
    for start in range(0, len(dataset), batch_size):
        yield collate_fn(rows_at(dataset, idx[start:start + batch_size]))


GROUP = 8    # length grouping sorts runs of GROUP batches' worth of shuffled rows


def global_batches(n: int, batch_size: int, seed: int, epoch: int,
                   lengths: Sequence[int] | None = None) -> list[list[int]]:
    """The example indices of each optimizer step of an epoch. Under data parallelism a
    last batch too small to give every rank an example is dropped.

    With `lengths` (one per example), batches are grouped by length, as the Trainer's
    `group_by_length` does: the shuffled order is cut into runs of `GROUP` batches, each
    run is sorted by length and cut into batches, and the batches are shuffled again. A
    batch then pads to a length close to its rows' own (random batches of 16 reviews pad
    to about 1.8x their tokens), while which rows meet in a batch, and in what order the
    batches come, still change with (seed, epoch)."""
    idx = order(n, seed, epoch)
    if lengths is not None:
        if len(lengths) != n:
            raise ValueError(f"group_by_length got {len(lengths)} lengths for {n} rows")
        span = batch_size * GROUP
        idx = [i for s in range(0, n, span)
               for i in sorted(idx[s:s + span], key=lengths.__getitem__)]
    chunks = [idx[s:s + batch_size] for s in range(0, n, batch_size)]
    if lengths is not None:
        chunks = [chunks[i] for i in order(len(chunks), seed + 1, epoch)]
    return [c for c in chunks if len(c) >= dist.world_size()]


def row_lengths(data) -> list[int]:
    """The token count of each tokenised row of `data` (a datasets Dataset or a list of
    dicts with `input_ids`), for `group_by_length`."""
    if hasattr(data, "column_names") and "input_ids" in data.column_names:
        return [len(x) for x in data["input_ids"]]
    if indexable(data) and len(data) and isinstance(data[0], Mapping) and "input_ids" in data[0]:
        return [len(data[i]["input_ids"]) for i in range(len(data))]
    raise ValueError("group_by_length=True needs tokenised rows with input_ids (a datasets "
                     "Dataset or a list of dicts); for other data leave it False")


def shard_loader(loader: DataLoader, seed: int) -> DataLoader:
    """This rank's share of a DataLoader under data parallelism, as `DistributedSampler`
    deals it: each row once per epoch over all ranks, shuffled (when the loader
    shuffles) by (seed, epoch). The loader's `batch_size` stays the global batch: each
    rank loads batch_size / ranks rows. One process: the loader itself."""
    if not dist.active() or isinstance(loader.sampler, torch.utils.data.DistributedSampler):
        return loader
    if loader.batch_size is None or isinstance(loader.dataset, torch.utils.data.IterableDataset):
        raise ValueError("under data parallelism fit shards a DataLoader by its dataset and "
                         "batch_size: give it a map-style dataset and a batch_size, or pass "
                         "the dataset and collate_fn to fit instead")
    per_rank, rest = divmod(loader.batch_size, dist.world_size())
    if rest or not per_rank:
        raise ValueError(f"the DataLoader's batch_size {loader.batch_size} is the global "
                         f"batch: make it a multiple of the {dist.world_size()} processes")
    sampler = torch.utils.data.DistributedSampler(
        loader.dataset, shuffle=isinstance(loader.sampler, torch.utils.data.RandomSampler),
        seed=seed, drop_last=loader.drop_last)
    return DataLoader(loader.dataset, batch_size=per_rank, sampler=sampler,
                      collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                      pin_memory=loader.pin_memory, drop_last=loader.drop_last)


def steps_per_epoch(data, batch_size: int) -> int | None:
    """Optimizer steps in one pass over `data`; None when it has no length."""
    if indexable(data):
        n = len(data)
        full, rest = divmod(n, batch_size)
        return full + (1 if rest >= dist.world_size() else 0) if rest else full
    if hasattr(data, "__len__"):      # ready-made batches, e.g. a DataLoader
        return len(data)
    return None


def batch_stream(data, batch_size: int, collate_fn, seed: int, epoch: int, index: int,
                 lengths: Sequence[int] | None = None):
    """Yield `(epoch, index, batch)` from position (epoch, index) on, epoch after epoch,
    for as long as the loop asks.

    Indexable data is shuffled per epoch; this rank collates only its share of each
    batch, and the batches before `index` (already trained on before a resume) are
    skipped by index, never collated, so a random collator draws exactly the random
    numbers it would have drawn without the interruption. A DataLoader is dealt out by
    `shard_loader` (its sampler's `set_epoch` called each epoch); other iterables of
    ready-made batches are cut to this rank's share. Skipping them means iterating them.
    `lengths` groups indexable data's batches by length (`global_batches`).
    """
    collate_fn = collate_fn or default_collate
    while True:
        produced = 0
        if indexable(data):
            chunks = global_batches(len(data), batch_size, seed, epoch, lengths)
            for i in range(index, len(chunks)):
                produced += 1
                yield epoch, i, collate_fn(rows_at(data, dist.shard(chunks[i])))
        else:
            if hasattr(getattr(data, "sampler", None), "set_epoch"):
                data.sampler.set_epoch(epoch)
            sharded = isinstance(data, DataLoader)
            for i, batch in enumerate(data):
                if i >= index:
                    produced += 1
                    if dist.active() and not sharded:
                        batch = slice_batch(batch, dist.rank(), None, dist.world_size())
                    yield epoch, i, batch
        if produced == 0 and index == 0:
            raise ValueError(
                f"train_data gave no batches in epoch {epoch}: a one-shot iterator (a "
                "generator) is used up after one pass. Pass a list, a Dataset or a "
                "DataLoader, which can be iterated again, or lower max_steps")
        epoch, index = epoch + 1, 0


# --------------------------------------------------------------------------- scoring rows
def pad_collate(pad_id: int = 0):
    """A `collate_fn` that pads a list of tokenised rows to the longest one in the batch
    and returns tensors `input_ids`, `attention_mask` (, `token_type_ids`) and `labels`."""

    def pad_batch(rows: list[dict]) -> dict:
        longest = max(len(r["input_ids"]) for r in rows)
        batch = {}
        for key, fill in (("input_ids", pad_id), ("attention_mask", 0), ("token_type_ids", 0)):
            if key in rows[0]:
                batch[key] = torch.tensor([list(r[key]) + [fill] * (longest - len(r[key]))
                                           for r in rows])
        if "label" in rows[0]:
            batch["labels"] = torch.tensor([int(r["label"]) for r in rows])
        return batch

    return pad_batch


def by_length(rows, batch_size: int, pad_id: int, device):
    """Length-bucketed batches of tokenised `rows` for scoring: the rows sorted by length,
    so each batch pads only to its own longest row. Yields (row indices, batch on
    `device`); labels are left out. Put results back in order with the indices."""
    keep = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in rows.column_names]
    # the columns read once, as lists: a Dataset.select() per batch cost as much as
    # scoring the batch with a small model (tiny-mlm)
    cols = rows.select_columns(keep)[:]
    lengths = [len(x) for x in cols["input_ids"]]
    idx_order = sorted(range(len(lengths)), key=lengths.__getitem__)
    pad = pad_collate(pad_id)
    for start in range(0, len(idx_order), batch_size):
        idx = idx_order[start:start + batch_size]
        batch = pad([{k: cols[k][i] for k in keep} for i in idx])
        yield idx, {k: v.to(device) for k, v in batch.items()}

