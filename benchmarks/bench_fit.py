"""How much does labkit's `fit` cost over a bare PyTorch loop and over the HF `Trainer`?

Same model (the 4.4M-parameter `tiny-mlm` BERT with a fresh 2-class head), same data
(movie-review sentences, padded per batch, at most 64 tokens), same batch size, fused
AdamW (what `fit` and the Trainer both pick on a CPU), linear schedule and gradient
clipping. Each contender runs a warm-up, then `--steps`
timed optimizer steps, `--repeats` times; the script prints the median ms/step and the
ratios to the bare loop. Then `fit` runs in 1 process and in 2 processes under torchrun
(gloo, the cores shared out between the processes) with the same global batch, and the
script prints examples/s of each, and of as many separate one-thread runs at once as
there are cores (several notebooks side by side, as `labkit run` runs them).

    python benchmarks/bench_fit.py --steps 30 --repeats 3

This is a benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from transformers import DataCollatorWithPadding

from labkit import data, device, distributed, models, train


def setup(n_examples: int):
    device.seed_everything(0)
    model, tok = models.load("tiny-mlm", task="sequence-classification", num_labels=2)
    ds = data.load("movie_reviews")["train"].select(range(n_examples))
    ds = ds.map(lambda b: tok(b["text"], truncation=True, max_length=64), batched=True,
                remove_columns=["text"]).rename_column("label", "labels")
    return model, tok, ds, DataCollatorWithPadding(tok)


def bare_loop(model, ds, collate, steps, batch_size):
    # the optimizer fit and the Trainer choose on this device (fused AdamW), so that the
    # ratios measure the loops, not the optimizers
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, train.lr_lambda(steps, 0))
    model.train()
    order = torch.randperm(len(ds)).tolist()
    start = time.perf_counter()
    for step in range(steps):
        idx = order[(step * batch_size) % len(ds):][:batch_size]
        batch = collate(ds.__getitems__(idx))     # one fetch per batch, as fit and the Trainer do
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def labkit_fit(model, ds, collate, steps, batch_size):
    hist = train.fit(model, ds, collate_fn=collate, max_steps=steps, batch_size=batch_size,
                     lr=5e-5, warmup=0, device="cpu", desc="labkit fit")
    return hist.seconds / steps


def hf_trainer(model, ds, collate, steps, batch_size):
    from transformers import Trainer, TrainingArguments

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(out, per_device_train_batch_size=batch_size, max_steps=steps,
                                 learning_rate=5e-5, max_grad_norm=1.0, report_to=[],
                                 save_strategy="no", logging_strategy="no",
                                 disable_tqdm=True, use_cpu=True, dataloader_num_workers=0)
        trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=collate)
        start = time.perf_counter()
        trainer.train()
        return (time.perf_counter() - start) / steps


def ddp_worker(steps, batch_size):
    """One process of the data-parallel measurement (run by torchrun, or alone)."""
    distributed.setup()         # torch threads: OMP_NUM_THREADS, set by `processes`
    model, _, ds, collate = setup(steps * batch_size)
    train.fit(model, ds, collate_fn=collate, max_steps=3, batch_size=batch_size, warmup=0,
              device="cpu", desc="warm-up")
    hist = train.fit(model, ds, collate_fn=collate, max_steps=steps, batch_size=batch_size,
                     lr=5e-5, warmup=0, device="cpu", desc="ddp")
    if distributed.is_main():
        print(json.dumps({"processes": distributed.world_size(),
                          "examples_per_s": hist.examples / hist.seconds}))
    distributed.teardown()


def processes(n: int, steps: int, batch_size: int, threads: int) -> float:
    """examples/s of `fit` in `n` processes (torchrun for n > 1), `threads` torch threads
    each."""
    me = [os.path.abspath(__file__), "--ddp-worker", "--steps", str(steps),
          "--batch-size", str(batch_size)]
    cmd = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), *me]
           if n > 1 else [sys.executable, *me])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    line = [x for x in out.stdout.splitlines() if x.startswith("{")][-1]
    return json.loads(line)["examples_per_s"]


def independent(n: int, steps: int, batch_size: int) -> float:
    """examples/s of `n` separate one-thread runs of `fit` at the same time, added up
    (what `labkit run` does with several notebooks: no gradient exchange at all)."""
    me = [sys.executable, os.path.abspath(__file__), "--ddp-worker", "--steps", str(steps),
          "--batch-size", str(batch_size)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(me, stdout=subprocess.PIPE, text=True, env=env) for _ in range(n)]
    total = 0.0
    for proc in procs:
        out, _ = proc.communicate()
        total += json.loads([x for x in out.splitlines() if x.startswith("{")][-1])["examples_per_s"]
    return total


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ddp-steps", type=int, default=20)
    p.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault("LABKIT_HEADLESS", "1")
    if a.ddp_worker:
        return ddp_worker(a.steps, a.batch_size)
    print(device.report("cpu"))
    print("load average (1, 5, 15 min): %.2f %.2f %.2f" % os.getloadavg())
    results = {}
    for name, fn in [("bare loop", bare_loop), ("labkit fit", labkit_fit), ("HF Trainer", hf_trainer)]:
        times = []
        for _ in range(a.repeats):
            model, _, ds, collate = setup(a.steps * a.batch_size)
            fn(model, ds, collate, 5, a.batch_size)                   # warm-up
            times.append(fn(model, ds, collate, a.steps, a.batch_size))
        results[name] = statistics.median(times)
    base = results["bare loop"]
    trainer = results["HF Trainer"]
    print(f"\n{'':12s} {'ms/step':>8s} {'vs bare loop':>13s} {'vs Trainer':>11s}   ({a.steps} "
          f"steps x batch {a.batch_size}, median of {a.repeats})")
    for name, t in results.items():
        print(f"{name:12s} {t * 1000:8.1f} {t / base:12.2f}x {t / trainer:10.2f}x")

    cores = os.cpu_count() or 1
    rows = [("1 process, 1 thread", processes(1, a.ddp_steps, a.batch_size, 1)),
            (f"1 process, {cores} threads", processes(1, a.ddp_steps, a.batch_size, cores)),
            (f"2 processes (gloo), {max(1, cores // 2)} thread(s) each",
             processes(2, a.ddp_steps, a.batch_size, max(1, cores // 2))),
            (f"{cores} separate runs, 1 thread each", independent(cores, a.ddp_steps, a.batch_size))]
    print(f"\nfit, {a.ddp_steps} steps x global batch {a.batch_size}, {cores} CPU cores:")
    for name, rate in rows:
        print(f"{name:34s} {rate:8.1f} examples/s   {rate / rows[0][1]:.2f}x")
    print("load average after (1, 5, 15 min): %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
