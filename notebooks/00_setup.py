# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version,-jupytext.text_representation.format_version
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · Set-up: what you have, how fast it is, where everything comes from
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/labkit-course/labkit/blob/main/notebooks/00_setup.ipynb)
#
# Every later notebook trains something. Before that, three questions:
#
# 1. **What device am I on?** A GPU changes what is sensible: the `full` profile is for
#    GPUs, `quick` is sized for a 2-core laptop CPU.
# 2. **How fast is it?** One timed matrix multiply, and a few real training steps of the
#    course's main pre-trained model, turned into an estimate of how long things take.
# 3. **Where do data and models come from?** Everything runs offline, from small real
#    datasets shipped in `data/` and pre-trained weights that come inside Python packages.

# %% tags=["colab-setup"]
# On Colab only: fetch the course and install what Colab lacks (elsewhere this cell does nothing).
# Colab's own torch, Jupyter server and kernel stay as they are (see labkit/colab.py).
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess
    repo = os.environ.get("LABKIT_CLONE_URL", "https://github.com/labkit-course/labkit")
    subprocess.run(f"[ -d course ] || git clone -q --depth 1 {repo} course && "
                   "python course/labkit/colab.py install course", shell=True, check=True)
    sys.path.insert(0, os.path.abspath("course"))

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("LABKIT_PROFILE", "quick")   # "smoke" | "quick" | "full"
SEED = int(os.environ.get("LABKIT_SEED", 0))

# %% [markdown]
# ## 1 · The device
#
# `labkit.device.pick()` takes a CUDA GPU if there is one, then Apple's MPS, then the CPU.
# On a GPU, `fit` trains in mixed precision: **bf16** where the GPU supports it (Ampere
# and newer: A100, H100, RTX 30xx+), **fp16 with a gradient scaler** on older ones (T4,
# V100). On a CPU everything stays in fp32.

# %%
import time

import torch

from labkit import data, device, ledger, models, train
from labkit.profile import check

check(PROFILE)
device.seed_everything(SEED)
dev = device.pick()
run = ledger.Run("00_setup", profile=PROFILE, seed=SEED, device=dev)
print(device.report(dev))

# %% [markdown]
# ## 2 · How fast is it?
#
# A matrix multiply of two $n \times n$ matrices costs $2n^3$ floating-point operations.
# Timing it gives the machine's usable speed in GFLOP/s, the number that decides how big a
# model you can train in five minutes.

# %%
def matmul_gflops(n: int, dev, dtype=torch.float32, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    a @ b                                   # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


n = 512 if PROFILE == "smoke" else 1024
gflops = matmul_gflops(n, dev)
print(f"fp32 matmul {n}x{n}: {gflops:,.1f} GFLOP/s")
run.log("matmul_gflops", gflops)
if dev.type == "cuda":
    prec = device.precision(dev)
    half = matmul_gflops(4096, dev, device.autocast_dtype(prec))
    print(f"{prec} matmul 4096x4096: {half:,.1f} GFLOP/s")

# %% [markdown]
# Raw GFLOP/s flatter the truth: a real training step also moves data, runs small
# kernels and updates the optimizer. So we time a few steps of what the course actually
# does: fine-tuning the offline pre-trained encoder (`minilm`, 22.7M parameters) on
# movie-review sentences, through the course's one training loop, `labkit.train.fit`.

# %%
reviews = data.load("movie_reviews", profile=PROFILE, source="bundled")
print(reviews)
model, tokenizer = models.load("minilm", task="sequence-classification", num_labels=2)
print(f"minilm: {models.count_parameters(model):,} parameters")


def encode(batch):
    return tokenizer(batch["text"], truncation=True, max_length=64)


tokenized = reviews["train"].select(range(32 * 6)).map(encode, batched=True, remove_columns=["text"])
from transformers import DataCollatorWithPadding  # noqa: E402

collate = DataCollatorWithPadding(tokenizer)
steps = 2 if PROFILE == "smoke" else 6
train.fit(model, tokenized.select(range(32)), collate_fn=collate, max_steps=1, batch_size=32,
          lr=2e-5, device=dev, seed=SEED, desc="warm-up")   # first steps pay one-off costs
hist = train.fit(model, tokenized, collate_fn=collate, max_steps=steps, batch_size=32,
                 lr=2e-5, device=dev, seed=SEED, desc="timing")
examples_per_s = hist.examples / hist.seconds
print(f"fine-tuning minilm: {examples_per_s:.0f} examples/s on {dev.type}")
run.log("minilm_finetune_examples_per_s", examples_per_s)

# %% [markdown]
# What that speed means for the profiles. Each notebook sizes its work per profile; the
# estimate below is for one epoch of fine-tuning this model on a label budget.

# %%
for budget in (128, 1_000, 8_000):
    print(f"{budget:>6,} labelled sentences, one epoch: ~{budget / examples_per_s / 60:.1f} min")
print("""
profiles:
  smoke  CI: seconds per notebook, tiny slices, every code path, no quality claims
  quick  default: ~5 min per notebook on a 2-core CPU, offline, the lesson visible
  full   GPU/Colab: hub models and full datasets when reachable, real-size results""")

# %% [markdown]
# ## 3 · Where the data comes from
#
# Every dataset is real text, bundled in `data/` with its source, licence and sha256
# (`data/README.md`). The splits are fixed files, so your numbers are comparable with
# everyone else's. `data.verify()` recomputes every checksum.

# %%
problems = data.verify()
print(f"{len(data.manifest()['files'])} bundled files, "
      f"{'all checksums match' if not problems else 'PROBLEMS: ' + ', '.join(problems)}")
for name, s in data.DATASETS.items():
    counts = {k: v["rows"] for k, v in data.manifest()["files"].items() if k.startswith(name + "/")}
    total = sum(counts.values())
    print(f"{name:17s} {total:>7,} rows  {s.description}")

# %% [markdown]
# ## 4 · Where the models come from
#
# Offline, pre-trained weights come inside Python packages (`requirements-models.txt`);
# in the `full` profile with a network, the same names load from the Hugging Face hub.
# Note which models have a **masked-LM head**: that decides what notebooks 05 and 07 can
# do with them.

# %%
for name in models.MODELS:
    print(models.describe(name, PROFILE))

# %% [markdown]
# ## Exercise
#
# The tiny masked LM (`tiny-mlm`) has hidden size 128, 2 layers, intermediate size 512,
# a vocabulary of 30,522 tokens and 512 positions. Count its parameters by hand (the
# hint tells you what to count), then check your answer.

# %%
mlm, _ = models.load("tiny-mlm", task="masked-lm")
print(mlm.config.hidden_size, mlm.config.num_hidden_layers, mlm.config.intermediate_size)
my_answer = None   # your count here
if my_answer is not None:
    from labkit import checks
    checks.parameter_count(mlm, my_answer)

# %% [markdown]
# ## The lesson, checked
#
# This notebook's claims: the bundled data is intact, the machine computes, and the
# training loop runs on it. If any of these fails, the later notebooks would too.

# %%
assert not problems, problems
assert gflops > 0 and examples_per_s > 0
assert all(torch.isfinite(torch.tensor(r["loss"])) for r in hist.train)
print("set-up verified:", PROFILE, "profile on", dev.type)

# %% [markdown]
# ## What to try next
#
# * Run `labkit doctor` in a terminal: the same report, plus where each file comes from.
# * Run `labkit run --profile smoke` to execute every notebook in seconds.
# * On a GPU, compare the fp32 and bf16 matmul numbers: that ratio is the speed-up mixed
#   precision buys before any memory savings.
