"""CPU time per `fit` step of two notebooks' workloads, to compare two versions of labkit.

    python benchmarks/bench_steps.py translator --steps 40     # notebook 01's model and data
    python benchmarks/bench_steps.py skipgram --steps 300      # notebook 02's sparse SGD

It times with whichever labkit comes first on PYTHONPATH, so an A/B of two commits is

    git worktree add --detach ../old <commit>
    for tree in ../old .; do PYTHONPATH=$tree python benchmarks/bench_steps.py skipgram; done

(alternate the two a few times). It prints the process CPU time per step beside the wall
time: on a machine shared with other jobs the wall time says more about the others than
about the code, while one-thread CPU time moves much less. The translator's steps include
its two validation passes and its last line includes a greedy decoding of 200 test verses;
the skip-gram's include making the word pairs, as in the notebooks.
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import torch

from labkit import data, device, seq2seq, text, train
from labkit import word2vec as w2v


def translator(steps: int) -> str:
    raw = data.load("en_fr_bible", profile="quick")

    def short(split):
        return [(e, f) for e, f in zip(split["en"], split["fr"])
                if max(len(text.words(e)), len(text.words(f))) <= 25]

    tr, va, te = short(raw["train"]), short(raw["validation"]), short(raw["test"])
    sv = text.Vocab.build([text.words(e) for e, _ in tr], min_freq=2, max_size=6000)
    tv = text.Vocab.build([text.words(f) for _, f in tr], min_freq=2, max_size=6000)
    train_data = seq2seq.encode_pairs([e for e, _ in tr], [f for _, f in tr], sv, tv)
    valid_data = seq2seq.encode_pairs([e for e, _ in va], [f for _, f in va], sv, tv)
    device.seed_everything(0)
    model = seq2seq.Seq2Seq(len(sv), len(tv), emb_dim=128, hidden=256, layers=1, dropout=0.1)
    wall, cpu = time.perf_counter(), time.process_time()
    hist = train.fit(model, train_data, eval_data=valid_data,
                     loss_fn=functools.partial(seq2seq.loss_fn, label_smoothing=0.1),
                     collate_fn=seq2seq.collate, max_steps=steps, batch_size=64, lr=3e-3,
                     warmup=0.05, clip=1.0, eval_every=max(1, steps // 2), device="cpu",
                     seed=0, desc="translator")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    t0 = time.process_time()
    seq2seq.translate(model, [e for e, _ in te[:200]], sv, tv, beam=1)
    return (f"{1000 * cpu / steps:.0f} CPU ms/step ({1000 * wall / steps:.0f} wall), last loss "
            f"{hist.train[-1]['loss']:.4f}; greedy decoding of 200 verses "
            f"{time.process_time() - t0:.2f} CPU s")


def skipgram(steps: int) -> str:
    sotu = data.load("sotu", profile="quick")
    corpus = w2v.Corpus.build(w2v.tokenize(sotu["train"]["text"]), min_count=5)
    batches = w2v.SkipGramBatches(corpus, window=5, negative=5, batch_size=4096, share=64,
                                  sample=1e-3, seed=0)
    torch.manual_seed(0)
    model = w2v.SkipGram(len(corpus.vocab), dim=100)
    wall, cpu = time.perf_counter(), time.process_time()
    hist = train.fit(model, batches, loss_fn=w2v.sgns_loss, max_steps=steps, batch_size=4096,
                     optimizer=torch.optim.SGD(model.parameters(), lr=0.025 * 4096), clip=None,
                     warmup=0, schedule="linear", min_lr_ratio=0.0001 / 0.025,
                     precision="fp32", device="cpu", seed=0, desc="skip-gram")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return (f"{1000 * cpu / steps:.2f} CPU ms/step ({1000 * wall / steps:.2f} wall), last loss "
            f"{hist.train[-1]['loss']:.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload", choices=["translator", "skipgram"])
    p.add_argument("--steps", type=int, default=None, help="default: 40 / 300")
    args = p.parse_args()
    steps = args.steps or {"translator": 40, "skipgram": 300}[args.workload]
    import labkit

    result = (translator if args.workload == "translator" else skipgram)(steps)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.workload} {steps} steps, labkit from {os.path.dirname(labkit.__file__)}, "
          f"{torch.get_num_threads()} thread(s), load {load}: {result}")


if __name__ == "__main__":
    main()
