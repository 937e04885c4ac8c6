"""What choosing the checkpoint on fewer validation rows costs on the test rows: the same
runs (tiny-mlm, the protocol's quick recipe, one label budget) with the best of the
protocol's checkpoints picked on the first 250 validation rows and on the first 128,
paired by seed. Run on exploration seeds (100 and up), never on the reported 0-2.

    python benchmarks/validation_rows.py --seeds 100-111          # about 2 minutes a core
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from labkit import finetune, protocol
from labkit.text import tokenize


def seeds_of(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="100-111")
    ap.add_argument("--budget", type=int, default=128)
    ap.add_argument("--rows", default="250,128", help="validation rows to compare, a,b")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = seeds_of(args.seeds)
    base, tok = finetune.build_classifier("tiny-mlm", num_labels=2, seed=0, profile="quick")
    task = protocol.target_task(tok, "quick")
    validation = tokenize(protocol._raw("quick")["validation"], tok, max_length=64)
    lr = finetune.learning_rate(base, "full_ft")
    acc = {}
    for rows in (int(r) for r in args.rows.split(",")):
        runs = finetune.learning_curve(
            lambda s: finetune.build_classifier(base, seed=s)[0], task["train"], [args.budget],
            seeds, strategy=f"validation on {rows}", validation=validation.select(range(rows)),
            test=task["test"], lr=lr, **finetune.recipe("quick"))
        acc[rows] = np.array([r["accuracy"] for r in runs])
    (a, x), (b, y) = acc.items()
    diff = y - x
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    print(f"test accuracy over seeds {seeds[0]}-{seeds[-1]}: {a} validation rows "
          f"{x.mean():.4f}, {b} rows {y.mean():.4f}; {b} - {a}: {diff.mean():+.4f} "
          f"(paired standard error {se:.4f}); same checkpoint in {(diff == 0).sum()} of "
          f"{len(diff)} runs")
    return {"diff": float(diff.mean()), "se": float(se)}


if __name__ == "__main__":
    main()
