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

# %% [markdown]
# **You will be able to**
#
# * say which device the course will use here and what the profiles mean for it;
# * measure how fast this machine multiplies matrices and fine-tunes a real model, and
#   turn that into a time estimate;
# * find where every dataset and pre-trained model comes from, offline;
# * count where a BERT encoder's parameters are, and see your progress through the
#   course's exercises.
#
# **Prerequisites**: Python and a first look at PyTorch (tensors, `nn.Module`). Nothing
# from the course: this is its first notebook.

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

from labkit import checks, course, data, device, ledger, models, quiz, train
from labkit.profile import check

check(PROFILE)
course.header("00_setup")
device.seed_everything(SEED)
dev = device.pick()
run = ledger.Run("00_setup", profile=PROFILE, seed=SEED, device=dev)
print(device.report(dev))

# %% [markdown]
# ## 2 · How fast is it?
#
# A matrix multiply of two $n \times n$ matrices costs $2n^3$ floating-point operations.
# Timing it gives the machine's usable speed in GFLOP/s, the number that decides how big a
# model you can train in a few minutes. The same product in float64 checks that the
# result is right, not only fast.

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
a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
matmul_error = ((a @ b).double() - a.double() @ b.double()).abs().max().item()
print(f"largest difference from the float64 product: {matmul_error:.2g}")
run.log("matmul_gflops", gflops)
if dev.type == "cuda":
    prec = device.precision(dev)
    half = matmul_gflops(4096, dev, device.autocast_dtype(prec))
    print(f"{prec} matmul 4096x4096: {half:,.1f} GFLOP/s")

# %% [markdown]
# Raw GFLOP/s flatter the truth: a real training step also moves data, runs small
# kernels and updates the optimizer. So we time a few steps of what the course actually
# does: fine-tuning the offline pre-trained encoder (`minilm`) on movie-review sentences,
# through the course's one training loop, `labkit.train.fit`.

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
steps, batch = (2, 8) if PROFILE == "smoke" else (6, 32)    # smoke: seconds, not a measure
train.fit(model, tokenized.select(range(batch)), collate_fn=collate, max_steps=1, batch_size=batch,
          lr=2e-5, device=dev, seed=SEED, desc="warm-up")   # first steps pay one-off costs
hist = train.fit(model, tokenized, collate_fn=collate, max_steps=steps, batch_size=batch,
                 lr=2e-5, device=dev, seed=SEED, desc="timing")
examples_per_s = hist.examples / hist.seconds
print(f"fine-tuning minilm: {examples_per_s:.0f} examples/s on {dev.type}")
run.log("minilm_finetune_examples_per_s", examples_per_s)

# %% [markdown]
# Fast is not enough: a training loop must also learn. The first check of any new set-up
# is to overfit one tiny batch: a handful of steps on the same eight sentences must bring
# their loss down. If it does not, something is broken (the optimizer, the labels, the
# learning rate) and no later number can be trusted.

# %%
one_batch = tokenized.select(range(8))
overfit = train.fit(model, one_batch, collate_fn=collate, epochs=6, batch_size=8, lr=3e-4,
                    warmup=0, schedule="constant", device=dev, seed=SEED, desc="one batch")
first_loss, last_loss = overfit.train[0]["loss"], overfit.train[-1]["loss"]
print(f"one batch, {len(overfit.train)} steps: loss {first_loss:.3f} -> {last_loss:.3f}")

# %% [markdown]
# What that speed means for the profiles. Each notebook sizes its work per profile; the
# estimate below is for one epoch of fine-tuning this model on a label budget.

# %%
for budget in (128, 1_000, 8_000):
    print(f"{budget:>6,} labelled sentences, one epoch: ~{budget / examples_per_s / 60:.1f} min")
print("""
profiles:
  smoke  CI: seconds per notebook, tiny slices, every code path, no quality claims
  quick  default: at most ~6 min per notebook on a 2-core CPU, offline, the lesson visible
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
# ## 5 · Where a model's parameters are
#
# A parameter count says little until you know where the parameters sit. A BERT encoder
# has:
#
# * **embeddings**: a table of word vectors (`vocab_size` x hidden size `H`), one of
#   position vectors (`max_position_embeddings` x `H`), one of token-type vectors
#   (`type_vocab_size` x `H`), and a LayerNorm;
# * **layers**, each with self-attention (query, key, value and output projections, all
#   `H` x `H` linear layers with biases) then a LayerNorm, and a feed-forward block
#   (`H` -> `intermediate_size` -> `H`, two linear layers with biases) then a LayerNorm.
#
# A LayerNorm of size `H` has a scale and a shift; an `nn.Linear(n_in, n_out)` has
# `n_in * n_out` weights and `n_out` biases.
#
# ### Your turn 00.1 · Count a BERT encoder's parameters
#
# Complete `encoder_parameters(config)`: from a `transformers.BertConfig` (read
# `config.vocab_size`, `config.hidden_size`, `config.num_hidden_layers`,
# `config.intermediate_size`, `config.max_position_embeddings`, `config.type_vocab_size`),
# return the number of parameters of the encoder: embeddings and layers, without the
# pooler or any task head. It must hold for any config, including zero layers. The check
# builds real models from random small configs and compares.

# %%
def encoder_parameters(config) -> int:
    """Parameters of a BERT encoder (embeddings + layers, no pooler, no head)."""
    ### BEGIN SOLUTION
    H, I = config.hidden_size, config.intermediate_size
    embeddings = (config.vocab_size + config.max_position_embeddings
                  + config.type_vocab_size) * H + 2 * H
    attention = 4 * (H * H + H) + 2 * H
    feed_forward = (H * I + I) + (I * H + H) + 2 * H
    return embeddings + config.num_hidden_layers * (attention + feed_forward)
    ### END SOLUTION


encoder_parameters = checks.run("00.1", encoder_parameters)

# %% [markdown]
# With the count in hand: how much of each offline encoder is its embedding table, which
# a task never uses more than a few rows of? The count from your function is compared with
# the model's own.

# %%
import copy  # noqa: E402

counted = {}
for name, encoder in (("minilm", model.base_model), ("tiny-mlm", None)):
    if encoder is None:
        encoder = models.load(name, task="masked-lm")[0].base_model
    cfg = encoder.config
    no_layers = copy.deepcopy(cfg)
    no_layers.num_hidden_layers = 0
    total, embeddings = encoder_parameters(cfg), encoder_parameters(no_layers)
    actual = (models.count_parameters(encoder.embeddings)
              + models.count_parameters(encoder.encoder))
    counted[name] = (total, actual)
    print(f"{name:9s} {cfg.num_hidden_layers} layers, H={cfg.hidden_size}: {total:,} parameters "
          f"counted, {actual:,} in the model; the embeddings are {embeddings / total:.0%}")

# %% [markdown]
# ## The lesson, checked
#
# This notebook's claims: the bundled data is intact, the machine's matrix products are
# right (fp32, or TF32 on a GPU, within rounding of float64), the training loop learns (one batch overfits),
# and the parameter count accounts for every weight of the encoders. If any of these
# fails, the later notebooks would too.

# %%
assert not problems, problems
assert matmul_error < 1e-2 * n ** 0.5, f"the fp32 matmul is off by {matmul_error:.3g}"
assert all(torch.isfinite(torch.tensor(r["loss"])) for r in hist.train)
assert last_loss < 0.5 * first_loss, (first_loss, last_loss)
assert all(total == actual for total, actual in counted.values()), counted
print("set-up verified:", PROFILE, "profile on", dev.type)

# %% [markdown]
# ## Your progress
#
# Every exercise you run is remembered in a small file outside the repository's tracked
# files (`runs/progress.json`). This cell, and `labkit progress` in a terminal, list the
# course's exercises: passed, tried, or not attempted yet.

# %%
print(course.progress_report())

# %% [markdown]
# ## Key takeaways
#
# * `labkit` picks the device; the profile (`smoke`, `quick`, `full`) sizes the work for it.
# * A timed matmul gives the machine's raw speed; a few timed training steps give the speed
#   that matters. Both become time estimates before you commit to a run.
# * Before trusting a training set-up, overfit one tiny batch: the loss must fall.
# * In a small BERT the embedding table can be a large share of the parameters.
# * Every dataset and model here is real and offline, with its source and checksum.

# %% [markdown]
# ## Check your understanding

# %%
q = quiz.ask("00")

# %% [markdown]
# ## What to try next
#
# * Run `labkit doctor` in a terminal: the same report, plus where each file comes from.
# * Run `labkit run --profile smoke` to execute every notebook in seconds, two at a time.
# * Run `labkit student` to build the student edition (`student/`): every exercise a stub
#   to complete, its solution one link away in `student/solutions/`.
# * On a GPU, compare the fp32 and bf16 matmul numbers: that ratio is the speed-up mixed
#   precision buys before any memory savings.

# %% [markdown]
# ## References
#
# * Devlin, Chang, Lee and Toutanova (2019). BERT: Pre-training of Deep Bidirectional
#   Transformers for Language Understanding. NAACL. arXiv:1810.04805.
# * Wang, Wei, Dong, Bao, Yang and Zhou (2020). MiniLM: Deep Self-Attention Distillation for
#   Task-Agnostic Compression of Pre-Trained Transformers. NeurIPS. arXiv:2002.10957.
# * Karpathy (2019). A Recipe for Training Neural Networks (blog post): "overfit a single
#   batch" as the first check of a training set-up.

# %%
run.finish()   # close this run in the ledger: only a notebook that ran to its end counts
