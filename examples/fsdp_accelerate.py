"""Fine-tune a classifier with its weights, gradients and optimizer state sharded over
the processes (FSDP), through Hugging Face `accelerate`: the route past one node or
about 1B parameters, where `labkit.train.fit` (a full copy on every process) stops.

    accelerate launch --use_fsdp --num_processes 8 examples/fsdp_accelerate.py --model minilm  # 8 GPUs
    accelerate launch --use_fsdp --num_processes 2 examples/fsdp_accelerate.py    # 2 CPU processes

Each step prints the wrapper the model got. accelerate shards with FSDP on GPUs only: on
a CPU the same command runs the same loop under DistributedDataParallel (it says so),
which is how the script is tested on a machine without GPUs.

The loop is the plain loop of the course (zero_grad, forward, backward, clip, step);
`accelerator.prepare` wraps the model in FSDP and the data loader in a sampler that
deals each rank its share, and `accelerator.backward` / `clip_grad_norm_` know that
the gradients are sharded. The same batch-and-loss contract holds: dim 0 is the example.
"""

import argparse
import os

import torch
from accelerate import Accelerator, FullyShardedDataParallelPlugin

from labkit import data, finetune, train


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny-mlm", help="a labkit.models name")
    p.add_argument("--examples", type=int, default=256, help="training reviews")
    p.add_argument("--batch-size", type=int, default=16, help="per process")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-4)
    a = p.parse_args()

    os.environ.setdefault("LABKIT_HEADLESS", "1")
    gpu = torch.cuda.is_available()
    # every process builds the same weights (seed 0), so nothing needs syncing at start;
    # accelerate refuses to sync module states on a CPU anyway
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    plugin = FullyShardedDataParallelPlugin(sync_module_states=gpu,
                                            cpu_ram_efficient_loading=gpu) if fsdp else None
    accelerator = Accelerator(cpu=not gpu, fsdp_plugin=plugin)
    model, tok = finetune.build_classifier(a.model, num_labels=2, seed=0)
    reviews = finetune.tokenize(data.load("movie_reviews"), tok, max_length=64)
    rows = data.sample(reviews["train"], a.examples, seed=0)
    loader = torch.utils.data.DataLoader(rows, batch_size=a.batch_size, shuffle=True,
                                         collate_fn=finetune.collate(tok.pad_token_id))
    model = accelerator.prepare(model)       # FSDP wraps (and shards) the model first
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, train.lr_lambda(a.steps, 1))
    optimizer, loader, schedule = accelerator.prepare(optimizer, loader, schedule)

    model.train()
    step = 0
    while step < a.steps:
        for batch in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = model(**batch).loss
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            losses = accelerator.gather(loss.detach()[None])
            accelerator.print(f"step {step}: loss {losses.mean():.4f} "
                              f"({accelerator.num_processes} process(es), "
                              f"{type(model).__name__})")
            if step == a.steps:
                break
    accelerator.end_training()


if __name__ == "__main__":
    main()
