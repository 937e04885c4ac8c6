"""Check the course on a CUDA machine: every notebook in `smoke` on the GPU, then `fit`'s
step time on MiniLM in bf16 and fp32, and one run of the fp16 + GradScaler path.

    python scripts/gpu_check.py                 # everything
    python scripts/gpu_check.py --no-notebooks  # only the precision timings

On a machine without CUDA it says so and exits with status 0: there is nothing to check.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch


def run_notebooks(runs_dir: str) -> list[tuple[str, str, str]]:
    """`labkit run --profile smoke` (all notebooks, on the GPU): one row, pass/fail and time."""
    env = {**os.environ, "LABKIT_RUNS": runs_dir, "LABKIT_HEADLESS": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "labkit.cli", "run", "--profile", "smoke"],
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
    return [("every notebook, smoke", "ok" if done.returncode == 0 else
             f"FAILED (exit {done.returncode})", f"{seconds:.0f} s")]


def time_fit(precision: str, steps: int, batch_size: int) -> tuple[float, float]:
    """ms per optimizer step of `fit` on MiniLM (after a warm-up) and the final loss."""
    from labkit import data, finetune, train

    model, tok = finetune.build_classifier("minilm", num_labels=2, seed=0)
    rows = finetune.tokenize(data.load("movie_reviews")["train"], tok, max_length=128)
    rows = rows.select(range(min(len(rows), (steps + 3) * batch_size)))
    pad = finetune.collate(tok.pad_token_id)
    kw = dict(collate_fn=pad, batch_size=batch_size, lr=2e-5, warmup=0, device="cuda",
              precision=precision, rollback=False, desc=f"minilm {precision}")
    train.fit(model, rows.select(range(3 * batch_size)), max_steps=3, **kw)   # warm-up
    torch.cuda.synchronize()
    hist = train.fit(model, rows, max_steps=steps, **kw)
    torch.cuda.synchronize()
    return 1000 * hist.seconds / steps, hist.final_loss()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-notebooks", action="store_true")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--runs-dir", default="runs/gpu-check")
    a = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU is visible here, so there is nothing to check "
              "(run it on a GPU machine; the CPU path is covered by the tests)")
        return 0
    os.environ.setdefault("LABKIT_HEADLESS", "1")
    from labkit import device

    print(device.report("cuda"))
    major, minor = torch.cuda.get_device_capability()
    print(f"compute capability {major}.{minor}: fit's automatic precision is "
          f"{device.precision('cuda')}\n")
    rows = [] if a.no_notebooks else run_notebooks(a.runs_dir)
    timings = {}
    for prec in ("fp32", "bf16", "fp16"):
        if prec == "bf16" and major < 8:
            rows.append(("fit on MiniLM, bf16", "skipped (emulated below capability 8.0)", "-"))
            continue
        ms, loss = time_fit(prec, a.steps, a.batch_size)
        timings[prec] = ms
        ok = "ok" if loss == loss and loss < 10 else f"FAILED (final loss {loss})"
        label = "fp16 + GradScaler" if prec == "fp16" else prec
        rows.append((f"fit on MiniLM, {label}", ok, f"{ms:.1f} ms/step"))
    for prec in ("bf16", "fp16"):
        if prec in timings:
            rows.append((f"{prec} speed-up over fp32", "", f"{timings['fp32'] / timings[prec]:.2f}x"))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'check':{width}s}  {'result':40s}  measured")
    for name, result, value in rows:
        print(f"{name:{width}s}  {result:40s}  {value}")
    return 0 if all(not r[1].startswith("FAILED") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
