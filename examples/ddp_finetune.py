"""Fine-tune a classifier data-parallel: one process per GPU (or per group of CPU cores).

    torchrun --nproc_per_node 2 examples/ddp_finetune.py                # 2 CPU processes
    torchrun --nproc_per_node 4 examples/ddp_finetune.py --model minilm # a 4-GPU server
    accelerate launch --multi_gpu --num_processes 2 examples/ddp_finetune.py   # via accelerate
    python examples/ddp_finetune.py                                     # one process

It is an ordinary `fit` script: `distributed.setup()` opens the process group the
launcher describes, and `fit` then shards each batch of `--batch-size` examples over the
processes, sums their gradients, and lets rank 0 alone print and write checkpoints. The
global batch, and so the result, is the same whatever the number of processes.
"""

import argparse
import os

import torch

from labkit import data, distributed, finetune, train


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny-mlm", help="a labkit.models name")
    p.add_argument("--examples", type=int, default=512, help="training reviews")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32, help="global batch, all ranks")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--checkpoint-dir", default=None, help="save here; rerun to resume")
    a = p.parse_args()

    os.environ.setdefault("LABKIT_HEADLESS", "1")
    if not torch.cuda.is_available():       # share the CPU cores between the processes
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("WORLD_SIZE", 1))))
    parallel = distributed.setup()
    model, tok = finetune.build_classifier(a.model, num_labels=2, seed=0)
    reviews = finetune.tokenize(data.load("movie_reviews"), tok, max_length=64)
    rows = data.sample(reviews["train"], min(a.examples, len(reviews["train"])), seed=0)
    pad = finetune.collate(tok.pad_token_id)
    hist = train.fit(model, rows, eval_data=reviews["validation"], collate_fn=pad,
                     epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, monitor="accuracy",
                     checkpoint_dir=a.checkpoint_dir, resume=a.checkpoint_dir is not None,
                     seed=0, desc=f"rank {distributed.rank()}")
    if distributed.is_main():
        print(f"{distributed.world_size()} process(es){' (data-parallel)' if parallel else ''}: "
              f"{hist.steps} steps, {hist.examples / hist.seconds:.1f} examples/s, "
              f"best validation accuracy {hist.best_score:.3f} at step {hist.best_step}")
    distributed.teardown()


if __name__ == "__main__":
    main()
